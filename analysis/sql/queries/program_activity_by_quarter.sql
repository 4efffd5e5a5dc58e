-- program_activity_by_quarter: treatment activity per calendar quarter for the
-- treated patients in view, from the quarter of the first index date in view
-- to the quarter of the data cutoff (quarters without activity included):
--   patients_starting  patients whose index date (first infusion or booster)
--                      falls in the quarter
--   patients_treated   distinct patients with an infusion or booster that quarter
--   infusions          infusion visits dated in the quarter
--   boosters           booster visits dated in the quarter

WITH patients AS (
    SELECT * FROM patients WHERE treated AND {{ patient_filter }}
),

visits AS (
    SELECT * FROM stg_visits
),

cutoff AS (
    SELECT cutoff_date FROM data_cutoff
),

ketamine_visits AS (
    SELECT
        v.patient_id,
        v.visit_type,
        CAST(date_trunc('quarter', v.visit_date) AS DATE) AS quarter_start
    FROM visits AS v
    JOIN patients AS p USING (patient_id)
    WHERE v.visit_type IN ('infusion', 'booster')
),

quarters AS (
    SELECT CAST(unnest(generate_series(
        date_trunc('quarter', min(p.index_date)),
        date_trunc('quarter', any_value(c.cutoff_date)),
        INTERVAL 3 MONTH)) AS DATE) AS quarter_start
    FROM patients AS p
    CROSS JOIN cutoff AS c
    HAVING count(*) > 0
),

starts AS (
    SELECT CAST(date_trunc('quarter', index_date) AS DATE) AS quarter_start,
           count(*) AS patients_starting
    FROM patients
    GROUP BY 1
),

given AS (
    SELECT
        quarter_start,
        count(DISTINCT patient_id) AS patients_treated,
        count(*) FILTER (WHERE visit_type = 'infusion') AS infusions,
        count(*) FILTER (WHERE visit_type = 'booster') AS boosters
    FROM ketamine_visits
    GROUP BY 1
)

SELECT
    year(q.quarter_start) || 'Q' || quarter(q.quarter_start) AS quarter,
    q.quarter_start,
    CAST(q.quarter_start + INTERVAL 3 MONTH - INTERVAL 1 DAY AS DATE) AS quarter_end,
    coalesce(s.patients_starting, 0) AS patients_starting,
    coalesce(g.patients_treated, 0) AS patients_treated,
    coalesce(g.infusions, 0) AS infusions,
    coalesce(g.boosters, 0) AS boosters
FROM quarters AS q
LEFT JOIN starts AS s USING (quarter_start)
LEFT JOIN given AS g USING (quarter_start)
ORDER BY q.quarter_start
