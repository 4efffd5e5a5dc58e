-- pgic_patients: per treated patient in view and timepoint, their PGIC
-- result (SPEC §3 rules applied to PGIC, which needs no baseline):
--   due         the window is over at the cutoff (index + window end <= cutoff)
--   complete    a final PGIC: the window is over and has one (the visit
--               closest to the target day, never the index date: the
--               follow_ups model); an early PGIC of a window still open is
--               provisional and not counted anywhere
--   completer   due and complete (the same patients)
--   responder   completer with a PGIC in $improved (much / very much improved)
--   target_date index date + the timepoint's target day (when the result
--               came due, for the quarter comparisons)
-- {{ patient_filter }}: the shared Filters predicate.

SELECT
    patient_id,
    condition,
    site,
    provider,
    route,
    timepoint,
    CAST(index_date + target_day AS DATE) AS target_date,
    follow_up_pgic,
    true AS eligible,
    window_closed AS due,
    window_closed AND follow_up_pgic IS NOT NULL AS complete,
    window_closed AND follow_up_pgic IS NOT NULL AS completer,
    window_closed AND coalesce(list_contains($improved, follow_up_pgic), false) AS responder
FROM patient_timepoints
WHERE {{ patient_filter }}
