-- report_safety: infusion and booster visits dated in one quarter (issue 6)
-- with what happened at them: one row per adverse event type (NULL: none
-- recorded) with the number of such visits, how many recorded a systolic BP
-- of 180 mmHg or more and an SpO2 below 90%.  Visits are those of the
-- patients in view (patient-level filters).

SELECT
    v.adverse_event,
    count(*) AS visits,
    count(*) FILTER (WHERE v.sbp_max >= 180 - 1e-9) AS sbp_180,
    count(v.sbp_max) AS sbp_recorded,
    count(*) FILTER (WHERE v.spo2_min < 90 - 1e-9) AS spo2_below_90,
    count(v.spo2_min) AS spo2_recorded
FROM stg_visits AS v
JOIN patients AS p USING (patient_id)
WHERE v.visit_type IN ('infusion', 'booster')
  AND v.visit_date BETWEEN $start AND $end
  AND {{ patient_filter }}
GROUP BY v.adverse_event
ORDER BY v.adverse_event NULLS FIRST
