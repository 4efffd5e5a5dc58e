-- definitions: the responder definitions of SPEC §3 and which baselines each needs.
SELECT *
FROM (VALUES
    ('pain30',   true,  false, 1, '≥30% less pain (IMMPACT: moderately important)'),
    ('pain50',   true,  false, 2, '≥50% less pain (IMMPACT: substantial)'),
    ('pain2pt',  true,  false, 3, 'pain down ≥2 points on the 0–10 scale'),
    ('mme50',    false, true,  4, 'opioid dose (MME/day) cut by ≥50%'),
    ('mme_stop', false, true,  5, 'off opioids (0 MME/day)'),
    ('claim',    true,  true,  6, '≥30% less pain and opioid dose cut by ≥50%')
) AS d(definition, needs_pain, needs_mme, sort_order, label)
