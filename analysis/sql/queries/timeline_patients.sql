-- timeline_patients: the patients in view (shared filters over alias p), for
-- the patient picker: treated patients first by index date, then untreated.

SELECT
    p.patient_id,
    p.treated,
    p.condition,
    p.site,
    p.index_date,
    p.last_visit_date
FROM patients AS p
WHERE {{ patient_filter }}
ORDER BY p.patient_id
