-- patient_timepoints: one row per treated patient and timepoint with all that
-- the responder definitions need: patient_windows' rows and where the data
-- cutoff falls in each window.  A view: only these two columns read the
-- cutoff, so the saved tables do not change when it moves.

SELECT
    w.*,
    -- window fully elapsed by the data cutoff (SPEC §3: only then is the
    -- patient due and the follow-up value final)
    w.window_end_date <= c.cutoff_date AS window_closed,
    -- window begun but not over at the cutoff: a follow-up may still come
    w.window_start_date <= c.cutoff_date AND NOT window_closed AS window_open
FROM patient_windows AS w
CROSS JOIN data_cutoff AS c
