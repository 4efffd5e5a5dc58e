-- opioids_outcome_counts: n and responders of the opioid definitions (mme50,
-- mme_stop) at one timepoint, for both populations (SPEC §3), among
-- patients in view.

WITH outcomes AS (
    SELECT *
    FROM patient_outcomes
    WHERE timepoint = $timepoint AND definition IN ('mme50', 'mme_stop')
)

SELECT
    p.definition,
    count(*) FILTER (WHERE p.in_itt) AS itt_n,
    count(*) FILTER (WHERE p.in_itt AND p.responder) AS itt_responders,
    count(*) FILTER (WHERE p.in_completers) AS completers_n,
    count(*) FILTER (WHERE p.in_completers AND p.responder) AS completers_responders
FROM outcomes AS p
WHERE {{ patient_filter }}
GROUP BY p.definition
ORDER BY p.definition
