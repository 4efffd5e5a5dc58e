-- outcome_exclusions: per reading (timepoint in $timepoints, responder
-- definition in $definitions), the treated patients in view and why some
-- are not in its ITT denominator (SPEC §3; patient_outcomes' flags):
--   no_baseline_pain, baseline_pain_zero, opioid_use_unknown,
--   not_on_opioids_at_baseline  the baseline the definition needs is missing
--   no_baseline        any of those (not eligible)
--   not_yet_due        eligible, the window still open at the cutoff
--   provisional        ... of those, with an early follow-up (not counted)
--   missing_follow_up  due without the follow-up (ITT counts them as
--                      non-responders; completers leave them out)
-- {{ patient_filter }} is the shared Filters predicate (parameterised).

SELECT
    timepoint,
    definition,
    count(*) FILTER (WHERE itt_exclusion = 'no baseline pain') AS no_baseline_pain,
    count(*) FILTER (WHERE itt_exclusion = 'baseline pain 0') AS baseline_pain_zero,
    count(*) FILTER (WHERE itt_exclusion = 'opioid use at baseline unknown')
        AS opioid_use_unknown,
    count(*) FILTER (WHERE itt_exclusion = 'not on opioids at baseline')
        AS not_on_opioids_at_baseline,
    count(*) FILTER (WHERE NOT eligible) AS no_baseline,
    count(*) FILTER (WHERE not_yet_due) AS not_yet_due,
    count(*) FILTER (WHERE provisional) AS provisional,
    count(*) FILTER (WHERE missing_follow_up) AS missing_follow_up,
    count(*) AS treated
FROM patient_outcomes
WHERE list_contains($timepoints, timepoint)
  AND list_contains($definitions, definition)
  AND {{ patient_filter }}
GROUP BY timepoint, definition
