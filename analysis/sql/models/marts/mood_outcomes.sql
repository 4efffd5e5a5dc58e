-- mood_outcomes: one row per treated patient, timepoint and mood measure, with
-- the same baseline, window and population rules as pain (SPEC §3): the
-- baseline and follow-up scores are the baselines and follow_ups models'
-- (the same windows and choice of visit as pain), and
--   due       = eligible and index + window end <= cutoff (the whole window
--               lies inside the data), with or without a follow-up
--   completer = due and the follow-up is there (a subset of ITT)
--   provisional = eligible, not yet due, the follow-up already there: an
--               early result, never counted (shown on clinical pages only)
-- Measures and who is eligible for them:
--   phq9_response    PHQ-9 at least 50% lower than baseline; eligible when
--                    baseline PHQ-9 >= 10 (at least moderate depression)
--   phq9_remission   PHQ-9 below 5 at follow-up; eligible when baseline >= 10
--   pcl5_improvement PCL-5 at least 10 points lower (clinically meaningful);
--                    eligible when baseline PCL-5 >= 33 (probable PTSD)
-- Ratios compare with a 1e-9 tolerance, as for pain.
-- Built once per data version; queries filter it by the patient columns.

WITH patients AS (
    SELECT patient_id, condition, site, route, index_date, cohort_quarter
    FROM patients
    WHERE treated
),

timepoints AS (
    SELECT * FROM timepoints
),

cutoff AS (
    SELECT cutoff_date FROM data_cutoff
),

measures AS (
    SELECT *
    FROM (VALUES
        ('phq9_response',    'phq9', 10, 1),
        ('phq9_remission',   'phq9', 10, 2),
        ('pcl5_improvement', 'pcl5', 33, 3)
    ) AS m(measure, instrument, eligible_from, measure_order)
),

measured AS (
    SELECT
        p.*,
        t.timepoint,
        t.sort_order AS timepoint_order,
        m.measure,
        m.instrument,
        m.eligible_from,
        m.measure_order,
        CASE m.instrument WHEN 'phq9' THEN b.baseline_phq9 ELSE b.baseline_pcl5 END AS baseline,
        CASE m.instrument
            WHEN 'phq9' THEN b.baseline_phq9_date ELSE b.baseline_pcl5_date
        END AS baseline_date,
        CASE m.instrument WHEN 'phq9' THEN f.follow_up_phq9 ELSE f.follow_up_pcl5 END AS follow_up,
        CASE m.instrument
            WHEN 'phq9' THEN f.follow_up_phq9_date ELSE f.follow_up_pcl5_date
        END AS follow_up_date,
        p.index_date + t.window_end <= c.cutoff_date AS window_closed
    FROM patients AS p
    CROSS JOIN timepoints AS t
    CROSS JOIN measures AS m
    CROSS JOIN cutoff AS c
    JOIN baselines AS b ON b.patient_id = p.patient_id
    JOIN follow_ups AS f ON f.patient_id = p.patient_id AND f.timepoint = t.timepoint
),

flagged AS (
    SELECT
        *,
        coalesce(baseline >= eligible_from, false) AS eligible,
        follow_up IS NOT NULL AS complete,
        coalesce(CASE measure
            WHEN 'phq9_response'
                THEN (baseline - follow_up)::DOUBLE / nullif(baseline, 0) >= 0.50 - 1e-9
            WHEN 'phq9_remission' THEN follow_up < 5
            WHEN 'pcl5_improvement' THEN baseline - follow_up >= 10
        END, false) AS met
    FROM measured
)

SELECT
    patient_id, condition, site, route, index_date, cohort_quarter,
    timepoint, timepoint_order, measure, measure_order, instrument,
    baseline, baseline_date, follow_up, follow_up_date,
    eligible,
    complete,
    eligible AND window_closed AS due,
    eligible AND window_closed AND complete AS completer,
    eligible AND window_closed AND complete AND met AS responder,
    eligible AND NOT window_closed AND complete AS provisional,
    eligible AND NOT window_closed AND complete AND met AS provisional_responder,
    -- why a treated patient is not in the ITT denominator
    CASE
        WHEN baseline IS NULL THEN 'no baseline score'
        WHEN NOT eligible THEN 'baseline below threshold'
        WHEN NOT window_closed THEN 'not yet due'
    END AS itt_exclusion
FROM flagged
