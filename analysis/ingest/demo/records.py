"""What each demo visit records: pain before and after treatment (step 6),
mood and PGIC (8), treatment details and the attending clinician (9), and
the patient's condition as a clinic would write it.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from analysis.ingest.demo.clinic import (ADVERSE_EVENTS, ADVERSE_EVENT_SHARE, BOOSTER,
    CONDITION_LABELS, CONDITION_MIX, COVER_SHARE, FOLLOW_UP, HYPERTENSION, INFUSION, INTAKE,
    OTHER_LABELS, PROVIDERS, ROUTES)
from analysis.ingest.demo.patients import days_since_treatment


def _relief_at_visits(p: SimpleNamespace, v: SimpleNamespace) -> np.ndarray:
    """Fraction of baseline pain relieved at each visit (before that day's infusion)."""
    relief = p.relief[v.pi]
    since = days_since_treatment(v)
    ramp = np.minimum(1.0, v.slot / 3.0)                       # induction builds up
    fade = np.exp(-np.maximum(since - 21.0, 0.0) / p.durability[v.pi])
    out = np.where(v.kind == INFUSION, relief * ramp, relief * fade)
    return np.where(v.kind == INTAKE, 0.0, out)


def _round_pain(rng: np.random.Generator, p: SimpleNamespace, v: SimpleNamespace,
                pain: np.ndarray) -> np.ndarray:
    pain = np.clip(pain, 0.0, 10.0)
    decimal = rng.random(v.n) < p.decimal_pain[v.pi]
    return np.where(decimal, np.round(pain, 1), np.floor(pain + 0.5))


def record_pain(rng: np.random.Generator, p: SimpleNamespace, v: SimpleNamespace) -> None:
    v.relief = _relief_at_visits(p, v)
    base = p.pain0[v.pi]
    noise = rng.normal(0, 0.6, v.n) * (base > 0)
    returned = np.where(v.kind == BOOSTER, rng.uniform(0.0, 1.0, v.n), 0.0) * (base > 0)
    pain = base * (1 - v.relief) + noise + returned
    pain = _round_pain(rng, p, v, pain)
    drop = rng.uniform(2.0, 4.0, v.n)
    post = _round_pain(rng, p, v, pain - drop)
    missing = rng.random(v.n) < 0.02
    missing |= p.no_baseline[v.pi] & ((v.kind == INTAKE) | ((v.kind == INFUSION) & (v.slot <= 1)))
    v.pain_score = np.where(missing, np.nan, pain)
    v.pain_post = np.where(v.treatment & (rng.random(v.n) > 0.04), post, np.nan)


# --------------------------------------------------------------------------
# 8. mood


def record_mood(rng: np.random.Generator, p: SimpleNamespace, v: SimpleNamespace) -> None:
    """PHQ-9 and PCL-5 at intake, follow-ups and some treatments; PGIC at follow-ups.
    Mood improves with pain relief, so more in pain responders."""
    gain = p.mood_gain[v.pi] * np.clip(v.relief / 0.5, -0.3, 1.0)
    asked = ((v.kind == INTAKE) | (v.kind == FOLLOW_UP)
             | ((v.kind == BOOSTER) & (rng.random(v.n) < 0.5))
             | ((v.kind == INFUSION) & (rng.random(v.n) < 0.3)))
    asked &= rng.random(v.n) > 0.05
    phq = np.clip(np.round(p.phq0[v.pi] * (1 - gain) + rng.normal(0, 1.8, v.n)), 0, 27)
    pcl = np.clip(np.round(p.pcl0[v.pi] * (1 - 0.8 * gain) + rng.normal(0, 4, v.n)), 0, 80)
    v.phq9 = np.where(asked, phq, -1).astype(np.int64)
    v.pcl5 = np.where(asked & p.ptsd[v.pi], pcl, -1).astype(np.int64)
    pgic = np.clip(np.round(4.3 - v.relief * 5 + rng.normal(0, 0.8, v.n)), 1, 7)
    v.pgic = np.where((v.kind == FOLLOW_UP) & (rng.random(v.n) > 0.1), pgic, -1).astype(np.int64)


# --------------------------------------------------------------------------
# 9. treatment details


def record_treatment(rng: np.random.Generator, p: SimpleNamespace, v: SimpleNamespace) -> None:
    """Route, ketamine dose, weight, vital signs and adverse events."""
    n, treat = v.n, v.treatment
    route = p.route[v.pi]
    v.route = np.where(treat, route, -1)
    weight = p.weight[v.pi]
    # IV: 0.5-0.75 mg/kg at the first infusion, +0.05 mg/kg per infusion, at most 1 mg/kg
    start = p.mg_per_kg[v.pi]
    step = np.where(v.kind == INFUSION, v.slot, p.infusions[v.pi] - 1)
    per_kg = np.minimum(1.0, start + 0.05 * step)
    iv = np.round(per_kg * weight / 5) * 5
    im = np.round(0.5 * weight / 5) * 5
    pick = p.fixed_dose[v.pi]
    usual = {"intranasal": np.array([50, 60, 80, 100]), "oral": np.array([100, 150, 200, 250]),
             "sublingual": np.array([50, 75, 100, 150])}
    is_route = {name: route == ROUTES.index(name) for name in ROUTES}
    mg = np.select([is_route["IV"], is_route["IM"], is_route["intranasal"], is_route["oral"]],
                   [iv, im, usual["intranasal"][pick], usual["oral"][pick]],
                   usual["sublingual"][pick])
    v.ketamine = np.where(treat & (rng.random(n) > 0.01), mg, np.nan)

    weighed = ((v.kind == INTAKE) | treat) & (rng.random(n) > 0.02)
    v.weight = np.where(weighed, np.round(weight + rng.normal(0, 0.7, n), 1), np.nan)

    event = treat & (rng.random(n) < np.where(is_route["IV"], 0.12, 0.07))
    which = rng.choice(len(ADVERSE_EVENTS), size=n, p=ADVERSE_EVENT_SHARE)
    v.adverse = np.where(event, which, -1)

    sbp = p.sbp0[v.pi] + rng.normal(14, 9, n)
    spike = rng.random(n) < 0.025
    sbp = np.where(spike, rng.uniform(180, 205, n), sbp)
    sbp = np.where(v.adverse == HYPERTENSION, np.maximum(sbp, rng.uniform(172, 200, n)), sbp)
    sbp = np.clip(np.round(sbp), 90, 230)
    spo2 = np.round(100 - np.abs(rng.normal(0, 1.8, n)))
    spo2 = np.where(rng.random(n) < 0.01, rng.integers(84, 90, n), np.clip(spo2, 91, 100))
    monitored = treat & (rng.random(n) > 0.02)
    v.sbp = np.where(monitored, sbp, -1).astype(np.int64)
    v.spo2 = np.where(monitored, spo2, -1).astype(np.int64)


def assign_providers(rng: np.random.Generator, p: SimpleNamespace, v: SimpleNamespace) -> None:
    """Each patient's attending clinician at their site, on all their visits;
    a colleague at the same site covers ~8% of treatment sessions."""
    offset = np.cumsum([0] + [len(site) for site in PROVIDERS])
    p.provider = np.empty(p.n, dtype=np.int64)
    cover = np.empty(p.n, dtype=np.int64)
    for s, site in enumerate(PROVIDERS):
        rows = np.nonzero(p.site == s)[0]
        shares = np.array([share for _, share in site])
        own = rng.choice(len(site), size=rows.size, p=shares / shares.sum())
        # the colleague: the next clinician of the site
        p.provider[rows] = offset[s] + own
        cover[rows] = offset[s] + (own + 1) % len(site)
    covered = v.treatment & (rng.random(v.n) < COVER_SHARE)
    v.provider = np.where(covered, cover[v.pi], p.provider[v.pi])


# --------------------------------------------------------------------------
# conditions


def _condition_labels(rng: np.random.Generator, p: SimpleNamespace) -> list[str]:
    """Label each patient's condition as a name, synonym or ICD-10-CM code."""
    vocabulary: list[str] = []
    code = np.full(p.n, -1)
    for c, (name, _, _) in enumerate(CONDITION_MIX):
        names, codes = CONDITION_LABELS[name]
        labels = list(names) + [names[0].lower()] + list(codes)
        weights = ([0.35] + [0.30 / (len(names) - 1)] * (len(names) - 1) + [0.05]
                   + [0.30 / len(codes)] * len(codes))
        rows = np.nonzero(p.condition == c)[0]
        code[rows] = len(vocabulary) + rng.choice(len(labels), size=rows.size,
                                                  p=np.array(weights) / sum(weights))
        vocabulary += labels
    rows = np.nonzero(p.condition == len(CONDITION_MIX))[0]
    code[rows] = len(vocabulary) + rng.integers(0, len(OTHER_LABELS), rows.size)
    vocabulary += list(OTHER_LABELS)
    p.condition_label = code
    return vocabulary


def record_conditions(rng: np.random.Generator, p: SimpleNamespace, v: SimpleNamespace) -> None:
    """The label sits on the intake row; ~2.5% of patients have it only on a
    later row; ~3% of later rows repeat it; ~1% never have one."""
    v.condition_vocabulary = _condition_labels(rng, p)
    label = p.condition_label[v.pi]
    late = (rng.random(p.n) < 0.025) & (p.infusions > 0)
    first_infusion = (v.kind == INFUSION) & (v.slot == 0)
    on_row = np.where(late[v.pi], first_infusion, v.kind == INTAKE)
    on_row |= (v.kind != INTAKE) & (rng.random(v.n) < 0.03)
    v.condition = np.where(on_row, label, -1)
