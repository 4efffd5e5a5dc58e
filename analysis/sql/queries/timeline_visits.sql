-- timeline_visits: one patient's visits in date order, with the day since
-- the index date (negative before the first infusion).

WITH visits AS (
    SELECT * FROM stg_visits WHERE patient_id = $patient_id
),

patients AS (
    SELECT patient_id, index_date FROM patients WHERE patient_id = $patient_id
)

SELECT
    v.visit_date,
    v.visit_date - p.index_date AS day,
    v.visit_type,
    v.visit_id,
    v.route,
    v.ketamine_mg,
    v.weight_kg,
    v.pain_score,
    v.pain_post,
    v.opioid_mme_per_day,
    v.benzodiazepine,
    v.phq9,
    v.pcl5,
    v.pgic,
    v.adverse_event,
    v.sbp_max,
    v.spo2_min,
    v.site,
    v.condition_raw
FROM visits AS v
JOIN patients AS p USING (patient_id)
ORDER BY v.visit_date, v.same_day_order, v.source_line
