-- populations: the population rule of SPEC §3, the one place it is written.
-- One row per combination of the four facts of a patient at a timepoint for
-- one outcome (a responder definition, a mood measure, PGIC):
--   eligible       the patient has every baseline the outcome needs
--   window_closed  index + window end <= data cutoff (the follow-up is final)
--   complete       every follow-up value the outcome needs is there
--   met            the outcome's criterion is met by those values
-- and what follows from them:
--   due            eligible AND window_closed
--   in_itt         due: the ITT population (eligible and due; a missing
--                  follow-up counts as not a responder)
--   in_completers  due AND complete (completers: always a subset of ITT)
--   responder      due AND complete AND met
--   missing_follow_up  due without the follow-up (ITT counts them as
--                  non-responders; completers leave them out)
--   not_yet_due    eligible, window still open at the cutoff
--   provisional    not yet due with the follow-up already there: an early
--                  result, never a responder and never in a population
--   provisional_responder  provisional AND met
-- Every outcome model (outcome_rules, mood_outcomes) and the PGIC query
-- join their facts to this table instead of writing the rule again.

WITH facts AS (
    SELECT
        (i & 1) <> 0 AS eligible,
        (i & 2) <> 0 AS window_closed,
        (i & 4) <> 0 AS complete,
        (i & 8) <> 0 AS met
    FROM range(16) AS r (i)
)

SELECT
    eligible,
    window_closed,
    complete,
    met,
    eligible AND window_closed AS due,
    due AS in_itt,
    due AND complete AS in_completers,
    due AND complete AND met AS responder,
    due AND NOT complete AS missing_follow_up,
    eligible AND NOT window_closed AS not_yet_due,
    not_yet_due AND complete AS provisional,
    not_yet_due AND complete AND met AS provisional_responder
FROM facts
