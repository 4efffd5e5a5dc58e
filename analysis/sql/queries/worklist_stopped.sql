-- worklist_stopped: treated patients in view who stopped during induction:
-- they did not complete it (the patient flow's rule, definitions.py: at least
-- $induction_min treatment sessions on days 0..$induction_days), have had no
-- visit of any kind since their last treatment session, and that was at
-- least $stopped_after_days days before the data cutoff.

WITH flow AS (
    {{ include program_patient_flow }}
),

cutoff AS (
    SELECT cutoff_date FROM data_cutoff
),

last_session AS (
    SELECT patient_id, max(visit_date) AS last_session_date
    FROM stg_visits
    WHERE visit_type IN ('infusion', 'booster')
    GROUP BY patient_id
)

SELECT
    p.patient_id,
    p.site,
    p.provider,
    p.condition,
    p.index_date,
    f.induction_infusions,
    p.last_visit_date,
    CAST(c.cutoff_date - p.last_visit_date AS BIGINT) AS days_since_last_visit
FROM flow AS f
JOIN patients AS p USING (patient_id)
JOIN last_session AS s USING (patient_id)
CROSS JOIN cutoff AS c
WHERE f.treated
  AND NOT f.completed_induction
  AND p.last_visit_date = s.last_session_date
  AND c.cutoff_date - p.last_visit_date >= $stopped_after_days
ORDER BY p.patient_id
