-- opioids_mme_records: every recorded daily MME of each baseline opioid user
-- in view (SPEC §3: baseline MME > 0), one value per patient and date (the
-- day's last record, ordered as the baseline model orders them), from the
-- baseline record onward.  {{ patient_filter }} is the shared Filters predicate
-- over alias p (parameterised).

WITH patients AS (
    SELECT p.patient_id, p.condition, p.site, p.route, p.index_date
    FROM patients AS p
    WHERE p.treated AND {{ patient_filter }}
),

baselines AS (
    SELECT patient_id, baseline_mme, baseline_mme_date
    FROM baselines
    WHERE baseline_mme > 0
),

visits AS (
    SELECT patient_id, visit_date, opioid_mme_per_day, same_day_order, source_line
    FROM stg_visits
    WHERE opioid_mme_per_day IS NOT NULL
),

daily_mme AS (
    SELECT patient_id, visit_date AS record_date, opioid_mme_per_day AS mme
    FROM visits
    QUALIFY row_number() OVER (
        PARTITION BY patient_id, visit_date
        ORDER BY same_day_order DESC, source_line DESC) = 1
)

SELECT
    p.patient_id,
    p.condition,
    p.site,
    p.route,
    p.index_date,
    b.baseline_mme,
    b.baseline_mme_date,
    d.record_date,
    d.record_date - p.index_date AS days_since_index,
    d.mme
FROM patients AS p
JOIN baselines AS b USING (patient_id)
JOIN daily_mme AS d USING (patient_id)
WHERE d.record_date >= b.baseline_mme_date
ORDER BY p.patient_id, d.record_date
