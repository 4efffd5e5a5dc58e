-- mood_outcomes: one row per treated patient, timepoint and mood measure, with
-- the same baseline, window and population rules as pain (SPEC §3):
--   baseline  = last non-null score in [index - 30, index]
--   follow-up = non-null score from the visit closest to the target day
--               inside the inclusive window, never on the index date itself;
--               a tie goes to the later visit
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

visits AS (
    SELECT * FROM stg_visits
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

scores AS (
    -- one row per visit and questionnaire answered
    SELECT v.patient_id, v.visit_date, v.same_day_order, v.source_line,
           'phq9' AS instrument, v.phq9 AS score
    FROM visits AS v
    JOIN patients AS p USING (patient_id)
    WHERE v.phq9 IS NOT NULL
    UNION ALL
    SELECT v.patient_id, v.visit_date, v.same_day_order, v.source_line,
           'pcl5' AS instrument, v.pcl5 AS score
    FROM visits AS v
    JOIN patients AS p USING (patient_id)
    WHERE v.pcl5 IS NOT NULL
),

baselines AS (
    SELECT s.patient_id, s.instrument, s.score AS baseline, s.visit_date AS baseline_date
    FROM scores AS s
    JOIN patients AS p USING (patient_id)
    WHERE s.visit_date BETWEEN p.index_date - 30 AND p.index_date
    QUALIFY row_number() OVER (
        PARTITION BY s.patient_id, s.instrument
        ORDER BY s.visit_date DESC, s.same_day_order DESC, s.source_line DESC) = 1
),

follow_ups AS (
    SELECT s.patient_id, s.instrument, t.timepoint,
           s.score AS follow_up, s.visit_date AS follow_up_date
    FROM scores AS s
    JOIN patients AS p USING (patient_id)
    JOIN timepoints AS t
        ON s.visit_date BETWEEN p.index_date + t.window_start AND p.index_date + t.window_end
    WHERE s.visit_date <> p.index_date
    QUALIFY row_number() OVER (
        PARTITION BY s.patient_id, s.instrument, t.timepoint
        ORDER BY abs((s.visit_date - p.index_date) - t.target_day),
                 s.visit_date DESC, s.same_day_order DESC, s.source_line DESC) = 1
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
        b.baseline,
        b.baseline_date,
        f.follow_up,
        f.follow_up_date,
        p.index_date + t.window_end <= c.cutoff_date AS window_closed
    FROM patients AS p
    CROSS JOIN timepoints AS t
    CROSS JOIN measures AS m
    CROSS JOIN cutoff AS c
    LEFT JOIN baselines AS b
        ON b.patient_id = p.patient_id AND b.instrument = m.instrument
    LEFT JOIN follow_ups AS f
        ON f.patient_id = p.patient_id AND f.instrument = m.instrument
       AND f.timepoint = t.timepoint
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
