-- summary_backlog: per timepoint of $timepoints, the treated patients in view
-- without a pain score in that follow-up window, at the data cutoff:
--   open_windows      the window has begun and is not over (a follow-up may
--                     still come: the worklist's "due now");
--   missed            the window is over (index + window end <= cutoff,
--                     patient_timepoints.window_closed) without one;
--   missed_in_period  of those, the windows whose last day is in
--                     [$start, $end].
-- The window facts are patient_timepoints' (SPEC §3 windows, the timepoints
-- model), not re-derived.  {{ patient_filter }} is the shared Filters
-- predicate on alias pt.

WITH cutoff AS (
    SELECT cutoff_date FROM data_cutoff
),

windows AS (
    SELECT
        pt.timepoint,
        pt.window_closed,
        CAST(pt.index_date + t.window_start AS DATE) <= c.cutoff_date
            AND NOT pt.window_closed AS window_open,
        CAST(pt.index_date + t.window_end AS DATE) AS window_end_date
    FROM patient_timepoints AS pt
    JOIN timepoints AS t USING (timepoint)
    CROSS JOIN cutoff AS c
    WHERE list_contains($timepoints, pt.timepoint)
      AND NOT pt.has_follow_up_pain
      AND {{ patient_filter }}
)

SELECT
    timepoint,
    count(*) FILTER (WHERE window_open) AS open_windows,
    count(*) FILTER (WHERE window_closed) AS missed,
    count(*) FILTER (WHERE window_closed AND window_end_date BETWEEN $start AND $end)
        AS missed_in_period
FROM windows
GROUP BY timepoint
