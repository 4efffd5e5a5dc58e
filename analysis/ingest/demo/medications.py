"""The demo's opioids and benzodiazepines (step 7): who arrives on opioids, who
tapers and how fast, and the medication export's reconciliations.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pyarrow as pa

from analysis.ingest.demo.clinic import (BENZODIAZEPINES, BOOSTER, FOLLOW_UP, INTAKE, OPIOIDS,
    OPIOID_FACTOR, OPIOID_MAX_DPD, OPIOID_STEP, PATCH, SECOND_OPIOIDS, TAPER_FAST, TAPER_SLOW,
    TAPER_UP, OPIOID_INDEX, number_text)
from analysis.ingest.demo.export import take_text


def assign_opioid_regimens(rng: np.random.Generator, p: SimpleNamespace) -> None:
    """Opioid regimen at intake (up to two drugs) and its taper; benzodiazepines."""
    n = p.n
    p.opioid_unknown = rng.random(n) < 0.05
    user = rng.random(n) < 0.55
    target = np.clip(np.exp(rng.normal(np.log(40), 0.75, n)), 10, 200)
    first = rng.choice(len(OPIOIDS), size=n, p=[o[1] for o in OPIOIDS])
    second = np.array(SECOND_OPIOIDS)[rng.integers(0, len(SECOND_OPIOIDS), n)]
    hydromorphone, oxycodone = OPIOID_INDEX["hydromorphone"], OPIOID_INDEX["oxycodone"]
    second = np.where(second == first,
                      np.where(first == hydromorphone, oxycodone, hydromorphone), second)
    two = user & (rng.random(n) < 0.18)
    share = np.where(two, rng.uniform(0.2, 0.4, n), 0.0)
    p.drug = np.stack([np.where(user, first, -1), np.where(two, second, -1)])
    p.label = np.stack([rng.integers(0, 100, n), rng.integers(0, 100, n)])
    p.dose0 = np.zeros((2, n))
    p.dpd0 = np.zeros((2, n), dtype=np.int64)
    for slot, mme in ((0, target * (1 - share)), (1, target * share)):
        drug = np.maximum(p.drug[slot], 0)
        most = OPIOID_MAX_DPD[drug]
        dpd = 1 + np.floor(rng.random(n) * most).astype(np.int64)     # 1..most a day
        once_daily_ok = rng.random(n) < 0.3            # else at least twice when allowed
        dpd = np.where(once_daily_ok, dpd, np.minimum(np.maximum(dpd, 2), most))
        step = OPIOID_STEP[drug]
        dose = np.maximum(step, np.round(mme / (dpd * OPIOID_FACTOR[drug]) / step) * step)
        on = p.drug[slot] >= 0
        p.dose0[slot] = np.where(on, dose, 0.0)
        p.dpd0[slot] = np.where(on, dpd, 0)

    # taper: kind, start (days after index), rate (share of the first dose a day), floor
    kinds_responder = rng.choice(4, size=n, p=(0.30, 0.55, 0.10, 0.05))
    kinds_other = rng.choice(4, size=n, p=(0.80, 0.12, 0.03, 0.05))
    p.taper = np.where(p.responder, kinds_responder, kinds_other)
    p.taper_start = np.where(p.taper == TAPER_FAST, rng.uniform(14, 60, n), rng.uniform(21, 75, n))
    rate = np.select([p.taper == TAPER_SLOW, p.taper == TAPER_FAST, p.taper == TAPER_UP],
                     [rng.uniform(0.07, 0.13, n) / 30, rng.uniform(0.12, 0.30, n) / 7,
                      rng.uniform(0.03, 0.08, n) / 30], 0.0)
    p.taper_rate = rate
    u = rng.random(n)
    floor_responder = np.select([u < 0.35, u < 0.70], [0.0, rng.uniform(0.2, 0.5, n)],
                                rng.uniform(0.55, 0.85, n))
    floor_fast = np.where(rng.random(n) < 0.6, 0.0, rng.uniform(0.3, 0.6, n))
    p.taper_floor = np.select(
        [p.taper == TAPER_FAST, p.responder], [floor_fast, floor_responder],
        rng.uniform(0.6, 0.9, n))

    p.benzo = rng.random(n) < np.where(p.ptsd, 0.25, 0.11)
    stops = rng.random(n) < np.where(p.responder, 0.30, 0.08)
    p.benzo_stop = np.where(stops, rng.uniform(30, 365, n), np.inf)
    p.benzo_drug = rng.integers(0, len(BENZODIAZEPINES), n)


def _taper_factor(p: SimpleNamespace, pi: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Daily opioid amount as a share of the intake amount, t days after index."""
    kind = p.taper[pi]
    elapsed = np.maximum(t - p.taper_start[pi], 0.0)
    down = np.maximum(p.taper_floor[pi], 1.0 - p.taper_rate[pi] * elapsed)
    up = np.minimum(1.3, 1.0 + p.taper_rate[pi] * elapsed)
    return np.select([(kind == TAPER_SLOW) | (kind == TAPER_FAST), kind == TAPER_UP],
                     [down, up], 1.0)


