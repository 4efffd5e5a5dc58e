-- patients: one row per patient with the index date and what describes them.
-- Index date = first infusion or booster; patients without one are untreated.
--
-- One pass over the visits, grouped by patient.  "The first row that has X"
-- is arg_min over the visit order (visit_date, same_day_order, source_line),
-- the order the visits of one patient are read in everywhere (a NULL
-- source_line sorts last, as in ORDER BY).

WITH visits AS (
    SELECT * FROM stg_visits
),

per_patient AS (
    SELECT
        patient_id,
        min(visit_date) FILTER (WHERE visit_type IN ('infusion', 'booster')) AS index_date,
        -- A patient's condition is the one on their earliest row that has one.
        arg_min({'condition': condition, 'condition_raw': condition_raw},
                (visit_date, same_day_order, source_line))
            FILTER (WHERE condition IS NOT NULL) AS first_condition,
        arg_min(site, (visit_date, same_day_order, source_line))
            FILTER (WHERE site IS NOT NULL) AS first_site,
        -- The provider (clinician code) of the first ketamine visit that
        -- records one, else of the first visit that does.
        coalesce(
            arg_min(provider, (visit_date, same_day_order, source_line))
                FILTER (WHERE provider IS NOT NULL AND visit_type IN ('infusion', 'booster')),
            arg_min(provider, (visit_date, same_day_order, source_line))
                FILTER (WHERE provider IS NOT NULL)) AS first_provider,
        -- The route of the first ketamine visit that records one.
        arg_min(route, (visit_date, same_day_order, source_line))
            FILTER (WHERE route IS NOT NULL AND visit_type IN ('infusion', 'booster')) AS first_route,
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
    patient_id,
    index_date,
    index_date IS NOT NULL AS treated,
    coalesce(first_condition.condition, 'Unspecified') AS condition,
    first_condition.condition_raw,
    coalesce(first_site, 'Unknown') AS site,
    coalesce(first_route, 'Unknown') AS route,
    coalesce(first_provider, 'Unknown') AS provider,
    CASE WHEN index_date IS NOT NULL
         THEN year(index_date) || 'Q' || quarter(index_date) END AS cohort_quarter,
    first_visit_date,
    last_visit_date,
    visits,
    intakes,
    infusions,
    boosters,
    first_booster_date
FROM per_patient
