-- outcome_grid: n and responders per timepoint × responder definition ×
-- population × group, and for the whole program (group 'All'); cells with
-- n = 0 are left out.  Every responder rate of the dashboard, the reports and
-- the claim check is counted here (analysis.metrics.outcomes.counts_by_condition).
--
-- It counts the patients of each combination of facts in patient_timepoints
-- first (a few hundred combinations) and only then applies outcome_rules, the
-- rules patient_outcomes is built from, instead of scanning the patients ×
-- timepoints × definitions rows of patient_outcomes.
--
-- The two populations are outcome_rules' in_itt and in_completers (the
-- populations model's rule).  Filled in by counts_by_condition: the grouping
-- column (group_by: condition, site, provider, route or cohort_quarter),
-- outcome_rules' key columns (rule_facts, outcomes.RULE_FACTS) and the shared
-- patient filter (parameterised).

WITH selected AS (
    SELECT timepoint, {{ group_by }} AS "group", {{ rule_facts }}, count(*) AS patients
    FROM patient_timepoints
    WHERE {{ patient_filter }}
    GROUP BY ALL
),

counted AS (
    SELECT s.timepoint, r.definition, s."group",
           sum(s.patients) FILTER (WHERE r.in_itt) AS n_itt,
           sum(s.patients) FILTER (WHERE r.in_itt AND r.responder) AS k_itt,
           sum(s.patients) FILTER (WHERE r.in_completers) AS n_completers,
           sum(s.patients) FILTER (WHERE r.in_completers AND r.responder) AS k_completers
    FROM selected AS s
    JOIN outcome_rules AS r USING ({{ rule_facts }})
    GROUP BY ALL
),

populations AS (
    SELECT timepoint, definition, 'itt' AS population, "group",
           n_itt AS n, k_itt AS responders FROM counted
    UNION ALL
    SELECT timepoint, definition, 'completers', "group",
           n_completers, k_completers FROM counted
)

SELECT timepoint, definition, population,
       CASE WHEN grouping("group") = 1 THEN 'All' ELSE "group" END AS "group",
       CAST(sum(coalesce(n, 0)) AS BIGINT) AS n,
       CAST(sum(coalesce(responders, 0)) AS BIGINT) AS responders
FROM populations
GROUP BY GROUPING SETS ((timepoint, definition, population, "group"),
                        (timepoint, definition, population))
HAVING sum(coalesce(n, 0)) > 0
ORDER BY timepoint, definition, population, "group"
