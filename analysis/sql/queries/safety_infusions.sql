-- safety_infusions: one row per infusion or booster visit of the treated
-- patients in view (the denominator of every safety rate), with
--   route          the route recorded on the visit, else the patient's route
--   weight_used    the weight recorded on the visit, else the patient's
--                  nearest-in-time recorded weight (any visit; a tie goes to
--                  the earlier one, the weight known at the time)
--   mg_per_kg      ketamine_mg / weight_used, and its dose band
--   adverse_events the visit's adverse-event categories, each once
--                  (adverse_event_categories.sql: the text split at ";" or
--                  ",", each part's category, unknown text "other"); the
--                  text itself is not returned
--   sbp_max, spo2_min as recorded (NULL = not recorded)
-- $visits_from / $visits_to (NULL = open) narrow the visits by date, e.g.
-- to one quarter for the quarterly report.
-- {{ patient_filter }} is the shared Filters predicate (parameterised).

WITH patients AS (
    SELECT patient_id, condition, site, route AS patient_route
    FROM patients
    WHERE treated AND {{ patient_filter }}
),

visits AS (
    SELECT * FROM stg_visits
),

infusions AS (
    SELECT
        v.natural_key,
        v.patient_id,
        p.condition,
        p.site,
        v.visit_date,
        v.visit_type,
        coalesce(v.route, p.patient_route) AS route,
        v.ketamine_mg,
        v.weight_kg,
        v.adverse_event,   -- categorised below, never returned
        v.sbp_max,
        v.spo2_min
    FROM visits AS v
    JOIN patients AS p USING (patient_id)
    WHERE v.visit_type IN ('infusion', 'booster')
      AND ($visits_from::DATE IS NULL OR v.visit_date >= $visits_from::DATE)
      AND ($visits_to::DATE IS NULL OR v.visit_date <= $visits_to::DATE)
),

recorded_weights AS (
    SELECT patient_id, visit_date AS weight_date, weight_kg, same_day_order, source_line
    FROM visits
    WHERE weight_kg IS NOT NULL
      AND patient_id IN (SELECT patient_id FROM patients)
),

nearest_weights AS (
    SELECT i.natural_key, w.weight_kg AS nearest_weight_kg, w.weight_date AS nearest_weight_date
    FROM infusions AS i
    JOIN recorded_weights AS w USING (patient_id)
    WHERE i.weight_kg IS NULL
    QUALIFY row_number() OVER (
        PARTITION BY i.natural_key
        ORDER BY abs(w.weight_date - i.visit_date), w.weight_date, w.same_day_order,
                 w.source_line) = 1
),

adverse_event_text AS (
    SELECT natural_key, adverse_event FROM infusions
),

-- each visit's adverse-event categories (never its text: SPEC §4)
events AS (
    {{ include adverse_event_categories }}
),

dosed AS (
    SELECT
        i.*,
        coalesce(i.weight_kg, n.nearest_weight_kg) AS weight_used,
        CASE WHEN i.weight_kg IS NOT NULL THEN 'this visit'
             WHEN n.nearest_weight_kg IS NOT NULL THEN 'nearest visit'
        END AS weight_source,
        n.nearest_weight_date,
        i.ketamine_mg / coalesce(i.weight_kg, n.nearest_weight_kg) AS mg_per_kg,
        coalesce(e.adverse_events, []::VARCHAR[]) AS adverse_events
    FROM infusions AS i
    LEFT JOIN nearest_weights AS n USING (natural_key)
    LEFT JOIN events AS e USING (natural_key)
)

SELECT
    natural_key,
    patient_id,
    condition,
    site,
    visit_date,
    year(visit_date) || 'Q' || quarter(visit_date) AS quarter,
    visit_type,
    route,
    ketamine_mg,
    weight_kg,
    weight_used,
    weight_source,
    nearest_weight_date,
    mg_per_kg,
    -- bands compare with the 1e-9 tolerance used for every ratio
    CASE
        WHEN mg_per_kg IS NULL THEN 'unknown'
        WHEN mg_per_kg < 0.5 - 1e-9 THEN '< 0.5'
        WHEN mg_per_kg < 1.0 - 1e-9 THEN '0.5–<1.0'
        WHEN mg_per_kg < 1.5 - 1e-9 THEN '1.0–<1.5'
        ELSE '≥ 1.5'
    END AS dose_band,
    adverse_events,
    len(adverse_events) > 0 AS any_adverse_event,
    sbp_max,
    spo2_min,
    sbp_max >= 180 AS sbp_180_or_more,
    spo2_min < 90 AS spo2_below_90
FROM dosed
ORDER BY visit_date, patient_id, natural_key
