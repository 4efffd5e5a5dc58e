-- worklist_windows: treated patients in view without a pain score in a
-- follow-up window of $timepoints, whose window is
--   'open'    begun and not over at the data cutoff: a follow-up may still
--             come (days_left = window end - cutoff, at least 1), or
--   'missed'  over at the cutoff (index + window end <= cutoff) with no pain
--             score in it; counted_as_non_responder when ITT counts them as
--             a non-responder (eligible for the pain definitions: baseline
--             pain above 0).
-- The windows, their state and the follow-up are patient_timepoints' facts
-- and the ITT rule is outcome_rules' (through patient_outcomes): nothing is
-- re-derived here.
-- {{ patient_filter }} is the shared Filters predicate on alias pt.

WITH cutoff AS (
    SELECT cutoff_date FROM data_cutoff
),

pain AS (
    SELECT patient_id, timepoint, missing_follow_up
    FROM patient_outcomes
    WHERE definition = 'pain30' AND list_contains($timepoints, timepoint)
)

SELECT
    pt.patient_id,
    pt.site,
    pt.provider,
    pt.condition,
    pt.timepoint,
    CASE WHEN pt.window_open THEN 'open' ELSE 'missed' END AS status,
    pt.index_date,
    pt.window_start_date,
    pt.window_end_date,
    CAST(pt.window_end_date - c.cutoff_date AS BIGINT) AS days_left,
    pt.last_visit_date,
    CAST(c.cutoff_date - pt.last_visit_date AS BIGINT) AS days_since_last_visit,
    o.missing_follow_up AS counted_as_non_responder
FROM patient_timepoints AS pt
CROSS JOIN cutoff AS c
JOIN pain AS o USING (patient_id, timepoint)
WHERE list_contains($timepoints, pt.timepoint)
  AND NOT pt.has_follow_up_pain
  AND (pt.window_open OR pt.window_closed)
  AND {{ patient_filter }}
ORDER BY pt.patient_id, pt.window_end_date
