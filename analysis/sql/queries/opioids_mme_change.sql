-- opioids_mme_change: per baseline opioid user in view due at the timepoint
-- with its follow-up MME (mme50's completers; an early follow-up of a
-- patient not yet due is provisional and left out), baseline and follow-up
-- MME/day and the % change (negative = lower dose).

WITH outcomes AS (
    SELECT *
    FROM patient_outcomes
    WHERE definition = 'mme50' AND timepoint = $timepoint
)

SELECT
    p.patient_id,
    p.condition,
    p.site,
    p.route,
    p.baseline_mme,
    p.follow_up_mme,
    100 * (p.follow_up_mme - p.baseline_mme) / p.baseline_mme AS percent_change
FROM outcomes AS p
WHERE p.in_completers AND {{ patient_filter }}
ORDER BY percent_change, p.patient_id
