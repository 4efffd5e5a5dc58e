-- follow_ups: per treated patient and timepoint, the follow-up pain and MME.
-- Each is the non-null value from the visit closest to the target day inside
-- the (inclusive) window, never on the index date itself; a tie goes to the
-- later visit.  Pain uses pain_score, never pain_post.

WITH patients AS (
    SELECT patient_id, index_date FROM patients WHERE treated
),

timepoints AS (
    SELECT * FROM timepoints
),

visits AS (
    SELECT * FROM stg_visits
),

visits_in_window AS (
    SELECT
        p.patient_id,
        t.timepoint,
        v.visit_date,
        v.pain_score,
        v.opioid_mme_per_day,
        abs((v.visit_date - p.index_date) - t.target_day) AS days_from_target,
        v.same_day_order,
        v.source_line
    FROM patients AS p
    JOIN visits AS v USING (patient_id)
    JOIN timepoints AS t
        ON v.visit_date BETWEEN p.index_date + t.window_start AND p.index_date + t.window_end
    WHERE v.visit_date <> p.index_date
),

follow_up_pain AS (
    SELECT patient_id, timepoint, pain_score AS follow_up_pain, visit_date AS follow_up_pain_date
    FROM visits_in_window
    WHERE pain_score IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY patient_id, timepoint
        ORDER BY days_from_target, visit_date DESC, same_day_order DESC, source_line DESC) = 1
),

follow_up_mme AS (
    SELECT patient_id, timepoint, opioid_mme_per_day AS follow_up_mme, visit_date AS follow_up_mme_date
    FROM visits_in_window
    WHERE opioid_mme_per_day IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY patient_id, timepoint
        ORDER BY days_from_target, visit_date DESC, same_day_order DESC, source_line DESC) = 1
)

SELECT
    p.patient_id,
    t.timepoint,
    fp.follow_up_pain,
    fp.follow_up_pain_date,
    fm.follow_up_mme,
    fm.follow_up_mme_date
FROM patients AS p
CROSS JOIN timepoints AS t
LEFT JOIN follow_up_pain AS fp USING (patient_id, timepoint)
LEFT JOIN follow_up_mme AS fm USING (patient_id, timepoint)
