-- program_outcomes_due: per treated patient in view and responder definition
-- (of $definitions) at $timepoint, the outcome flags, the pain change and the
-- date the result came due: index date + the timepoint's target day.

WITH outcomes AS (
    SELECT *
    FROM patient_outcomes
    WHERE timepoint = $timepoint
      AND list_contains($definitions, definition)
      AND {{ patient_filter }}
),

timepoints AS (
    SELECT timepoint, target_day FROM timepoints
)

SELECT
    o.patient_id,
    o.definition,
    o.condition,
    o.index_date,
    CAST(o.index_date + t.target_day AS DATE) AS target_date,
    o.eligible,
    o.due,
    o.complete,
    o.in_itt,
    o.in_completers,
    o.responder,
    o.baseline_pain,
    o.follow_up_pain,
    o.follow_up_pain - o.baseline_pain AS pain_change
FROM outcomes AS o
JOIN timepoints AS t USING (timepoint)
ORDER BY o.definition, o.patient_id
