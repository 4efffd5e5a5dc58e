-- program_patient_flow: one row per patient in view (treated or not) with the
-- furthest stage reached and the reason for leaving the flow.
--
-- Stages: seen -> first infusion (treated) -> completed induction (at least
-- $induction_min distinct days with an infusion or booster visit on days
-- 0..$induction_days after the index date) -> due at $timepoint for
-- $definition -> with follow-up -> responder.
--
-- An untreated patient has no index date or route: the cohort filter applies
-- to their first visit date, and a route filter leaves them out.

WITH patients AS (
    SELECT * REPLACE (coalesce(index_date, first_visit_date) AS index_date)
    FROM patients
),

people AS (
    SELECT * FROM patients WHERE {{ patient_filter }}
),

visits AS (
    SELECT * FROM stg_visits
),

outcomes AS (
    SELECT *
    FROM patient_outcomes
    WHERE timepoint = $timepoint AND definition = $definition
),

induction AS (
    SELECT p.patient_id, count(DISTINCT v.visit_date) AS induction_infusions
    FROM people AS p
    JOIN visits AS v USING (patient_id)
    WHERE p.treated
      AND v.visit_type IN ('infusion', 'booster')
      AND v.visit_date BETWEEN p.index_date AND p.index_date + $induction_days
    GROUP BY p.patient_id
),

staged AS (
    SELECT
        p.patient_id,
        p.treated,
        coalesce(i.induction_infusions, 0) AS induction_infusions,
        p.treated AND coalesce(i.induction_infusions, 0) >= $induction_min AS completed_induction,
        coalesce(o.eligible, false) AS eligible,
        coalesce(o.due, false) AS due,
        coalesce(o.in_itt, false) AS in_itt,
        coalesce(o.in_completers, false) AS in_completers,
        coalesce(o.complete, false) AS complete,
        coalesce(o.responder, false) AS responder,
        o.itt_exclusion
    FROM people AS p
    LEFT JOIN induction AS i USING (patient_id)
    LEFT JOIN outcomes AS o USING (patient_id)
)

SELECT
    *,
    CASE
        WHEN NOT treated THEN 'not treated'
        WHEN NOT completed_induction THEN 'stopped before completing induction'
        -- no baseline, or not yet due (patient_outcomes says which)
        WHEN NOT in_itt THEN itt_exclusion
        WHEN NOT in_completers THEN 'lost to follow-up'
        WHEN NOT responder THEN 'non-responder'
    END AS exit_reason
FROM staged
ORDER BY patient_id
