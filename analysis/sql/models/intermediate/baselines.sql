-- baselines: baseline pain, MME and mood scores of each treated patient (SPEC §3).
--   pain: last non-null pain_score in [index - 30, index]
--   PHQ-9, PCL-5: last non-null score in [index - 30, index], as for pain
--   MME:  last non-null opioid_mme_per_day in [index - 90, index]
--   benzodiazepine: last non-null benzodiazepine flag in [index - 90, index]
--         (the medication reconciliation's window, as for MME)
--
-- One pass over the visits of the 90 days up to the index date, grouped by
-- patient: "the last visit" is arg_max over the visit order (visit_date,
-- same_day_order, source_line; a NULL counts as the earliest,
-- as it sorts last in ORDER BY ... DESC).

WITH patients AS (
    SELECT patient_id, index_date FROM patients WHERE treated
),

visits AS (
    SELECT * FROM stg_visits
),

before_index AS (
    SELECT
        v.patient_id,
        v.visit_date,
        v.pain_score,
        v.opioid_mme_per_day,
        v.benzodiazepine,
        v.phq9,
        v.pcl5,
        v.visit_date >= p.index_date - 30 AS in_last_30_days,
        (v.visit_date, coalesce(v.same_day_order, 0), coalesce(v.source_line, -9223372036854775808))
            AS visit_order
    FROM visits AS v
    JOIN patients AS p USING (patient_id)
    WHERE v.visit_date BETWEEN p.index_date - 90 AND p.index_date
      AND (v.pain_score IS NOT NULL OR v.opioid_mme_per_day IS NOT NULL
           OR v.benzodiazepine IS NOT NULL OR v.phq9 IS NOT NULL OR v.pcl5 IS NOT NULL)
),

latest AS (
    SELECT
        patient_id,
        arg_max({'value': pain_score, 'date': visit_date}, visit_order)
            FILTER (WHERE pain_score IS NOT NULL AND in_last_30_days) AS pain,
        arg_max({'value': opioid_mme_per_day, 'date': visit_date}, visit_order)
            FILTER (WHERE opioid_mme_per_day IS NOT NULL) AS mme,
        arg_max(benzodiazepine, visit_order)
            FILTER (WHERE benzodiazepine IS NOT NULL) AS benzodiazepine,
        arg_max({'value': phq9, 'date': visit_date}, visit_order)
            FILTER (WHERE phq9 IS NOT NULL AND in_last_30_days) AS phq9,
        arg_max({'value': pcl5, 'date': visit_date}, visit_order)
            FILTER (WHERE pcl5 IS NOT NULL AND in_last_30_days) AS pcl5
    FROM before_index
    GROUP BY patient_id
)

SELECT
    p.patient_id,
    l.pain.value AS baseline_pain,
    l.pain.date AS baseline_pain_date,
    l.mme.value AS baseline_mme,
    l.mme.date AS baseline_mme_date,
    l.benzodiazepine AS baseline_benzodiazepine,
    l.phq9.value AS baseline_phq9,
    l.phq9.date AS baseline_phq9_date,
    l.pcl5.value AS baseline_pcl5,
    l.pcl5.date AS baseline_pcl5_date
FROM patients AS p
LEFT JOIN latest AS l USING (patient_id)
