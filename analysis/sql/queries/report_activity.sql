-- report_activity: one quarter's activity by site (issue 6).
--   new_patients      treated patients whose index date lies in [$start, $end]
--   patients_treated  patients with an infusion or booster visit in the quarter
--   infusions         infusion visits dated in the quarter
--   boosters          booster visits dated in the quarter
-- Site is the patient's site (patients.site), the one every filter uses.
-- Sites listed: those of the patients in view first treated by $end.

WITH selected AS (
    SELECT patient_id, site, index_date
    FROM patients
    WHERE treated AND index_date <= $end AND {{ patient_filter }}
),

new_patients AS (
    SELECT site, count(*) AS new_patients
    FROM selected
    WHERE index_date BETWEEN $start AND $end
    GROUP BY site
),

treatments AS (
    SELECT
        p.site,
        count(DISTINCT v.patient_id) AS patients_treated,
        count(*) FILTER (WHERE v.visit_type = 'infusion') AS infusions,
        count(*) FILTER (WHERE v.visit_type = 'booster') AS boosters
    FROM stg_visits AS v
    JOIN selected AS p USING (patient_id)
    WHERE v.visit_type IN ('infusion', 'booster')
      AND v.visit_date BETWEEN $start AND $end
    GROUP BY p.site
)

SELECT
    s.site,
    coalesce(n.new_patients, 0) AS new_patients,
    coalesce(t.patients_treated, 0) AS patients_treated,
    coalesce(t.infusions, 0) AS infusions,
    coalesce(t.boosters, 0) AS boosters
FROM (SELECT DISTINCT site FROM selected) AS s
LEFT JOIN new_patients AS n USING (site)
LEFT JOIN treatments AS t USING (site)
ORDER BY s.site
