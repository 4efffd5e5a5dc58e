-- follow_ups: per treated patient and timepoint, the follow-up pain, MME,
-- PGIC (the patient's global impression of change) and mood scores (PHQ-9,
-- PCL-5).
-- Each is the non-null value from the visit closest to the target day inside
-- the (inclusive) window, never on the index date itself; a tie goes to the
-- later visit.  Pain uses pain_score, never pain_post.
--
-- One pass, grouped by patient and timepoint: the chosen visit is arg_min
-- over (days from the target, then the visit order reversed: visit_date,
-- same_day_order, source_line, latest first; a NULL source_line counts as
-- the earliest, as it sorts last in ORDER BY ... DESC).

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
        v.pgic,
        v.phq9,
        v.pcl5,
        (abs((v.visit_date - p.index_date) - t.target_day),
         p.index_date - v.visit_date,
         -v.same_day_order,
         -coalesce(v.source_line, -9223372036854775807)) AS closeness
    FROM patients AS p
    JOIN visits AS v USING (patient_id)
    JOIN timepoints AS t
        ON v.visit_date BETWEEN p.index_date + t.window_start AND p.index_date + t.window_end
    WHERE v.visit_date <> p.index_date
      AND (v.pain_score IS NOT NULL OR v.opioid_mme_per_day IS NOT NULL OR v.pgic IS NOT NULL
           OR v.phq9 IS NOT NULL OR v.pcl5 IS NOT NULL)
),

closest AS (
    SELECT
        patient_id,
        timepoint,
        arg_min({'value': pain_score, 'date': visit_date}, closeness)
            FILTER (WHERE pain_score IS NOT NULL) AS pain,
        arg_min({'value': opioid_mme_per_day, 'date': visit_date}, closeness)
            FILTER (WHERE opioid_mme_per_day IS NOT NULL) AS mme,
        arg_min({'value': pgic, 'date': visit_date}, closeness)
            FILTER (WHERE pgic IS NOT NULL) AS pgic,
        arg_min({'value': phq9, 'date': visit_date}, closeness)
            FILTER (WHERE phq9 IS NOT NULL) AS phq9,
        arg_min({'value': pcl5, 'date': visit_date}, closeness)
            FILTER (WHERE pcl5 IS NOT NULL) AS pcl5
    FROM visits_in_window
    GROUP BY patient_id, timepoint
)

SELECT
    p.patient_id,
    t.timepoint,
    c.pain.value AS follow_up_pain,
    c.pain.date AS follow_up_pain_date,
    c.mme.value AS follow_up_mme,
    c.mme.date AS follow_up_mme_date,
    c.pgic.value AS follow_up_pgic,
    c.pgic.date AS follow_up_pgic_date,
    c.phq9.value AS follow_up_phq9,
    c.phq9.date AS follow_up_phq9_date,
    c.pcl5.value AS follow_up_pcl5,
    c.pcl5.date AS follow_up_pcl5_date
FROM patients AS p
CROSS JOIN timepoints AS t
LEFT JOIN closest AS c USING (patient_id, timepoint)
