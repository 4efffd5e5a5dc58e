-- pgic_counts: per timepoint, population and condition (and over all
-- conditions: "group" = 'All'), the treated patients in view and those whose
-- follow-up PGIC is one of $improved (much or very much improved).
--   itt         in_itt: window over at the cutoff (SPEC §3 due rule; PGIC
--               needs no baseline, so every treated patient is eligible); no
--               PGIC in the window counts as not improved
--   completers  in_completers: ... with a PGIC in the window (a subset of ITT)
-- Who is due, a completer and improved: pgic_patients.

WITH patients AS (
    {{ include pgic_patients }}
),

populations AS (
    SELECT 'itt' AS population, * FROM patients WHERE in_itt
    UNION ALL
    SELECT 'completers', * FROM patients WHERE in_completers
)

SELECT
    timepoint,
    population,
    CASE WHEN grouping(condition) = 1 THEN 'All' ELSE condition END AS "group",
    count(*) AS n,
    count(*) FILTER (WHERE responder) AS responders
FROM populations
GROUP BY GROUPING SETS ((timepoint, population, condition), (timepoint, population))
ORDER BY timepoint, population, "group"
