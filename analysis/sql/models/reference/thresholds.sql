-- thresholds: the numbers of SPEC §3's responder definitions and mood
-- measures, one row (analysis/core/definitions.py holds the same numbers for the
-- Python side and tests/test_definitions.py checks that they agree).
--   pain30_reduction, pain50_reduction  relative pain reduction (r >= ...)
--   pain2pt_points       pain down at least this many points
--   mme50_reduction      relative MME reduction
--   tolerance            ratios and differences compare with this slack, so
--                        that 7 -> 4.9 counts as 30%
--   phq9_eligible_from   baseline PHQ-9 at least this (moderate depression)
--   phq9_response_reduction  PHQ-9 at least this much lower (relative)
--   phq9_remission_below PHQ-9 below this at follow-up
--   pcl5_eligible_from   baseline PCL-5 at least this (probable PTSD)
--   pcl5_improvement_points  PCL-5 at least this many points lower
SELECT
    0.30::DOUBLE AS pain30_reduction,
    0.50::DOUBLE AS pain50_reduction,
    2.0::DOUBLE AS pain2pt_points,
    0.50::DOUBLE AS mme50_reduction,
    1e-9::DOUBLE AS tolerance,
    10 AS phq9_eligible_from,
    0.50::DOUBLE AS phq9_response_reduction,
    5 AS phq9_remission_below,
    33 AS pcl5_eligible_from,
    10 AS pcl5_improvement_points
