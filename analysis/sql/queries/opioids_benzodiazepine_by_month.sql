-- opioids_benzodiazepine_by_month: benzodiazepine co-prescription per month
-- among treated patients in view.
--   visits: visits recording the benzodiazepine flag, and those with it true;
--   opioid users: patients whose last recorded MME of the month is > 0 and
--   who have a benzodiazepine record that month, and those whose last
--   benzodiazepine record of the month is true.

WITH patients AS (
    SELECT p.patient_id
    FROM patients AS p
    WHERE p.treated AND {{ patient_filter }}
),

visits AS (
    SELECT v.patient_id, v.visit_date, date_trunc('month', v.visit_date)::DATE AS month,
           v.opioid_mme_per_day, v.benzodiazepine, v.same_day_order, v.source_line
    FROM stg_visits AS v
    JOIN patients USING (patient_id)
),

benzodiazepine_visits AS (
    SELECT
        month,
        count(*) AS visits_recorded,
        count(*) FILTER (WHERE benzodiazepine) AS visits_on_benzodiazepine
    FROM visits
    WHERE benzodiazepine IS NOT NULL
    GROUP BY month
),

monthly_mme AS (
    SELECT patient_id, month, opioid_mme_per_day AS mme
    FROM visits
    WHERE opioid_mme_per_day IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY patient_id, month
        ORDER BY visit_date DESC, same_day_order DESC, source_line DESC) = 1
),

monthly_benzodiazepine AS (
    SELECT patient_id, month, benzodiazepine
    FROM visits
    WHERE benzodiazepine IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY patient_id, month
        ORDER BY visit_date DESC, same_day_order DESC, source_line DESC) = 1
),

opioid_users AS (
    SELECT
        m.month,
        count(*) AS opioid_users_recorded,
        count(*) FILTER (WHERE b.benzodiazepine) AS opioid_users_on_benzodiazepine
    FROM monthly_mme AS m
    JOIN monthly_benzodiazepine AS b USING (patient_id, month)
    WHERE m.mme > 0
    GROUP BY m.month
)

SELECT
    month,
    coalesce(bv.visits_recorded, 0) AS visits_recorded,
    coalesce(bv.visits_on_benzodiazepine, 0) AS visits_on_benzodiazepine,
    coalesce(ou.opioid_users_recorded, 0) AS opioid_users_recorded,
    coalesce(ou.opioid_users_on_benzodiazepine, 0) AS opioid_users_on_benzodiazepine
FROM benzodiazepine_visits AS bv
FULL JOIN opioid_users AS ou USING (month)
ORDER BY month
