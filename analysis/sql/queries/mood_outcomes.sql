-- mood_outcomes: the rows of the mood_outcomes model (one per treated
-- patient, timepoint and mood measure) for the patients in view.
-- {{ patient_filter }} is the shared Filters predicate (parameterised).

SELECT * EXCLUDE (timepoint_order, measure_order)
FROM mood_outcomes
WHERE {{ patient_filter }}
ORDER BY timepoint_order, measure_order, patient_id
