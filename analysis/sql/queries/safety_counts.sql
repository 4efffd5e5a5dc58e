-- safety_counts: the counts behind every safety rate, overall and by route,
-- dose band and quarter of the infusion, from the rows of safety_infusions
-- (same patients in view, same $visits_from / $visits_to).
-- One row per dimension × group × adverse-event category seen in the group
-- (adverse_event NULL when the group has none), each carrying the group's
--   infusions            treatment sessions (infusion visits + boosters): the
--                        denominator of adverse-event rates
--   infusion_visits, boosters   the two kinds of session
--   any_adverse_event    infusions with at least one adverse event
--   sbp_recorded, sbp_180_or_more       systolic BP recorded; >= 180
--   spo2_recorded, spo2_below_90        SpO2 recorded; below 90
--   patients, weight_from_nearest_visit, dose_unknown
-- and, for its category, events = infusions with that category (each
-- infusion lists a category once).  Groups without infusions are not here.

WITH infusions AS (
    {{ include safety_infusions }}
),

grouped AS (
    SELECT 'overall' AS dimension, 'All' AS group_name, * FROM infusions
    UNION ALL
    SELECT 'route', route, * FROM infusions WHERE route IS NOT NULL
    UNION ALL
    SELECT 'dose_band', dose_band, * FROM infusions
    UNION ALL
    SELECT 'quarter', quarter, * FROM infusions
),

group_counts AS (
    SELECT
        dimension,
        group_name,
        count(*) AS infusions,
        count(*) FILTER (WHERE visit_type = 'infusion') AS infusion_visits,
        count(*) FILTER (WHERE visit_type = 'booster') AS boosters,
        count(*) FILTER (WHERE any_adverse_event) AS any_adverse_event,
        count(sbp_max) AS sbp_recorded,
        count(*) FILTER (WHERE sbp_180_or_more) AS sbp_180_or_more,
        count(spo2_min) AS spo2_recorded,
        count(*) FILTER (WHERE spo2_below_90) AS spo2_below_90,
        count(DISTINCT patient_id) AS patients,
        count(*) FILTER (WHERE weight_source = 'nearest visit'
                           AND mg_per_kg IS NOT NULL) AS weight_from_nearest_visit,
        count(*) FILTER (WHERE dose_band = 'unknown') AS dose_unknown
    FROM grouped
    GROUP BY dimension, group_name
),

event_counts AS (
    SELECT dimension, group_name, adverse_event, count(*) AS events
    FROM (
        SELECT dimension, group_name, unnest(adverse_events) AS adverse_event
        FROM grouped
    )
    GROUP BY dimension, group_name, adverse_event
)

SELECT
    g.*,
    e.adverse_event,
    coalesce(e.events, 0) AS events
FROM group_counts AS g
LEFT JOIN event_counts AS e USING (dimension, group_name)
ORDER BY g.dimension, g.group_name, e.adverse_event
