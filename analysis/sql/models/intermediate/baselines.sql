-- baselines: baseline pain and MME of each treated patient (SPEC §3).
--   pain: last non-null pain_score in [index - 30, index]
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
        v.visit_date >= p.index_date - 30 AS in_pain_window,
        (v.visit_date, coalesce(v.same_day_order, 0), coalesce(v.source_line, -9223372036854775808))
            AS visit_order
    FROM visits AS v
    JOIN patients AS p USING (patient_id)
    WHERE v.visit_date BETWEEN p.index_date - 90 AND p.index_date
      AND (v.pain_score IS NOT NULL OR v.opioid_mme_per_day IS NOT NULL
           OR v.benzodiazepine IS NOT NULL)
),

latest AS (
    SELECT
        patient_id,
        arg_max({'value': pain_score, 'date': visit_date}, visit_order)
            FILTER (WHERE pain_score IS NOT NULL AND in_pain_window) AS pain,
        arg_max({'value': opioid_mme_per_day, 'date': visit_date}, visit_order)
            FILTER (WHERE opioid_mme_per_day IS NOT NULL) AS mme,
        arg_max(benzodiazepine, visit_order)
            FILTER (WHERE benzodiazepine IS NOT NULL) AS benzodiazepine
    FROM before_index
    GROUP BY patient_id
)

SELECT
    p.patient_id,
    l.pain.value AS baseline_pain,
    l.pain.date AS baseline_pain_date,
    l.mme.value AS baseline_mme,
    l.mme.date AS baseline_mme_date,
    l.benzodiazepine AS baseline_benzodiazepine
FROM patients AS p
LEFT JOIN latest AS l USING (patient_id)
