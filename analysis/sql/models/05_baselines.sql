-- baselines: baseline pain and MME of each treated patient (SPEC §3).
--   pain: last non-null pain_score in [index - 30, index]
--   MME:  last non-null opioid_mme_per_day in [index - 90, index]

WITH patients AS (
    SELECT patient_id, index_date FROM patients WHERE treated
),

visits AS (
    SELECT * FROM stg_visits
),

baseline_pain AS (
    SELECT v.patient_id, v.pain_score AS baseline_pain, v.visit_date AS baseline_pain_date
    FROM visits AS v
    JOIN patients AS p USING (patient_id)
    WHERE v.pain_score IS NOT NULL
      AND v.visit_date BETWEEN p.index_date - 30 AND p.index_date
    QUALIFY row_number() OVER (
        PARTITION BY v.patient_id
        ORDER BY v.visit_date DESC, v.same_day_order DESC, v.source_line DESC) = 1
),

baseline_mme AS (
    SELECT v.patient_id, v.opioid_mme_per_day AS baseline_mme, v.visit_date AS baseline_mme_date
    FROM visits AS v
    JOIN patients AS p USING (patient_id)
    WHERE v.opioid_mme_per_day IS NOT NULL
      AND v.visit_date BETWEEN p.index_date - 90 AND p.index_date
    QUALIFY row_number() OVER (
        PARTITION BY v.patient_id
        ORDER BY v.visit_date DESC, v.same_day_order DESC, v.source_line DESC) = 1
)

SELECT
    p.patient_id,
    bp.baseline_pain,
    bp.baseline_pain_date,
    bm.baseline_mme,
    bm.baseline_mme_date
FROM patients AS p
LEFT JOIN baseline_pain AS bp USING (patient_id)
LEFT JOIN baseline_mme AS bm USING (patient_id)
