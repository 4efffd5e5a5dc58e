-- report_responders: responder counts per timepoint and definition for one
-- period [$start, $end] (issue 6), ITT (SPEC §3: in_itt, eligible and due; a
-- due patient without the follow-up is a non-responder).
--   $basis = 'cohort': patients whose index date lies in the period
--   $basis = 'due':    patients whose index date + target day lies in it
--                      ("results that came due in the quarter")
--   eligible  has every baseline the definition needs
--   n         eligible and due (the ITT denominator)
--   pending   eligible but not yet due

SELECT
    o.timepoint,
    o.definition,
    count(*) AS treated,
    count(*) FILTER (WHERE o.eligible) AS eligible,
    count(*) FILTER (WHERE o.in_itt) AS n,
    count(*) FILTER (WHERE o.in_itt AND o.responder) AS responders,
    count(*) FILTER (WHERE o.not_yet_due) AS pending
FROM patient_outcomes AS o
JOIN timepoints AS t USING (timepoint)
WHERE {{ patient_filter }}
  AND CASE WHEN $basis = 'cohort' THEN o.index_date
           ELSE o.index_date + t.target_day END BETWEEN $start AND $end
GROUP BY o.timepoint, o.definition
