-- data_value_issues: values nulled at ingest (SPEC §2), with the patient and
-- visit they belong to when that row is still stored.  With $filtered, only
-- the issues of patients in view.

WITH issues AS (
    SELECT * FROM value_issues
),

visit_rows AS (
    SELECT ingest_id, source_line, patient_id, visit_date, visit_type FROM visits
),

medication_rows AS (
    SELECT ingest_id, source_line, patient_id, record_date FROM medications
),

located AS (
    SELECT
        i.ingest_id,
        i.file_name,
        i.line,
        coalesce(v.patient_id, m.patient_id) AS patient_id,
        coalesce(v.visit_date, m.record_date) AS visit_date,
        v.visit_type,
        i.column_name,
        i.raw_value,
        i.reason
    FROM issues AS i
    LEFT JOIN visit_rows AS v ON v.ingest_id = i.ingest_id AND v.source_line = i.line
    LEFT JOIN medication_rows AS m ON m.ingest_id = i.ingest_id AND m.source_line = i.line
)

SELECT *
FROM located
WHERE NOT $filtered
   OR patient_id IN (SELECT p.patient_id FROM patients AS p WHERE {{ patient_filter }})
ORDER BY ingest_id DESC, line ASC
