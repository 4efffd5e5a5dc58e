-- patient_windows: one row per treated patient and timepoint with all that
-- the responder definitions need except where the data cutoff falls
-- (patient_timepoints adds that).  Materialised once per data version; it
-- does not read the cutoff, so a later cutoff alone changes no row of it.

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

thresholds AS (
    SELECT * FROM thresholds
)

SELECT
    p.patient_id,
    p.condition,
    p.condition_raw,
    p.site,
    p.provider,
    p.route,
    p.index_date,
    p.cohort_quarter,
    p.infusions,
    p.boosters,
    p.last_visit_date,
    t.timepoint,
    t.target_day,
    t.window_end,
    -- the window's first and last day (inclusive)
    CAST(p.index_date + t.window_start AS DATE) AS window_start_date,
    CAST(p.index_date + t.window_end AS DATE) AS window_end_date,
    b.baseline_pain,
    b.baseline_mme,
    f.follow_up_pain,
    f.follow_up_pain_date,
    f.follow_up_mme,
    f.follow_up_mme_date,
    f.follow_up_pgic,
    f.follow_up_pgic_date,
    -- The facts every responder definition is decided on (SPEC §3), as
    -- booleans that are never NULL: outcome_rules maps each combination of
    -- them to eligible / complete / met per definition.  The numbers are
    -- the thresholds model's; ratios compare with its tolerance (1e-9) so
    -- that 7 -> 4.9 is 30%.
    b.baseline_pain IS NOT NULL AS baseline_pain_known,
    coalesce(b.baseline_pain > 0, false) AS has_baseline_pain,
    b.baseline_mme IS NOT NULL AS baseline_mme_known,
    coalesce(b.baseline_mme > 0, false) AS baseline_opioid_user,
    f.follow_up_pain IS NOT NULL AS has_follow_up_pain,
    f.follow_up_mme IS NOT NULL AS has_follow_up_mme,
    (b.baseline_pain - f.follow_up_pain) / nullif(b.baseline_pain, 0) AS pain_reduction,
    (b.baseline_mme - f.follow_up_mme) / nullif(b.baseline_mme, 0) AS mme_reduction,
    coalesce(pain_reduction >= th.pain30_reduction - th.tolerance, false) AS pain30_met,
    coalesce(pain_reduction >= th.pain50_reduction - th.tolerance, false) AS pain50_met,
    coalesce(b.baseline_pain - f.follow_up_pain >= th.pain2pt_points - th.tolerance, false)
        AS pain2pt_met,
    coalesce(mme_reduction >= th.mme50_reduction - th.tolerance, false) AS mme50_met,
    coalesce(abs(f.follow_up_mme) < th.tolerance, false) AS mme_stop_met
FROM patients AS p
JOIN baselines AS b USING (patient_id)
JOIN follow_ups AS f USING (patient_id)
JOIN timepoints AS t USING (timepoint)
CROSS JOIN thresholds AS th
