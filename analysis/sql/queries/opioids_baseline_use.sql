-- opioids_baseline_use: treated patients in view by opioid use at baseline
-- (SPEC §3: last MME in [index - 90, index]; > 0 user, = 0 not, none unknown).

WITH patients AS (
    SELECT p.patient_id
    FROM patients AS p
    WHERE p.treated AND {{ patient_filter }}
),

baselines AS (
    SELECT patient_id, baseline_mme FROM baselines
)

SELECT
    count(*) AS treated,
    count(b.baseline_mme) AS baseline_known,
    count(*) FILTER (WHERE b.baseline_mme > 0) AS baseline_users,
    count(*) FILTER (WHERE b.baseline_mme >= 50 - 1e-9) AS baseline_at_least_50,
    count(*) FILTER (WHERE b.baseline_mme >= 90 - 1e-9) AS baseline_at_least_90,
    median(b.baseline_mme) FILTER (WHERE b.baseline_mme > 0) AS median_baseline_mme
FROM patients
LEFT JOIN baselines AS b USING (patient_id)
