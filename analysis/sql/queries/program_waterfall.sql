-- program_waterfall: each patient in view with baseline pain > 0, due at
-- $timepoint and with its follow-up pain score (an early follow-up of a
-- patient not yet due is provisional: not drawn): % change (negative = less pain) and
-- whether they respond by $definition (a pain definition).  Sorted from the
-- largest increase to the largest decrease, as a waterfall is drawn.

WITH outcomes AS (
    SELECT *
    FROM patient_outcomes
    WHERE timepoint = $timepoint AND definition = $definition AND {{ patient_filter }}
)

SELECT
    patient_id,
    condition,
    baseline_pain,
    follow_up_pain,
    100 * (follow_up_pain - baseline_pain) / baseline_pain AS percent_change,
    responder
FROM outcomes
WHERE in_completers
ORDER BY percent_change DESC, patient_id ASC
