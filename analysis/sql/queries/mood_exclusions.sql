-- mood_exclusions: per mood measure at $timepoint, the treated patients in
-- view and why some are not in the denominator:
--   no_baseline_score, baseline_below_threshold   not eligible
--   not_yet_due        eligible, window still open at the cutoff (with or
--                      without an early follow-up)
--   provisional        ... of those, with an early follow-up score (not counted)
--   missing_follow_up  eligible and due without the follow-up (ITT counts
--                      them as non-responders; completers leave them out)
-- {{ patient_filter }} is the shared Filters predicate (parameterised).

SELECT
    measure,
    count(*) AS treated,
    count(*) FILTER (WHERE itt_exclusion = 'no baseline score') AS no_baseline_score,
    count(*) FILTER (WHERE itt_exclusion = 'baseline below threshold')
        AS baseline_below_threshold,
    count(*) FILTER (WHERE not_yet_due) AS not_yet_due,
    count(*) FILTER (WHERE provisional) AS provisional,
    count(*) FILTER (WHERE missing_follow_up) AS missing_follow_up
FROM mood_outcomes
WHERE timepoint = $timepoint AND {{ patient_filter }}
GROUP BY measure
