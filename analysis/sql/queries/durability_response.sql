-- durability_response: per treated patient in view with baseline pain > 0,
-- the time from first pain response to loss of response.
--   pain visits   = visits after the index date with a pain_score
--   responding    = pain_score at most 70% of baseline pain, i.e. a pain30
--                   response (r = (baseline - pain) / baseline >= 0.30, with
--                   the 1e-9 tolerance of SPEC §3, so 7 -> 4.9 responds)
--   first response = the first responding pain visit (start of the clock)
--   loss          = the first pain visit on a later date that is not responding
--   censored      at the patient's last visit with a pain score (not at the
--                 data cutoff: nothing is known about pain after that visit)
-- Patients who never respond have no duration (responded = false).
-- {{ patient_filter }} is the shared Filters predicate (parameterised).

WITH patients AS (
    SELECT patient_id, condition, index_date
    FROM patients
    WHERE treated AND {{ patient_filter }}
),

baselines AS (
    SELECT patient_id, baseline_pain FROM baselines
),

visits AS (
    SELECT * FROM stg_visits
),

with_baseline AS (
    SELECT p.*, b.baseline_pain
    FROM patients AS p
    JOIN baselines AS b USING (patient_id)
    WHERE b.baseline_pain > 0
),

pain_visits AS (
    SELECT
        w.patient_id,
        v.visit_date,
        v.same_day_order,
        v.source_line,
        v.pain_score,
        (w.baseline_pain - v.pain_score) / w.baseline_pain >= 0.30 - 1e-9 AS responding
    FROM with_baseline AS w
    JOIN visits AS v USING (patient_id)
    WHERE v.visit_date > w.index_date AND v.pain_score IS NOT NULL
),

first_responses AS (
    SELECT patient_id, visit_date AS response_date, pain_score AS response_pain
    FROM pain_visits
    WHERE responding
    QUALIFY row_number() OVER (
        PARTITION BY patient_id ORDER BY visit_date, same_day_order, source_line) = 1
),

losses AS (
    SELECT pv.patient_id, pv.visit_date AS loss_date, pv.pain_score AS loss_pain
    FROM pain_visits AS pv
    JOIN first_responses AS r USING (patient_id)
    WHERE pv.visit_date > r.response_date AND NOT pv.responding
    QUALIFY row_number() OVER (
        PARTITION BY pv.patient_id ORDER BY pv.visit_date, pv.same_day_order, pv.source_line) = 1
),

last_pain AS (
    SELECT patient_id, max(visit_date) AS last_pain_date, count(*) AS pain_visits
    FROM pain_visits
    GROUP BY patient_id
)

SELECT
    w.patient_id,
    w.condition,
    w.index_date,
    w.baseline_pain,
    coalesce(lp.pain_visits, 0) AS pain_visits_after_index,
    r.response_date,
    r.response_pain,
    l.loss_date,
    l.loss_pain,
    lp.last_pain_date,
    r.response_date IS NOT NULL AS responded,
    coalesce(l.loss_date, lp.last_pain_date) AS end_date,
    l.loss_date IS NOT NULL AS event,
    CASE WHEN r.response_date IS NOT NULL
         THEN coalesce(l.loss_date, lp.last_pain_date) - r.response_date END AS days
FROM with_baseline AS w
LEFT JOIN first_responses AS r USING (patient_id)
LEFT JOIN losses AS l USING (patient_id)
LEFT JOIN last_pain AS lp USING (patient_id)
ORDER BY w.patient_id
