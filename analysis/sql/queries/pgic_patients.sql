-- pgic_patients: per treated patient in view and timepoint, their PGIC
-- result (SPEC §3 rules applied to PGIC, which needs no baseline, so every
-- treated patient is eligible):
--   complete    a PGIC in the window (the visit closest to the target day,
--               never the index date: the follow_ups model)
--   met         that PGIC is one of $improved (much / very much improved)
--   due, in_itt, in_completers, responder  the populations model's rule
--               (an early PGIC of a window still open is provisional and
--               not counted anywhere)
--   target_date index date + the timepoint's target day (when the result
--               came due, for the quarter comparisons)
-- {{ patient_filter }}: the shared Filters predicate.

WITH facts AS (
    SELECT
        patient_id,
        condition,
        site,
        provider,
        route,
        timepoint,
        follow_up_pgic,
        window_closed,
        CAST(index_date + target_day AS DATE) AS target_date,
        true AS eligible,
        follow_up_pgic IS NOT NULL AS complete,
        coalesce(list_contains($improved, follow_up_pgic), false) AS met
    FROM patient_timepoints
    WHERE {{ patient_filter }}
)

SELECT
    f.patient_id,
    f.condition,
    f.site,
    f.provider,
    f.route,
    f.timepoint,
    f.target_date,
    f.follow_up_pgic,
    f.eligible,
    f.complete,
    p.due,
    p.in_itt,
    p.in_completers,
    p.responder
FROM facts AS f
JOIN populations AS p USING (eligible, window_closed, complete, met)
