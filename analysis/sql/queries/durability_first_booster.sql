-- durability_first_booster: per treated patient in view, the time from the
-- index date (first infusion or booster) to the first booster visit after it.
--   event = a booster visit after the index date (a booster on the index date
--           is the index visit itself, not a return of pain)
--   else censored at the patient's last visit of any kind
-- {{ patient_filter }} is the shared Filters predicate (parameterised).

WITH patients AS (
    SELECT patient_id, condition, index_date, last_visit_date
    FROM patients
    WHERE treated AND {{ patient_filter }}
),

visits AS (
    SELECT * FROM stg_visits
),

first_boosters AS (
    SELECT v.patient_id, min(v.visit_date) AS first_booster_date
    FROM visits AS v
    JOIN patients AS p USING (patient_id)
    WHERE v.visit_type = 'booster' AND v.visit_date > p.index_date
    GROUP BY v.patient_id
)

SELECT
    p.patient_id,
    p.condition,
    p.index_date AS start_date,
    b.first_booster_date,
    p.last_visit_date,
    coalesce(b.first_booster_date, p.last_visit_date) AS end_date,
    b.first_booster_date IS NOT NULL AS event,
    coalesce(b.first_booster_date, p.last_visit_date) - p.index_date AS days
FROM patients AS p
LEFT JOIN first_boosters AS b USING (patient_id)
ORDER BY p.patient_id
