-- mood_counts: the denominator (n) and responders of every timepoint ×
-- measure × population, overall (group_name 'All') and by condition, for
-- the patients in view:
--   itt         in_itt: eligible and due (a due patient without the
--               follow-up counts as a non-responder)
--   completers  in_completers: due with a follow-up score (a subset of ITT)
-- (the populations model's rule, through mood_outcomes)
-- Population 'in_view' counts every treated patient in view, so a condition
-- without anyone in a denominator is still listed (with n = 0).
-- {{ patient_filter }} is the shared Filters predicate (parameterised).

WITH outcomes AS (
    SELECT * FROM mood_outcomes
    WHERE {{ patient_filter }}
),

populations AS (
    SELECT 'in_view' AS population, * FROM outcomes
    UNION ALL
    SELECT 'itt', * FROM outcomes WHERE in_itt
    UNION ALL
    SELECT 'completers', * FROM outcomes WHERE in_completers
)

SELECT
    timepoint,
    measure,
    population,
    CASE WHEN grouping(condition) = 1 THEN 'All' ELSE condition END AS group_name,
    count(*) AS n,
    count(*) FILTER (WHERE responder) AS responders
FROM populations
GROUP BY GROUPING SETS ((timepoint, measure, population),
                        (timepoint, measure, population, condition))
HAVING grouping(condition) = 1 OR condition IS NOT NULL
