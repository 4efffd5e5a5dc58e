"""Durability: how long until the first booster, and how long relief lasts.

Kaplan–Meier curves (``survival.kaplan_meier``, right-censoring, log-log 95%
band) in calendar days, pooled and by condition:

* **first booster** (``"booster"``): from the index date (first infusion or
  booster) to the first booster visit after it; a patient without one is
  censored at their last visit of any kind.  Every treated patient in view.
* **loss of response** (``"response"``): only patients with baseline pain
  above 0.  The clock starts at the first visit after the index date whose
  pain score is at most 70% of baseline pain (a pain30 response) and stops at
  the first pain score on a later date above 70% of baseline (loss of
  response).  A patient who keeps responding is censored at their last visit
  with a pain score, not at the data cutoff: nothing is known about their
  pain after that visit.  Patients who never respond are not on this curve
  (counted in ``excluded``).

Groups with fewer than 11 patients are flagged ``too_few`` (SPEC §4).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from analysis.core import survival
from analysis.core.audience import SMALL_CELL, Audience
from analysis.metrics.charts import MIN_PER_POINT
from analysis.metrics.outcomes import cutoff, internal_only
from analysis.core.filters import Filters
from analysis.storage.queries import run_query
from analysis.storage.store import Snapshot

CURVES = ("booster", "response")
CURVE_LABELS = {
    "booster": "Time from first infusion to first booster",
    "response": "Time from first pain response to loss of response",
}
EVENT_LABELS = {"booster": "had a booster", "response": "lost their response"}
AT_RISK_DAYS = (0, 30, 60, 90, 180, 365)
POOLED = "All conditions in view"




# --------------------------------------------------------------------------
# per patient


def booster_durations(snap: Snapshot, filters: Filters = Filters()) -> pd.DataFrame:
    """Per treated patient in view: start (index) date, first booster after it,
    last visit, ``days`` and ``event`` (True = booster, False = censored)."""
    frame = run_query(snap, "durability_first_booster", filters)
    frame["event"] = frame["event"].astype(bool)
    frame["days"] = frame["days"].astype(int)
    return frame


def response_durations(snap: Snapshot, filters: Filters = Filters()) -> pd.DataFrame:
    """Per treated patient in view with baseline pain > 0: first response date,
    loss date, last pain date, ``responded``, ``days`` (from first response;
    missing when never responded) and ``event`` (True = lost response)."""
    frame = run_query(snap, "durability_response", filters)
    for column in ("responded", "event"):
        frame[column] = frame[column].astype(bool)
    frame["days"] = frame["days"].astype("Int64")
    return frame


def durations(snap: Snapshot, curve: str, filters: Filters = Filters()) -> pd.DataFrame:
    """The patients on one curve: ``patient_id, condition, days, event`` (+ detail)."""
    _check(curve)
    if curve == "booster":
        return booster_durations(snap, filters)
    frame = response_durations(snap, filters)
    frame = frame[frame["responded"]].copy()
    frame["days"] = frame["days"].astype(int)
    return frame.reset_index(drop=True)


def _check(curve: str) -> None:
    if curve not in CURVES:
        raise ValueError(f"unknown curve {curve!r}; one of {', '.join(CURVES)}")


# --------------------------------------------------------------------------
# curves


@dataclass(frozen=True)
class Curve:
    group: str
    km: survival.KaplanMeier
    at_risk: dict[int, int]   # numbers at risk at AT_RISK_DAYS
    too_few: bool

    @property
    def n(self) -> int:
        return self.km.n

    @property
    def events(self) -> int:
        return self.km.events

    @property
    def censored(self) -> int:
        return self.km.n - self.km.events


@dataclass(frozen=True)
class Durability:
    curve: str
    label: str
    cutoff: dt.date | None
    pooled: Curve
    by_condition: list[Curve]
    excluded: dict[str, int]
    filters: Filters = field(default_factory=Filters)

    def get(self, group: str) -> Curve:
        if group == POOLED:
            return self.pooled
        return next(c for c in self.by_condition if c.group == group)

    @property
    def groups(self) -> list[str]:
        return [POOLED, *(c.group for c in self.by_condition)]


def _curve(group: str, frame: pd.DataFrame) -> Curve:
    km = survival.kaplan_meier(frame["days"].to_numpy(dtype=float),
                            frame["event"].to_numpy(dtype=bool))
    return Curve(group, km, {day: km.at_risk_at(day) for day in AT_RISK_DAYS},
                 km.n < SMALL_CELL)


def durability(snap: Snapshot, curve: str = "booster",
               filters: Filters = Filters(),
               audience: Audience = Audience.CLINICAL) -> Durability:
    """One Kaplan–Meier curve pooled and by condition, with who is left out.
    Internal readers only (groups under 11 flagged ``too_few``, each curve
    drawn while 11 or more are followed: :func:`drawn_until`)."""
    _check(curve)
    internal_only(audience, "Durability")
    if curve == "booster":
        frame = booster_durations(snap, filters)
        excluded = {"treated": int(len(frame))}
    else:
        everyone = response_durations(snap, filters)
        treated = _treated(snap, filters)
        excluded = {
            "treated": treated,
            "no_baseline_pain": treated - int(len(everyone)),
            "no_pain_score_after_index": int((everyone["pain_visits_after_index"] == 0).sum()),
            "never_responded": int((~everyone["responded"]
                                    & (everyone["pain_visits_after_index"] > 0)).sum()),
        }
        frame = everyone[everyone["responded"]].copy()
        frame["days"] = frame["days"].astype(int)
    conditions = sorted(frame["condition"].dropna().unique())
    return Durability(
        curve, CURVE_LABELS[curve], cutoff(snap), _curve(POOLED, frame),
        [_curve(c, frame[frame["condition"] == c]) for c in conditions], excluded, filters)


def _treated(snap: Snapshot, filters: Filters) -> int:
    where, params = filters.sql()
    return int(snap.scalar(f"SELECT count(*) FROM patients WHERE treated AND {where}", params))


def summary_table(result: Durability) -> pd.DataFrame:
    """One row per group: patients, events, censored, median and its CI (days)."""
    rows = []
    for c in (result.pooled, *result.by_condition):
        rows.append({"group": c.group, "n": c.n, "events": c.events, "censored": c.censored,
                     "median": c.km.median, "median_ci_low": c.km.median_ci_low,
                     "median_ci_high": c.km.median_ci_high, "too_few": c.too_few,
                     **{f"at_risk_{d}": c.at_risk[d] for d in AT_RISK_DAYS}})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------
# for people


def days_text(days: float | None) -> str:
    if days is None or pd.isna(days):
        return "not reached"
    days = int(round(days))
    return f"{days:,} day" + ("" if days == 1 else "s")


def drawn_until(km: survival.KaplanMeier, least: int = MIN_PER_POINT) -> float | None:
    """The last time at which at least ``least`` patients are still followed
    (at risk): a curve is drawn up to there, not into a tail that one or two
    patients make.  ``None`` when fewer are followed from the start."""
    followed = [t for t, n in zip(km.time, km.at_risk) if n >= least]
    return float(followed[-1]) if followed else None


def plain_text(result: "Durability", curve: "Curve") -> str:
    """The curve in words, its denominator in the sentence: "Half of the
    1,827 patients had their first booster by day 103 (95% CI 98–108); 683
    have had one, 1,144 had not by their last visit"."""
    km = curve.km
    low = None if km.median_ci_low is None else int(round(km.median_ci_low))
    high = None if km.median_ci_high is None else int(round(km.median_ci_high))
    interval = ("" if low is None else
                f" (95% CI day {low:,}–{high:,})" if high is not None else
                f" (95% CI from day {low:,})")
    if result.curve == "booster":
        half = (f"Half of the {curve.n:,} patients had their first booster by day "
                f"{int(round(km.median)):,}{interval}" if km.median is not None else
                f"Fewer than half of the {curve.n:,} patients had a booster in the time "
                "they were followed")
        return (f"{half}; {curve.events:,} have had one, {curve.censored:,} had not by their "
                "last visit.")
    half = (f"Half of the {curve.n:,} patients who responded had lost the response by day "
            f"{int(round(km.median)):,} after it began{interval}" if km.median is not None else
            f"Fewer than half of the {curve.n:,} patients who responded lost the response in "
            "the time they were followed")
    return (f"{half}; {curve.events:,} lost it, {curve.censored:,} were still responding at "
            "their last pain score.")


def median_text(km: survival.KaplanMeier) -> str:
    """"107 days (95% CI 98–116)"; "not reached (95% CI 98 days to not reached)"."""
    if km.n == 0:
        return "–"
    if km.median is None:
        median = "not reached"
    else:
        median = days_text(km.median)
    low = "–" if km.median_ci_low is None else f"{int(round(km.median_ci_low)):,}"
    if km.median_ci_high is None:
        interval = f"95% CI {low} days to not reached" if km.median_ci_low is not None \
            else "95% CI not reached"
    else:
        interval = f"95% CI {low}–{int(round(km.median_ci_high)):,} days"
    return f"{median} ({interval})"
