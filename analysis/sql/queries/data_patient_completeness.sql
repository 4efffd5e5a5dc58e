-- data_patient_completeness: among treated patients in view, how many have
-- what the outcome definitions need (SPEC §3).

WITH patients AS (
    SELECT p.*
    FROM patients AS p
    WHERE p.treated AND {{ patient_filter }}
),

baselines AS (
    SELECT * FROM baselines
)

SELECT
    count(*) AS treated,
    count(*) FILTER (WHERE p.condition <> 'Unspecified') AS with_condition,
    count(*) FILTER (WHERE p.site <> 'Unknown') AS with_site,
    count(*) FILTER (WHERE p.route <> 'Unknown') AS with_route,
    count(b.baseline_pain) AS with_baseline_pain,
    count(b.baseline_mme) AS with_baseline_mme
FROM patients AS p
LEFT JOIN baselines AS b USING (patient_id)
