-- patients: one row per patient with the index date and what describes them.
-- Index date = first infusion or booster; patients without one are untreated.

WITH visits AS (
    SELECT * FROM stg_visits
),

index_dates AS (
    SELECT patient_id, min(visit_date) AS index_date
    FROM visits
    WHERE visit_type IN ('infusion', 'booster')
    GROUP BY patient_id
),

first_condition AS (
    -- A patient's condition is the one on their earliest row that has one.
    SELECT patient_id, condition, condition_raw
    FROM visits
    WHERE condition IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY patient_id ORDER BY visit_date, same_day_order, source_line) = 1
),

first_site AS (
    SELECT patient_id, site
    FROM visits
    WHERE site IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY patient_id ORDER BY visit_date, same_day_order, source_line) = 1
),

first_route AS (
    -- The route of the first ketamine visit that records one.
    SELECT patient_id, route
    FROM visits
    WHERE route IS NOT NULL AND visit_type IN ('infusion', 'booster')
    QUALIFY row_number() OVER (
        PARTITION BY patient_id ORDER BY visit_date, same_day_order, source_line) = 1
),

visit_counts AS (
    SELECT
        patient_id,
        min(visit_date) AS first_visit_date,
        max(visit_date) AS last_visit_date,
        count(*) AS visits,
        count(*) FILTER (WHERE visit_type = 'intake') AS intakes,
        count(*) FILTER (WHERE visit_type = 'infusion') AS infusions,
        count(*) FILTER (WHERE visit_type = 'booster') AS boosters,
        min(visit_date) FILTER (WHERE visit_type = 'booster') AS first_booster_date
    FROM visits
    GROUP BY patient_id
)

SELECT
    c.patient_id,
    i.index_date,
    i.index_date IS NOT NULL AS treated,
    coalesce(fc.condition, 'Unspecified') AS condition,
    fc.condition_raw,
    coalesce(fs.site, 'Unknown') AS site,
    coalesce(fr.route, 'Unknown') AS route,
    CASE WHEN i.index_date IS NOT NULL
         THEN year(i.index_date) || 'Q' || quarter(i.index_date) END AS cohort_quarter,
    c.first_visit_date,
    c.last_visit_date,
    c.visits,
    c.intakes,
    c.infusions,
    c.boosters,
    c.first_booster_date
FROM visit_counts AS c
LEFT JOIN index_dates AS i USING (patient_id)
LEFT JOIN first_condition AS fc USING (patient_id)
LEFT JOIN first_site AS fs USING (patient_id)
LEFT JOIN first_route AS fr USING (patient_id)
