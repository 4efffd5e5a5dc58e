-- mood_pain_pairs: per patient in view who is in the $population ('itt':
-- eligible and due; 'completers': eligible with the follow-up) at $timepoint
-- both for pain30 and for PHQ-9 response: whether they responded to each.
-- {{ patient_filter }} is the shared Filters predicate (parameterised).

WITH pain AS (
    SELECT patient_id, coalesce(responder, false) AS pain_responder
    FROM patient_outcomes
    WHERE definition = 'pain30' AND timepoint = $timepoint AND {{ patient_filter }}
      AND coalesce(eligible, false)
      AND CASE WHEN $population = 'itt' THEN coalesce(due, false)
               ELSE coalesce(complete, false) END
),

mood AS (
    SELECT patient_id, condition, coalesce(responder, false) AS mood_responder
    FROM mood_outcomes
    WHERE measure = 'phq9_response' AND timepoint = $timepoint AND {{ patient_filter }}
      AND eligible
      AND CASE WHEN $population = 'itt' THEN coalesce(due, false) ELSE complete END
)

SELECT patient_id, condition, pain_responder, mood_responder
FROM pain
JOIN mood USING (patient_id)
ORDER BY patient_id
