-- patient_timepoints: one row per treated patient and timepoint with all that
-- the responder definitions need.  Materialised once per data version.

WITH patients AS (
    SELECT * FROM patients WHERE treated
),

baselines AS (
    SELECT * FROM baselines
),

follow_ups AS (
    SELECT * FROM follow_ups
),

timepoints AS (
    SELECT * FROM timepoints
),

cutoff AS (
    SELECT cutoff_date FROM data_cutoff
)

SELECT
    p.patient_id,
    p.condition,
    p.condition_raw,
    p.site,
    p.route,
    p.index_date,
    p.cohort_quarter,
    p.infusions,
    p.boosters,
    p.last_visit_date,
    t.timepoint,
    t.target_day,
    t.window_end,
    b.baseline_pain,
    b.baseline_mme,
    f.follow_up_pain,
    f.follow_up_pain_date,
    f.follow_up_mme,
    f.follow_up_mme_date,
    -- window fully elapsed by the data cutoff
    p.index_date + t.window_end <= c.cutoff_date AS window_closed
FROM patients AS p
JOIN baselines AS b USING (patient_id)
JOIN follow_ups AS f USING (patient_id)
JOIN timepoints AS t USING (timepoint)
CROSS JOIN cutoff AS c
