-- data_freshness: per site (the visit's, else the patient's), the latest
-- visit of the patients in view and how far it is behind the data cutoff.

WITH patients AS (
    SELECT p.patient_id, p.site
    FROM patients AS p
    WHERE {{ patient_filter }}
),

visits AS (
    SELECT v.patient_id, v.visit_date, v.site
    FROM stg_visits AS v
),

cutoff AS (
    SELECT cutoff_date FROM data_cutoff
)

SELECT
    coalesce(v.site, p.site) AS site,
    count(*) AS visits,
    count(DISTINCT v.patient_id) AS patients,
    min(v.visit_date) AS first_visit,
    max(v.visit_date) AS latest_visit,
    any_value(c.cutoff_date) - max(v.visit_date) AS days_behind_cutoff
FROM visits AS v
JOIN patients AS p USING (patient_id)
CROSS JOIN cutoff AS c
GROUP BY 1
ORDER BY days_behind_cutoff DESC, site ASC
