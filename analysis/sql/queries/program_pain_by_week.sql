-- program_pain_by_week: pain (pain_score, the usual pain before any infusion
-- that day) by week since the index date, week = floor(days / 7), weeks 0 to
-- $last_week.  A patient counts once per week: with several scores in one
-- week, their mean.  Then median and interquartile range across patients;
-- only weeks with at least $min_patients patients.

WITH patients AS (
    SELECT patient_id, index_date FROM patients WHERE treated AND {{ patient_filter }}
),

visits AS (
    SELECT * FROM stg_visits
),

scores AS (
    SELECT
        v.patient_id,
        CAST(floor((v.visit_date - p.index_date) / 7) AS INTEGER) AS week,
        v.pain_score
    FROM visits AS v
    JOIN patients AS p USING (patient_id)
    WHERE v.pain_score IS NOT NULL
      AND v.visit_date >= p.index_date
      AND v.visit_date - p.index_date < 7 * ($last_week + 1)
),

patient_weeks AS (
    SELECT patient_id, week, avg(pain_score) AS pain_score
    FROM scores
    GROUP BY patient_id, week
)

SELECT
    week,
    count(*) AS patients,
    quantile_cont(pain_score, 0.25) AS q1,
    quantile_cont(pain_score, 0.5) AS median,
    quantile_cont(pain_score, 0.75) AS q3
FROM patient_weeks
GROUP BY week
HAVING count(*) >= $min_patients
ORDER BY week
