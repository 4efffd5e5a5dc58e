-- timeline_patient: one patient's description and baselines (SPEC §3).

WITH patients AS (
    SELECT * FROM patients WHERE patient_id = $patient_id
),

baselines AS (
    SELECT * FROM baselines WHERE patient_id = $patient_id
)

SELECT
    p.patient_id,
    p.treated,
    p.condition,
    p.condition_raw,
    p.site,
    p.route,
    p.index_date,
    p.cohort_quarter,
    p.first_visit_date,
    p.last_visit_date,
    p.visits,
    p.infusions,
    p.boosters,
    p.first_booster_date,
    b.baseline_pain,
    b.baseline_pain_date,
    b.baseline_mme,
    b.baseline_mme_date
FROM patients AS p
LEFT JOIN baselines AS b USING (patient_id)
