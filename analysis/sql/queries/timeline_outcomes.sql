-- timeline_outcomes: one patient's outcome at every timepoint for one
-- responder definition, with the follow-up window in calendar dates.

WITH outcomes AS (
    SELECT *
    FROM patient_outcomes
    WHERE patient_id = $patient_id AND definition = $definition
),

timepoints AS (
    SELECT * FROM timepoints
),

follow_ups AS (
    SELECT * FROM follow_ups WHERE patient_id = $patient_id
)

SELECT
    o.timepoint,
    t.label,
    t.target_day,
    o.index_date + t.target_day AS target_date,
    o.index_date + t.window_start AS window_start_date,
    o.index_date + t.window_end AS window_end_date,
    o.baseline_pain,
    o.follow_up_pain,
    f.follow_up_pain_date,
    o.baseline_mme,
    o.follow_up_mme,
    f.follow_up_mme_date,
    o.pain_reduction,
    o.mme_reduction,
    o.eligible,
    o.due,
    o.complete,
    o.responder,
    o.provisional,
    o.provisional_responder,
    o.itt_exclusion
FROM outcomes AS o
JOIN timepoints AS t USING (timepoint)
LEFT JOIN follow_ups AS f USING (patient_id, timepoint)
ORDER BY t.sort_order
