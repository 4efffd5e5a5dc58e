-- course_patients: per treated patient in view, the course of their
-- induction and their result at $timepoint for $definition:
--   induction_infusions  treatment sessions (infusion or booster days) on
--                        days 0..$induction_days (the patient flow's count,
--                        read from program_patient_flow)
--   mg_per_kg            mean ketamine dose per kg over those sessions, each
--                        session's mg divided by the weight recorded on it,
--                        else the last weight recorded before it; NULL when
--                        no session has both
--   in_itt, in_completers, responder  the outcome flags (patient_outcomes)

WITH flow AS (
    {{ include program_patient_flow }}
),

sessions AS (
    SELECT v.patient_id, v.visit_date, v.ketamine_mg
    FROM stg_visits AS v
    JOIN patients AS p USING (patient_id)
    WHERE p.treated
      AND v.visit_type IN ('infusion', 'booster')
      AND v.visit_date BETWEEN p.index_date AND p.index_date + $induction_days
      AND v.ketamine_mg IS NOT NULL
),

weights AS (
    SELECT patient_id, visit_date, max(weight_kg) AS weight_kg
    FROM stg_visits
    WHERE weight_kg IS NOT NULL
    GROUP BY patient_id, visit_date
),

doses AS (
    SELECT s.patient_id, avg(s.ketamine_mg / w.weight_kg) AS mg_per_kg
    FROM sessions AS s
    ASOF JOIN weights AS w
        ON s.patient_id = w.patient_id AND s.visit_date >= w.visit_date
    GROUP BY s.patient_id
)

SELECT
    f.patient_id,
    f.induction_infusions,
    d.mg_per_kg,
    f.in_itt,
    f.in_completers,
    f.responder
FROM flow AS f
LEFT JOIN doses AS d USING (patient_id)
WHERE f.treated
ORDER BY f.patient_id
