-- patient_outcomes: one row per treated patient, timepoint and responder
-- definition: eligibility, due-ness, completeness, the populations the
-- patient is in (in_itt, in_completers), responder status and provisional
-- (early, not yet due) results (SPEC §3), read from outcome_rules by the
-- patient's facts.  Every query counts a population by in_itt or
-- in_completers, never by retyping the rule.

SELECT
    pt.patient_id, pt.condition, pt.condition_raw, pt.site, pt.route, pt.index_date,
    pt.cohort_quarter, pt.timepoint, r.definition, pt.baseline_pain, pt.baseline_mme,
    pt.follow_up_pain, pt.follow_up_mme, pt.pain_reduction, pt.mme_reduction,
    r.eligible,
    r.complete,
    r.due,
    r.in_itt,
    r.in_completers,
    r.responder,
    r.missing_follow_up,
    r.not_yet_due,
    r.provisional,
    r.provisional_responder,
    r.itt_exclusion
FROM patient_timepoints AS pt
JOIN outcome_rules AS r USING (
    baseline_pain_known, has_baseline_pain, baseline_mme_known, baseline_opioid_user,
    has_follow_up_pain, has_follow_up_mme, window_closed,
    pain30_met, pain50_met, pain2pt_met, mme50_met, mme_stop_met)
