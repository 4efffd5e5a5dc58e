-- mood_outcomes: one row per treated patient, timepoint and mood measure, with
-- the same baseline, window and population rules as pain (SPEC §3): the
-- scores and the facts eligible, complete and met are mood_scores' (see
-- there for the measures), whether each window has closed by the data
-- cutoff patient_timepoints', and due, in_itt, in_completers, responder and
-- provisional the populations model's (the one population rule).
-- A view over the saved mood_scores: only window_closed reads the cutoff.

WITH windows AS (
    -- whether a window ending on a given day has closed: patient_timepoints'
    -- rule, looked up by the day (a few thousand rows: joining the scores
    -- to patient_timepoints by patient took 5x as long at 1M visits)
    SELECT DISTINCT window_end_date, window_closed FROM patient_timepoints
)

SELECT
    m.patient_id, m.condition, m.site, m.route, m.index_date, m.cohort_quarter,
    m.timepoint, m.timepoint_order, m.measure, m.measure_order, m.instrument,
    m.baseline, m.baseline_date, m.follow_up, m.follow_up_date,
    m.eligible,
    m.complete,
    -- due, in_itt, in_completers, responder, ...: the population rule's flags
    p.* EXCLUDE (eligible, window_closed, complete, met),
    -- why a treated patient is not in the ITT denominator
    CASE
        WHEN m.baseline IS NULL THEN 'no baseline score'
        WHEN NOT m.eligible THEN 'baseline below threshold'
        WHEN p.not_yet_due THEN 'not yet due'
    END AS itt_exclusion
FROM mood_scores AS m
JOIN windows AS w USING (window_end_date)
JOIN populations AS p
    ON p.eligible = m.eligible AND p.window_closed = w.window_closed
   AND p.complete = m.complete AND p.met = m.met
