-- program_acute_by_infusion: the acute effect of each ketamine visit,
-- pain_score (before) - pain_post (right after), by infusion number: a
-- patient's infusion and booster visits numbered 1..n in date order (same-day
-- visits in export order).  Median and interquartile range across patients;
-- only numbers with at least $min_patients patients with both scores.

WITH patients AS (
    SELECT patient_id FROM patients WHERE treated AND {{ patient_filter }}
),

visits AS (
    SELECT * FROM stg_visits
),

ketamine_visits AS (
    SELECT
        v.patient_id,
        row_number() OVER (
            PARTITION BY v.patient_id
            ORDER BY v.visit_date, v.same_day_order, v.source_line) AS infusion_number,
        v.pain_score,
        v.pain_post
    FROM visits AS v
    JOIN patients AS p USING (patient_id)
    WHERE v.visit_type IN ('infusion', 'booster')
),

acute AS (
    SELECT infusion_number, pain_score - pain_post AS acute_relief
    FROM ketamine_visits
    WHERE pain_score IS NOT NULL AND pain_post IS NOT NULL
)

SELECT
    infusion_number,
    count(*) AS patients,
    quantile_cont(acute_relief, 0.25) AS q1,
    quantile_cont(acute_relief, 0.5) AS median,
    quantile_cont(acute_relief, 0.75) AS q3
FROM acute
GROUP BY infusion_number
HAVING count(*) >= $min_patients
ORDER BY infusion_number
