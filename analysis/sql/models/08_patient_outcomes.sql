-- patient_outcomes: one row per treated patient, timepoint and responder
-- definition: eligibility, due-ness, completeness and responder status
-- (SPEC §3).  Ratios compare with a 1e-9 tolerance so that 7 -> 4.9 is 30%.

WITH patient_timepoints AS (
    SELECT * FROM patient_timepoints
),

definitions AS (
    SELECT * FROM definitions
),

measured AS (
    SELECT
        pt.*,
        d.definition,
        d.needs_pain,
        d.needs_mme,
        coalesce(pt.baseline_pain > 0, false) AS has_baseline_pain,
        coalesce(pt.baseline_mme > 0, false) AS baseline_opioid_user,
        (pt.baseline_pain - pt.follow_up_pain) / nullif(pt.baseline_pain, 0) AS pain_reduction,
        (pt.baseline_mme - pt.follow_up_mme) / nullif(pt.baseline_mme, 0) AS mme_reduction
    FROM patient_timepoints AS pt
    CROSS JOIN definitions AS d
),

flagged AS (
    SELECT
        *,
        (NOT needs_pain OR has_baseline_pain) AND (NOT needs_mme OR baseline_opioid_user) AS eligible,
        (NOT needs_pain OR follow_up_pain IS NOT NULL)
            AND (NOT needs_mme OR follow_up_mme IS NOT NULL) AS complete,
        coalesce(pain_reduction >= 0.30 - 1e-9, false) AS pain30_met,
        coalesce(pain_reduction >= 0.50 - 1e-9, false) AS pain50_met,
        coalesce(baseline_pain - follow_up_pain >= 2 - 1e-9, false) AS pain2pt_met,
        coalesce(mme_reduction >= 0.50 - 1e-9, false) AS mme50_met,
        coalesce(abs(follow_up_mme) < 1e-9, false) AS mme_stop_met
    FROM measured
)

SELECT
    patient_id, condition, condition_raw, site, route, index_date, cohort_quarter,
    timepoint, definition, baseline_pain, baseline_mme, follow_up_pain, follow_up_mme,
    pain_reduction, mme_reduction,
    eligible,
    complete,
    eligible AND (window_closed OR complete) AS due,
    eligible AND complete AND CASE definition
        WHEN 'pain30' THEN pain30_met
        WHEN 'pain50' THEN pain50_met
        WHEN 'pain2pt' THEN pain2pt_met
        WHEN 'mme50' THEN mme50_met
        WHEN 'mme_stop' THEN mme_stop_met
        WHEN 'claim' THEN pain30_met AND mme50_met
    END AS responder,
    -- why a treated patient is not in the ITT denominator
    CASE
        WHEN needs_pain AND baseline_pain IS NULL THEN 'no baseline pain'
        WHEN needs_pain AND NOT has_baseline_pain THEN 'baseline pain 0'
        WHEN needs_mme AND baseline_mme IS NULL THEN 'opioid use at baseline unknown'
        WHEN needs_mme AND NOT baseline_opioid_user THEN 'not on opioids at baseline'
        WHEN NOT (window_closed OR complete) THEN 'not yet due'
    END AS itt_exclusion
FROM flagged
