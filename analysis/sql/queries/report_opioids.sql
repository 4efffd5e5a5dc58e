-- report_opioids: opioid and benzodiazepine measures of one quarter (issue 6).
--   baseline_*   new patients of the quarter (index date in [$start, $end])
--                by opioid use at baseline (SPEC §3: last MME in
--                [index - 90, index]; > 0 user, = 0 not, none unknown)
--   mme_*        visits dated in the quarter that record a daily MME
--                (session export, else the medication export)
--   benzo_*      visits dated in the quarter that record the benzodiazepine flag
--   both_*       visits recording both: on an opioid (MME > 0) and a benzodiazepine
-- Visits are those of the treated patients in view (patient-level filters);
-- untreated patients appear only in the patient flow (SPEC §3).

WITH selected AS (
    SELECT patient_id, index_date
    FROM patients
    WHERE treated AND {{ patient_filter }}
),

new_patients AS (
    SELECT b.baseline_mme
    FROM selected AS p
    JOIN baselines AS b USING (patient_id)
    WHERE p.index_date BETWEEN $start AND $end
),

quarter_visits AS (
    SELECT v.opioid_mme_per_day AS mme, v.benzodiazepine
    FROM stg_visits AS v
    JOIN selected AS p USING (patient_id)
    WHERE v.visit_date BETWEEN $start AND $end
)

SELECT
    (SELECT count(*) FROM new_patients) AS new_patients,
    (SELECT count(baseline_mme) FROM new_patients) AS baseline_known,
    (SELECT count(*) FILTER (WHERE baseline_mme > 0) FROM new_patients) AS baseline_users,
    count(mme) AS mme_recorded,
    count(*) FILTER (WHERE mme >= 50 - 1e-9) AS mme_at_least_50,
    count(*) FILTER (WHERE mme >= 90 - 1e-9) AS mme_at_least_90,
    count(benzodiazepine) AS benzo_recorded,
    count(*) FILTER (WHERE benzodiazepine) AS benzo_yes,
    count(*) FILTER (WHERE mme IS NOT NULL AND benzodiazepine IS NOT NULL) AS both_recorded,
    count(*) FILTER (WHERE mme > 0 AND benzodiazepine) AS both_yes
FROM quarter_visits
