-- safety_event_texts: the adverse-event text as stored on the treatment
-- sessions in view (clinical team only: analysis.metrics.adverse_events.texts), with
-- the categories it counts under and the sessions that recorded it, most
-- first.  Same sessions as safety_infusions (patients in view, optional
-- $visits_from / $visits_to).

WITH adverse_event_text AS (
    SELECT v.natural_key, v.adverse_event
    FROM stg_visits AS v
    JOIN patients AS p USING (patient_id)
    WHERE p.treated AND {{ patient_filter }}
      AND v.visit_type IN ('infusion', 'booster')
      AND v.adverse_event IS NOT NULL
      AND ($visits_from::DATE IS NULL OR v.visit_date >= $visits_from::DATE)
      AND ($visits_to::DATE IS NULL OR v.visit_date <= $visits_to::DATE)
),

categorised AS (
    {{ include adverse_event_categories }}
)

SELECT t.adverse_event AS text,
       array_to_string(c.adverse_events, '; ') AS categories,
       count(*) AS sessions
FROM adverse_event_text AS t
JOIN categorised AS c USING (natural_key)
GROUP BY t.adverse_event, c.adverse_events
ORDER BY sessions DESC, text ASC
