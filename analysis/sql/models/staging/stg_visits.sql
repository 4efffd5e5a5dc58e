-- stg_visits: one row per accepted visit, with the medication export filling
-- MME and the benzodiazepine flag where the session export gives none
-- (SPEC §2, medication export).

WITH visits AS (
    SELECT * FROM visits
),

medications AS (
    SELECT * FROM medications
),

medication_days AS (
    -- A date's MME is the sum over its opioids (0 when the list has none);
    -- one drug without a factor, or an opioid without a computable dose,
    -- leaves that date's MME unknown.
    SELECT
        patient_id,
        record_date,
        CASE
            WHEN bool_or(drug_class = 'unknown' OR (drug_class = 'opioid' AND mme IS NULL)) THEN NULL
            ELSE coalesce(sum(mme) FILTER (WHERE drug_class = 'opioid'), 0)
        END AS medication_mme,
        bool_or(drug_class = 'benzodiazepine') AS medication_benzodiazepine
    FROM medications
    GROUP BY patient_id, record_date
)

SELECT
    v.* REPLACE (
        coalesce(v.opioid_mme_per_day, m.medication_mme) AS opioid_mme_per_day,
        coalesce(v.benzodiazepine, m.medication_benzodiazepine) AS benzodiazepine
    ),
    -- Order of visits on one day: intake, follow-up, infusion, booster.
    CASE v.visit_type WHEN 'intake' THEN 1 WHEN 'follow_up' THEN 2
                      WHEN 'infusion' THEN 3 WHEN 'booster' THEN 4 END AS same_day_order
FROM visits AS v
LEFT JOIN medication_days AS m
    ON m.patient_id = v.patient_id AND m.record_date = v.visit_date
