-- mood_scores: one row per treated patient, timepoint and mood measure: the
-- baseline and follow-up scores (the baselines and follow_ups models', the
-- same windows and choice of visit as pain) and the measure's facts
-- eligible, complete and met (SPEC §3), and the window's last day.
-- mood_outcomes adds whether the window has closed by the data cutoff and
-- the population rule's flags;
-- this table does not read the cutoff, so a later cutoff alone changes no
-- row of it.
-- Measures and who is eligible for them:
--   phq9_response    PHQ-9 at least 50% lower than baseline; eligible when
--                    baseline PHQ-9 >= 10 (at least moderate depression)
--   phq9_remission   PHQ-9 below 5 at follow-up; eligible when baseline >= 10
--   pcl5_improvement PCL-5 at least 10 points lower (clinically meaningful);
--                    eligible when baseline PCL-5 >= 33 (probable PTSD)
-- The numbers are the thresholds model's; ratios compare with its
-- tolerance, as for pain.
-- Built once per data version.

WITH patient_windows AS (
    SELECT
        patient_id, condition, site, route, index_date, cohort_quarter, timepoint,
        window_end_date
    FROM patient_windows
),

timepoints AS (
    SELECT * FROM timepoints
),

thresholds AS (
    SELECT * FROM thresholds
),

measures AS (
    SELECT m.*
    FROM (VALUES
        ('phq9_response',    'phq9', 1),
        ('phq9_remission',   'phq9', 2),
        ('pcl5_improvement', 'pcl5', 3)
    ) AS m(measure, instrument, measure_order)
),

measured AS (
    SELECT
        pt.*,
        t.sort_order AS timepoint_order,
        m.measure,
        m.instrument,
        m.measure_order,
        CASE m.instrument
            WHEN 'phq9' THEN th.phq9_eligible_from ELSE th.pcl5_eligible_from
        END AS eligible_from,
        th.tolerance,
        th.phq9_response_reduction,
        th.phq9_remission_below,
        th.pcl5_improvement_points,
        CASE m.instrument WHEN 'phq9' THEN b.baseline_phq9 ELSE b.baseline_pcl5 END AS baseline,
        CASE m.instrument
            WHEN 'phq9' THEN b.baseline_phq9_date ELSE b.baseline_pcl5_date
        END AS baseline_date,
        CASE m.instrument WHEN 'phq9' THEN f.follow_up_phq9 ELSE f.follow_up_pcl5 END AS follow_up,
        CASE m.instrument
            WHEN 'phq9' THEN f.follow_up_phq9_date ELSE f.follow_up_pcl5_date
        END AS follow_up_date
    FROM patient_windows AS pt
    JOIN timepoints AS t ON t.timepoint = pt.timepoint
    CROSS JOIN measures AS m
    CROSS JOIN thresholds AS th
    JOIN baselines AS b ON b.patient_id = pt.patient_id
    JOIN follow_ups AS f ON f.patient_id = pt.patient_id AND f.timepoint = pt.timepoint
),

flagged AS (
    SELECT
        *,
        coalesce(baseline >= eligible_from, false) AS eligible,
        follow_up IS NOT NULL AS complete,
        coalesce(CASE measure
            WHEN 'phq9_response'
                THEN (baseline - follow_up)::DOUBLE / nullif(baseline, 0)
                    >= phq9_response_reduction - tolerance
            WHEN 'phq9_remission' THEN follow_up < phq9_remission_below
            WHEN 'pcl5_improvement' THEN baseline - follow_up >= pcl5_improvement_points
        END, false) AS met
    FROM measured
)

SELECT
    patient_id, condition, site, route, index_date, cohort_quarter,
    timepoint, timepoint_order, measure, measure_order, instrument,
    baseline, baseline_date, follow_up, follow_up_date,
    window_end_date,
    eligible,
    complete,
    met
FROM flagged
