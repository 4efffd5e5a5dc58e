-- outcome_rules: the responder rules of SPEC §3 as a lookup table.  One row
-- per responder definition and per combination of the boolean facts of
-- patient_timepoints (2^12 combinations x 6 definitions), saying whether a
-- patient with those facts is eligible for the definition, complete (has
-- every follow-up value it needs) and meets it, and why they are not in the
-- ITT denominator.  What follows from eligible, window_closed, complete and
-- met (due, in_itt, in_completers, responder, provisional, ...) is the
-- population rule's, read from the populations model (SPEC §3, written once).
--
-- patient_outcomes joins every patient and timepoint to its rows here, and
-- the grid counts (sql/queries/outcome_grid.sql) join patient counts per
-- combination to the same rows, so the rules are written once.

WITH facts AS (
    SELECT
        (i & 1) <> 0    AS baseline_pain_known,
        (i & 2) <> 0    AS has_baseline_pain,
        (i & 4) <> 0    AS baseline_mme_known,
        (i & 8) <> 0    AS baseline_opioid_user,
        (i & 16) <> 0   AS has_follow_up_pain,
        (i & 32) <> 0   AS has_follow_up_mme,
        (i & 64) <> 0   AS window_closed,
        (i & 128) <> 0  AS pain30_met,
        (i & 256) <> 0  AS pain50_met,
        (i & 512) <> 0  AS pain2pt_met,
        (i & 1024) <> 0 AS mme50_met,
        (i & 2048) <> 0 AS mme_stop_met
    FROM range(4096) AS r(i)
),

flagged AS (
    SELECT
        f.*,
        d.definition,
        d.needs_pain,
        d.needs_mme,
        (NOT d.needs_pain OR f.has_baseline_pain)
            AND (NOT d.needs_mme OR f.baseline_opioid_user) AS eligible,
        (NOT d.needs_pain OR f.has_follow_up_pain)
            AND (NOT d.needs_mme OR f.has_follow_up_mme) AS complete
    FROM facts AS f
    CROSS JOIN definitions AS d
),

judged AS (
    SELECT
        *,
        CASE definition
            WHEN 'pain30' THEN pain30_met
            WHEN 'pain50' THEN pain50_met
            WHEN 'pain2pt' THEN pain2pt_met
            WHEN 'mme50' THEN mme50_met
            WHEN 'mme_stop' THEN mme_stop_met
            WHEN 'claim' THEN pain30_met AND mme50_met
        END AS met
    FROM flagged
)

SELECT
    m.* EXCLUDE (needs_pain, needs_mme, met),
    p.* EXCLUDE (eligible, window_closed, complete, met),
    -- why a treated patient is not in the ITT denominator
    CASE
        WHEN m.needs_pain AND NOT m.baseline_pain_known THEN 'no baseline pain'
        WHEN m.needs_pain AND NOT m.has_baseline_pain THEN 'baseline pain 0'
        WHEN m.needs_mme AND NOT m.baseline_mme_known THEN 'opioid use at baseline unknown'
        WHEN m.needs_mme AND NOT m.baseline_opioid_user THEN 'not on opioids at baseline'
        WHEN p.not_yet_due THEN 'not yet due'
    END AS itt_exclusion
FROM judged AS m
JOIN populations AS p USING (eligible, window_closed, complete, met)
