-- timepoints: the follow-up timepoints of SPEC §3.
-- Days are calendar days from the index date; windows are inclusive.
SELECT *
FROM (VALUES
    ('4w',  28,  14,  42, 1, '4 weeks'),
    ('3m',  90,  60, 120, 2, '3 months'),
    ('6m', 180, 150, 210, 3, '6 months'),
    ('12m', 365, 300, 430, 4, '12 months')
) AS t(timepoint, target_day, window_start, window_end, sort_order, label)
