-- report_quarter_visits: visits dated in [$start, $end] of the patients in
-- view (patient-level filters), to tell an empty quarter from a quiet one.

SELECT count(*) AS visits
FROM stg_visits AS v
JOIN patients AS p USING (patient_id)
WHERE v.visit_date BETWEEN $start AND $end
  AND {{ patient_filter }}
