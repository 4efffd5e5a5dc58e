"""The demo's patients and their visits: enrolment (steps 1), planning the
induction infusions, follow-ups and boosters (2-4) and laying the visits out
in one table (5).
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

from analysis.ingest.demo.clinic import (BOOSTER, CONDITION_MIX, FOLLOW_UP, FOLLOW_UP_DAYS,
    INFUSION, INTAKE, MAX_BOOSTERS, MAX_INFUSIONS, MONTHS_OF_INTAKE, NO_CONDITION_RESPONSE,
    NO_CONDITION_SHARE, OTHER_RESPONSE, OTHER_SHARE, ROUTES, ROUTE_RESPONSE, ROUTE_SHARE, SITES,
    SITE_DECIMAL_PAIN, SITE_SHARE, SITE_SHOW_RATE, day_number, months_before)


def enrol_patients(rng: np.random.Generator, n: int, end: dt.date) -> SimpleNamespace:
    """Patient-level traits.  Patients are numbered in order of intake."""
    p = SimpleNamespace(n=n)
    end_day = day_number(end)
    start_day = day_number(months_before(end, MONTHS_OF_INTAKE))
    # Intake volume grows linearly (density 1 + x on [0, 1]): invert the CDF.
    u = rng.random(n)
    x = (np.sqrt(1.0 + 3.0 * u) - 1.0)
    p.intake = np.sort(start_day + np.floor(x * (end_day - start_day + 1))).astype(np.int64)
    width = max(6, len(str(n)))
    p.ids = pa.array([f"P{i:0{width}d}" for i in range(1, n + 1)], pa.string())

    p.site = rng.choice(len(SITES), size=n, p=SITE_SHARE)
    p.route = rng.choice(len(ROUTES), size=n, p=ROUTE_SHARE)

    # condition: 0-12 the clinic's list, 13 Other, 14 none written anywhere
    shares = np.array([c[1] for c in CONDITION_MIX])
    shares = shares / shares.sum() * (1 - OTHER_SHARE - NO_CONDITION_SHARE)
    shares = np.append(shares, [OTHER_SHARE, NO_CONDITION_SHARE])
    p.condition = rng.choice(len(shares), size=n, p=shares / shares.sum())
    response_rate = np.array([c[2] for c in CONDITION_MIX] + [OTHER_RESPONSE,
                                                              NO_CONDITION_RESPONSE])
    rate = response_rate[p.condition] * np.array(ROUTE_RESPONSE)[p.route]
    p.responder = rng.random(n) < rate
    # fraction of pain relief at full effect
    p.relief = np.where(p.responder, rng.uniform(0.40, 0.80, n), rng.uniform(-0.08, 0.22, n))
    # days after the last treatment over which relief fades by 1/e (after 21 days' grace)
    p.durability = np.where(p.responder, rng.uniform(90, 480, n), 1e9)

    base = np.clip(rng.normal(7.0, 1.3, n), 3.0, 10.0)
    p.zero_baseline = rng.random(n) < 0.004
    p.no_baseline = rng.random(n) < 0.008
    p.pain0 = np.where(p.zero_baseline, 0.0, base)
    p.decimal_pain = np.array(SITE_DECIMAL_PAIN)[p.site]

    p.weight = np.clip(np.exp(rng.normal(np.log(82), 0.22, n)), 45, 160)
    p.depressed = rng.random(n) < 0.45
    p.ptsd = rng.random(n) < 0.30
    p.phq0 = np.where(p.depressed, rng.normal(15.5, 4.0, n), rng.normal(6.0, 3.0, n))
    p.pcl0 = rng.normal(47, 12, n)
    p.mood_gain = rng.uniform(0.3, 0.65, n)   # share of mood scores lost at full relief
    p.mg_per_kg = rng.uniform(0.5, 0.75, n)   # first IV dose
    p.fixed_dose = rng.integers(0, 4, n)      # which usual dose for non-IV routes
    p.sbp0 = rng.normal(126, 11, n)           # resting systolic pressure
    return p


# --------------------------------------------------------------------------
# 2-4. planning the visits (day numbers; a slot is kept when its mask is set)

INFUSION_COUNT_P = {  # number of induction infusions, 0 = intake only
    True: (0.05, 0.14, 0.05, 0.06, 0.07, 0.08, 0.51, 0.03, 0.01),
    False: (0.08, 0.25, 0.08, 0.08, 0.08, 0.07, 0.33, 0.02, 0.01),
}


def plan_induction(rng: np.random.Generator, p: SimpleNamespace) -> np.ndarray:
    """Induction infusion days (n x 8, -1 where there is none); sets the index day."""
    n = p.n
    count = np.empty(n, dtype=np.int64)
    for responder, probs in INFUSION_COUNT_P.items():
        rows = p.responder == responder
        count[rows] = rng.choice(len(probs), size=int(rows.sum()), p=probs)
    delay = np.where(rng.random(n) < 0.08, rng.integers(22, 76, n), rng.integers(3, 22, n))
    gaps = rng.integers(2, 5, (n, MAX_INFUSIONS))
    gaps[:, 0] = 0
    days = p.intake[:, None] + delay[:, None] + np.cumsum(gaps, axis=1)
    days = np.where(np.arange(MAX_INFUSIONS)[None, :] < count[:, None], days, -1)
    p.infusions = count
    p.index = np.where(count > 0, p.intake + delay, -1)
    p.induction_end = np.where(count > 0, days.max(axis=1), -1)
    # incomplete induction gives weaker relief
    p.relief = p.relief * np.minimum(1.0, (count + 1) / 5.0)
    # Days after the index infusion until the patient is lost to follow-up.
    early = count <= 2
    mean_stay = np.where(early, 35.0, np.where(p.responder, 560.0, 220.0))
    p.stay = rng.exponential(mean_stay)
    return days


def plan_follow_ups(rng: np.random.Generator, p: SimpleNamespace) -> np.ndarray:
    """Follow-up days (n x 4, -1 where missed): ~day 28, 90, 180 and 365."""
    n = p.n
    target = np.array(FOLLOW_UP_DAYS)[None, :]
    spread = np.array([4.0, 8.0, 9.0, 10.0])[None, :]
    limit = np.array([10, 21, 21, 21])[None, :]
    jitter = np.clip(np.round(rng.normal(0, 1, (n, 4)) * spread), -limit, limit)
    # ~5% come late, outside the timepoint's window but before the next visit's
    late = rng.random((n, 4)) < 0.05
    lateness = rng.integers(np.array([15, 31, 31, 66]), np.array([26, 51, 61, 101]), (n, 4))
    jitter = np.where(late, lateness, jitter)
    rel = target + jitter
    days = p.index[:, None] + rel
    days[:, 0] = np.maximum(days[:, 0], p.induction_end + 3)   # 4 weeks: after induction
    show = rng.random((n, 4)) < np.array(SITE_SHOW_RATE)[p.site][:, None]
    kept = (p.infusions[:, None] > 0) & show & ((days - p.index[:, None]) <= p.stay[:, None])
    return np.where(kept, days, -1).astype(np.int64)


def plan_boosters(rng: np.random.Generator, p: SimpleNamespace) -> np.ndarray:
    """Booster days (n x 30, -1 where none).  Responders come back roughly when
    their pain returns, every 1-4 months; a few non-responders try 1-3."""
    n = p.n
    full = p.infusions >= 3
    takes = np.where(p.responder & full, rng.random(n) < 0.88,
                     np.where(full, rng.random(n) < 0.25, rng.random(n) < 0.04))
    takes &= p.infusions > 0
    most = np.where(p.responder, MAX_BOOSTERS, rng.integers(1, 4, n))
    interval = np.clip(p.durability * rng.uniform(0.15, 0.4, n), 30, 120)
    interval = np.where(p.responder, interval, rng.uniform(30, 90, n))
    steps = interval[:, None] * rng.uniform(0.8, 1.2, (n, MAX_BOOSTERS))
    days = p.induction_end[:, None] + np.round(np.cumsum(steps, axis=1)).astype(np.int64)
    slot = np.arange(MAX_BOOSTERS)[None, :]
    kept = (takes[:, None] & (slot < most[:, None])
            & ((days - p.index[:, None]) <= p.stay[:, None]))
    return np.where(kept, days, -1)


# --------------------------------------------------------------------------
# 5. the visit table


def lay_out_visits(p: SimpleNamespace, infusion_days: np.ndarray, follow_up_days: np.ndarray,
                    booster_days: np.ndarray, end_day: int) -> SimpleNamespace:
    """All visits of all patients, sorted by date, patient and visit type."""
    parts = [(p.intake[:, None], INTAKE), (infusion_days, INFUSION),
             (booster_days, BOOSTER), (follow_up_days, FOLLOW_UP)]
    pi, day, kind, slot = [], [], [], []
    for days, visit_type in parts:
        rows, cols = np.nonzero(days >= 0)
        pi.append(rows)
        day.append(days[rows, cols])
        kind.append(np.full(rows.size, visit_type))
        slot.append(cols)
    v = SimpleNamespace(pi=np.concatenate(pi), day=np.concatenate(day).astype(np.int64),
                        kind=np.concatenate(kind), slot=np.concatenate(slot))
    # Clinics are closed at weekends: Saturday -> Friday, Sunday -> Monday.
    weekday = (v.day + 3) % 7                    # 1970-01-01 was a Thursday
    v.day = v.day - (weekday == 5) + (weekday == 6)
    keep = v.day <= end_day
    for name in ("pi", "day", "kind", "slot"):
        setattr(v, name, getattr(v, name)[keep])
    order = np.lexsort((v.slot, v.kind, v.pi, v.day))
    for name in ("pi", "day", "kind", "slot"):
        setattr(v, name, getattr(v, name)[order])
    v.n = v.pi.size
    index = p.index[v.pi]                        # days after the index infusion,
    v.t = np.where(index >= 0, v.day - index, -1)  # -1 for the untreated
    v.treatment = (v.kind == INFUSION) | (v.kind == BOOSTER)
    return v


def days_since_treatment(v: SimpleNamespace) -> np.ndarray:
    """Days since the patient's last infusion or booster on an earlier day (inf if none)."""
    big = np.int64(1 << 32)
    keys = v.pi.astype(np.int64) * big + v.day
    treated = np.sort(keys[v.treatment])
    at = np.searchsorted(treated, keys, side="left") - 1
    found = at >= 0
    prev = treated[np.maximum(at, 0)]
    found &= (prev // big) == v.pi
    return np.where(found, (v.day - (prev - v.pi * big)).astype(float), np.inf)
