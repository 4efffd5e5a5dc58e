-- mood_pain_pairs: per patient in view with *both* follow-ups observed at
-- $timepoint (SPEC §4): due for pain30 with its follow-up pain score and due
-- for PHQ-9 response with its follow-up PHQ-9 (the completers of each), and
-- whether they responded to each.  A missing follow-up is never counted as
-- "no" on both axes, whatever the population setting elsewhere: under ITT a
-- patient without either follow-up would land in "neither" and make the two
-- outcomes look associated.  An early (provisional) follow-up does not count.
-- {{ patient_filter }} is the shared Filters predicate (parameterised).

WITH pain AS (
    SELECT patient_id, responder AS pain_responder
    FROM patient_outcomes
    WHERE definition = 'pain30' AND timepoint = $timepoint AND in_completers
      AND {{ patient_filter }}
),

mood AS (
    SELECT patient_id, condition, responder AS mood_responder
    FROM mood_outcomes
    WHERE measure = 'phq9_response' AND timepoint = $timepoint AND in_completers
      AND {{ patient_filter }}
)

SELECT patient_id, condition, pain_responder, mood_responder
FROM pain
JOIN mood USING (patient_id)
ORDER BY patient_id
