-- data_cutoff: the latest visit date in the data (SPEC §3).
SELECT max(visit_date) AS cutoff_date
FROM visits
