-- opioids_monthly_use: per calendar month, among treated patients in view
-- with an MME recorded that month, how many are on opioids (> 0) and at or
-- above the CDC 2022 thresholds of 50 and 90 MME/day.  A patient counts once
-- per month, with their last recorded MME of the month.

WITH patients AS (
    SELECT p.patient_id
    FROM patients AS p
    WHERE p.treated AND {{ patient_filter }}
),

visits AS (
    SELECT patient_id, visit_date, opioid_mme_per_day, same_day_order, source_line
    FROM stg_visits
    WHERE opioid_mme_per_day IS NOT NULL
),

patient_months AS (
    SELECT
        v.patient_id,
        date_trunc('month', v.visit_date)::DATE AS month,
        v.opioid_mme_per_day AS mme
    FROM visits AS v
    JOIN patients USING (patient_id)
    QUALIFY row_number() OVER (
        PARTITION BY v.patient_id, date_trunc('month', v.visit_date)
        ORDER BY v.visit_date DESC, v.same_day_order DESC, v.source_line DESC) = 1
)

SELECT
    month,
    count(*) AS patients_recorded,
    count(*) FILTER (WHERE mme > 0) AS on_opioids,
    count(*) FILTER (WHERE mme >= 50 - 1e-9) AS at_least_50,
    count(*) FILTER (WHERE mme >= 90 - 1e-9) AS at_least_90
FROM patient_months
GROUP BY month
ORDER BY month