def _opioid_doses(p: SimpleNamespace, pi: np.ndarray, t: np.ndarray):
    """Per drug slot (dose, doses a day) at t days after index, and the total MME.

    A taper lowers the daily amount; it is written as the strength (a multiple
    of the drug's step, never above the intake strength) and doses a day (never
    more than at intake) that come closest.  Less than half a step is stopped.
    """
    f = _taper_factor(p, pi, t)
    doses, mme = [], np.zeros(pi.size)
    for slot in (0, 1):
        drug = p.drug[slot][pi]
        d = np.maximum(drug, 0)
        step, factor = OPIOID_STEP[d], OPIOID_FACTOR[d]
        dose0, dpd0 = p.dose0[slot][pi], p.dpd0[slot][pi]
        total = dose0 * dpd0 * f
        cap = np.ceil(dose0 * np.maximum(f, 1.0) / step - 1e-9) * step
        best_dose = np.zeros(pi.size)
        best_dpd = np.zeros(pi.size, dtype=np.int64)
        best_err = np.full(pi.size, np.inf)
        for per_day in (4, 3, 2, 1):
            dose = np.clip(np.round(total / per_day / step) * step, step, cap)
            err = np.abs(dose * per_day - total)
            better = (per_day <= dpd0) & (err < best_err - 1e-9)
            best_dose = np.where(better, dose, best_dose)
            best_dpd = np.where(better, per_day, best_dpd)
            best_err = np.where(better, err, best_err)
        on = (drug >= 0) & (total >= 0.5 * step)
        best_dose = np.where(on, best_dose, 0.0)
        best_dpd = np.where(on, best_dpd, 0)
        doses.append((best_dose, best_dpd))
        mme += best_dose * best_dpd * factor
    return doses, np.round(mme, 3)


def _opioid_labels(drug: np.ndarray, label: np.ndarray, dose: np.ndarray) -> np.ndarray:
    """Free-text drug names; a strength in a name always equals ``dose``."""
    quarter_mg = np.round(dose * 4).astype(np.int64)          # strengths are k/4 mg
    key = (drug.astype(np.int64) * 100 + label % 100) * 100_000 + quarter_mg
    combos, inverse = np.unique(key, return_inverse=True)
    names = []
    for k in combos:
        d, l, strength = k // 10_000_000, (k // 100_000) % 100, (k % 100_000) / 4
        _, _, _, _, _, _, labels, combo = OPIOIDS[int(d)]
        text = labels[int(l) % len(labels)]
        if "{d}" in text:
            text = text.format(d=number_text(strength)) if strength in combo else labels[0]
        names.append(text)
    return np.array(names, dtype=object)[inverse.ravel()]


def record_medications(rng: np.random.Generator, p: SimpleNamespace,
                        v: SimpleNamespace) -> pa.Table:
    """Session MME and benzodiazepine columns, and the medication export.

    Reconciled visits (intake and follow-ups of patients whose opioid use is
    known) get medication rows; ~10% of them leave the session MME blank so the
    medication export must fill it.  Boosters record MME ~40% of the time.
    """
    doses, mme = _opioid_doses(p, v.pi, v.t.astype(float))
    on_benzo = p.benzo[v.pi] & ~(v.t >= p.benzo_stop[v.pi])
    known = ~p.opioid_unknown[v.pi]
    reconciled = known & ((v.kind == INTAKE) | (v.kind == FOLLOW_UP))
    at_booster = known & (v.kind == BOOSTER) & (rng.random(v.n) < 0.4)
    blank_mme = reconciled & (rng.random(v.n) < 0.10)
    blank_benzo = reconciled & (rng.random(v.n) < 0.05)
    v.mme = np.where((reconciled | at_booster) & ~blank_mme, mme, np.nan)
    v.benzo = np.where((reconciled | at_booster) & ~blank_benzo,
                       np.where(on_benzo, 1, 0), -1)

    rows = np.nonzero(reconciled)[0]
    parts = []   # (visit row, order within the date, drug, dose, unit, doses a day)
    for slot in (0, 1):
        dose, per_day = doses[slot][0][rows], doses[slot][1][rows]
        take = dose > 0
        r = rows[take]
        drug = p.drug[slot][v.pi[r]]
        parts.append(dict(row=r, order=np.full(r.size, slot),
                          drug=_opioid_labels(drug, p.label[slot][v.pi[r]], dose[take]),
                          dose=dose[take],
                          unit=np.where(drug == PATCH, "mcg/hr", "mg").astype(object),
                          per_day=np.where(drug == PATCH, -1, per_day[take])))
    r = rows[on_benzo[rows]]
    b = p.benzo_drug[v.pi[r]]
    parts.append(dict(row=r, order=np.full(r.size, 2),
                      drug=np.array([x[0] for x in BENZODIAZEPINES], dtype=object)[b],
                      dose=np.array([x[1] for x in BENZODIAZEPINES])[b],
                      unit=np.full(r.size, "mg", dtype=object),
                      per_day=np.array([x[2] for x in BENZODIAZEPINES])[b]))
    nothing = (doses[0][0][rows] == 0) & (doses[1][0][rows] == 0) & ~on_benzo[rows]
    r = rows[nothing]
    parts.append(dict(row=r, order=np.full(r.size, 3), drug=np.full(r.size, "none", dtype=object),
                      dose=np.full(r.size, np.nan), unit=np.full(r.size, None, dtype=object),
                      per_day=np.full(r.size, -1)))
    cat = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    order = np.lexsort((cat["order"], cat["row"]))     # visit rows are already sorted
    cat = {k: a[order] for k, a in cat.items()}
    row = cat["row"]
    per_day = cat["per_day"]
    return pa.table({
        "patient_id": take_text(p.ids, v.pi[row]),
        "date": pa.array(v.day[row].astype(np.int32), type=pa.date32()),
        "drug": pa.array(cat["drug"], type=pa.string()),
        "dose": pa.array(cat["dose"], from_pandas=True),
        "unit": pa.array(cat["unit"], type=pa.string()),
        "doses_per_day": pa.array(per_day, mask=per_day < 0, type=pa.int16()),
    })
