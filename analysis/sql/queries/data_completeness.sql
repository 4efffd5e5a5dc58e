-- data_completeness: per visit type (and over all visits, visit_type NULL),
-- how many visits of the patients in view record each canonical column of
-- stg_visits (after the medication export filled MME and benzodiazepine).

WITH patients AS (
    SELECT p.patient_id
    FROM patients AS p
    WHERE {{ patient_filter }}
),

visits AS (
    SELECT v.*
    FROM stg_visits AS v
    JOIN patients USING (patient_id)
)

SELECT
    visit_type,
    count(*) AS visits,
    count(patient_id) AS patient_id,
    count(visit_date) AS visit_date,
    count(visit_type) AS visit_type_recorded,
    count(visit_id) AS visit_id,
    count(condition) AS condition,
    count(site) AS site,
    count(provider) AS provider,
    count(route) AS route,
    count(ketamine_mg) AS ketamine_mg,
    count(weight_kg) AS weight_kg,
    count(pain_score) AS pain_score,
    count(pain_post) AS pain_post,
    count(opioid_mme_per_day) AS opioid_mme_per_day,
    count(benzodiazepine) AS benzodiazepine,
    count(phq9) AS phq9,
    count(pcl5) AS pcl5,
    count(pgic) AS pgic,
    count(adverse_event) AS adverse_event,
    count(sbp_max) AS sbp_max,
    count(spo2_min) AS spo2_min
FROM visits
GROUP BY GROUPING SETS ((visit_type), ())
ORDER BY visit_type NULLS FIRST
