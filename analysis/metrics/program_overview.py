"""The program overview (the medical director's headline numbers): patients
treated, sessions, responder rates, PGIC, median pain change and opioid
results, each over everything in view and in the reporting quarter against
the quarter before (SPEC §3–4).

* **Reporting quarter**: the last complete calendar quarter before the data
  cutoff (the cutoff's own quarter when the cutoff is its last day), compared
  with the quarter before it.  Activity counts by date in the quarter (index
  date for patients starting treatment, visit date for infusions and
  boosters); outcomes count the patients whose result *came due* in the
  quarter: index date + the timepoint's target day inside it.

The SQL lives in ``sql/queries/program_*.sql``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from analysis.metrics import outcomes, pgic
from analysis.core import definitions, formatting, stats, words
from analysis.core.audience import SUPPRESSED, Audience, too_few
from analysis.metrics.outcomes import optional_date
from analysis.core.filters import Filters, previous_quarter, quarter_bounds, quarter_of
from analysis.storage.queries import run_query
from analysis.storage.store import Snapshot


# --------------------------------------------------------------------------
# reporting quarters


@dataclass(frozen=True)
class Quarter:
    name: str          # "2026Q3"
    start: dt.date
    end: dt.date

    @classmethod
    def named(cls, name: str) -> "Quarter":
        return cls(name, *quarter_bounds(name))

    @property
    def label(self) -> str:
        return (f"{self.name} ({formatting.long_date(self.start)} – "
                f"{formatting.long_date(self.end)})")


def reporting_quarters(cutoff: dt.date | None) -> tuple[Quarter, Quarter] | None:
    """(last complete quarter before the cutoff, the quarter before it).

    A cutoff on the last day of a quarter makes that quarter complete:
    31 March 2026 -> (2026Q1, 2025Q4); 1 April 2026 -> (2026Q1, 2025Q4) too;
    30 March 2026 -> (2025Q4, 2025Q3).  None without a cutoff (no data).
    """
    if cutoff is None:
        return None
    own = quarter_of(cutoff)
    current = own if quarter_bounds(own)[1] == cutoff else previous_quarter(own)
    return Quarter.named(current), Quarter.named(previous_quarter(current))


# --------------------------------------------------------------------------
# the headline numbers


@dataclass(frozen=True)
class QuarterValue:
    """One measure over one quarter (activity in it, or results due in it)."""
    value: float | None
    n: int | None = None            # denominator (rates) or patients (medians)
    responders: int | None = None   # numerator (rates)


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    kind: str                  # "count" | "rate" | "median"
    value: float | None        # everything in view (all cohorts)
    n: int | None              # its denominator (rate) or patients (median)
    responders: int | None
    ci_low: float | None
    ci_high: float | None
    quarter: QuarterValue
    previous: QuarterValue
    higher_is_better: bool = True
    p_value: float | None = None   # medians: Wilcoxon signed-rank p of the changes

    @property
    def too_few(self) -> bool:
        """A rate or median over fewer than 11 patients (flagged "too few to
        report" for internal readers; counts of activity are never flagged)."""
        return self.kind != "count" and too_few(self.n)

    @property
    def delta(self) -> float | None:
        """Quarter minus previous quarter (a proportion for rates)."""
        if self.quarter.value is None or self.previous.value is None:
            return None
        return self.quarter.value - self.previous.value

    @property
    def value_text(self) -> str:
        if self.kind == "count":
            return formatting.count(self.value)
        if self.kind == "rate":
            return formatting.percent(self.value)
        return formatting.signed(self.value, 1, "points")

    @property
    def detail_text(self) -> str:
        """The CI and denominator under the headline value."""
        if self.kind == "count":
            return ""
        if self.value is None:
            return "no patients with a result"
        if self.kind == "rate":
            ci = (f"95% CI {formatting.percent_range(self.ci_low, self.ci_high)}"
                  if self.ci_low is not None else "no CI")
            return (f"{ci} · {formatting.count(self.responders)} of "
                    f"{formatting.count(self.n)} patients" + self._flag(self.n))
        ci = (f"95% CI {formatting.signed(self.ci_low, 1)} to {formatting.signed(self.ci_high, 1)}"
              if self.ci_low is not None else "no CI")
        text = f"{ci} · {formatting.count(self.n)} patients"
        if self.p_value is not None:   # the test itself: statistics_text
            reading = words.chance_words(self.p_value, self.value > 0)
            text += " · " + {"clearly lower": "pain clearly fell",
                             "clearly higher": "pain clearly rose"}.get(reading,
                                                                        "could be chance")
        return text + self._flag(self.n)

    def _flag(self, n: int | None) -> str:
        return f" · {SUPPRESSED}" if self.kind != "count" and too_few(n) else ""

    def statistics_text(self) -> str:
        """The test behind the tile ("" when none)."""
        if self.p_value is None:
            return ""
        return f"{self.label}: Wilcoxon signed-rank p {formatting.p_text(self.p_value)} against no change."

    def quarter_text(self, which: str) -> str:
        part = self.quarter if which == "quarter" else self.previous
        if self.kind == "count":
            return formatting.count(part.value)
        if part.value is None:
            return "–"
        if self.kind == "rate":
            return (f"{formatting.percent(part.value)} ({formatting.count(part.responders)} "
                    f"of {formatting.count(part.n)})" + self._flag(part.n))
        return (f"{formatting.signed(part.value, 1, 'points')} (n = {formatting.count(part.n)})"
                + self._flag(part.n))

    @property
    def delta_text(self) -> str | None:
        """The change for people: "+12", "−5 pts", "+0.4 points"; None without one."""
        delta = self.delta
        if delta is None:
            return None
        # Round first, so that a change too small to show reads "±0", not "−0".
        if self.kind == "count":
            return formatting.signed(round(delta) + 0.0, 0)
        if self.kind == "rate":
            return formatting.signed(round(100 * delta) + 0.0, 0, "pts")
        return formatting.signed(round(delta, 1) + 0.0, 1, "points")

    @property
    def delta_direction(self) -> str:
        """"up", "down" or "off" (no change or no delta)."""
        delta = self.delta
        text = self.delta_text
        if delta is None or text is None or text.startswith("±"):
            return "off"
        return "up" if delta > 0 else "down"

    @property
    def delta_good(self) -> bool | None:
        """Whether the change is an improvement (None: no change)."""
        direction = self.delta_direction
        if direction == "off":
            return None
        return (direction == "up") == self.higher_is_better


@dataclass(frozen=True)
class Overview:
    cutoff: dt.date | None
    quarter: Quarter | None
    previous: Quarter | None
    timepoint: str
    target_day: int            # the timepoint's target day (results come due then)
    definition: str
    population: str
    ci_method: str
    measures: tuple[Measure, ...]
    activity: pd.DataFrame     # program_activity_by_quarter, one row per quarter

    def measure(self, key: str) -> Measure:
        return next(m for m in self.measures if m.key == key)

    @property
    def patients(self) -> int:
        return int(self.measure("patients_treated").value or 0)


def activity_by_quarter(snap: Snapshot, filters: Filters = Filters()) -> pd.DataFrame:
    """Patients starting treatment, patients treated, infusions and boosters per
    quarter, from the first quarter in view to the cutoff's quarter."""
    frame = run_query(snap, "program_activity_by_quarter", filters)
    for column in ("quarter_start", "quarter_end"):
        frame[column] = [optional_date(v) for v in frame[column]]
    for column in ("patients_starting", "patients_treated", "infusions", "boosters"):
        frame[column] = frame[column].astype(int)
    cut = outcomes.cutoff(snap)
    frame["complete"] = [cut is not None and end <= cut for end in frame["quarter_end"]]
    return frame


def outcomes_due(snap: Snapshot, timepoint: str, definitions: tuple[str, ...],
                 filters: Filters = Filters()) -> pd.DataFrame:
    """Per patient and definition at the timepoint: flags, pain change and the
    date the result came due (index date + target day)."""
    frame = run_query(snap, "program_outcomes_due", filters,
                   {"timepoint": timepoint, "definitions": list(definitions)})
    dates = pd.to_datetime(frame["target_date"])
    frame["target_date"] = dates.dt.date.astype(object).where(dates.notna(), None)
    return frame


def _in_population(frame: pd.DataFrame, population: str) -> pd.Series:
    return frame[f"in_{population}"]


def _in_quarter(frame: pd.DataFrame, column: str, quarter: Quarter | None) -> pd.Series:
    if quarter is None:
        return pd.Series(False, index=frame.index)
    days = pd.to_datetime(frame[column])
    return days.between(pd.Timestamp(quarter.start), pd.Timestamp(quarter.end)).fillna(False)


def _rate_measure(key: str, label: str, rows: pd.DataFrame, population: str, ci: str,
                  quarter: Quarter | None, previous: Quarter | None) -> Measure:
    selected = rows[_in_population(rows, population)]

    def part(q: Quarter | None) -> QuarterValue:
        if q is None:
            return QuarterValue(None)
        inside = selected[_in_quarter(selected, "target_date", q)]
        n, k = len(inside), int(inside["responder"].sum())
        return QuarterValue(k / n if n else None, n, k)

    n, k = len(selected), int(selected["responder"].sum())
    p = stats.proportion(k, n, method=ci)
    return Measure(key, label, "rate", p.rate, n, k, p.ci_low, p.ci_high,
                   part(quarter), part(previous))


def _median_measure(rows: pd.DataFrame, quarter: Quarter | None,
                    previous: Quarter | None) -> Measure:
    # Same patients as outcomes.pain_changes: baseline pain > 0, due, with
    # the follow-up (pain30's completers).
    changes = rows[(rows["definition"] == "pain30") & rows["in_completers"]]

    def part(q: Quarter | None) -> QuarterValue:
        if q is None:
            return QuarterValue(None)
        inside = changes[_in_quarter(changes, "target_date", q)]["pain_change"]
        return QuarterValue(float(inside.median()) if len(inside) else None, len(inside))

    overall = stats.median_change(changes["pain_change"].to_numpy(dtype=float))
    return Measure("median_pain_change", "Median pain change", "median", overall.median,
                   overall.n, None, overall.ci_low, overall.ci_high,
                   part(quarter), part(previous), higher_is_better=False,
                   p_value=overall.wilcoxon_p)


def overview(snap: Snapshot, filters: Filters = Filters(), timepoint: str = "3m",
             definition: str = "pain30", population: str = "itt",
             ci: str = "wilson", pgic_best: int = pgic.DEFAULT_BEST,
             audience: Audience = Audience.CLINICAL) -> Overview:
    """The headline numbers of the program with their quarter-on-quarter change.

    ``pgic_best``: the data's PGIC orientation (1 or 7 = very much improved).
    Internal readers only (the external audience sees the fixed tables);
    a rate or median over fewer than 11 patients is flagged, not hidden.

    Values cover everything in view (all cohorts); each measure also carries
    its value in the reporting quarter and the quarter before (see the module
    docstring for what "in the quarter" means for activity and outcomes).
    """
    definitions.check_setting(timepoint, definition, population, ci)
    outcomes.internal_only(audience, "The program overview")
    cut = outcomes.cutoff(snap)
    quarters = reporting_quarters(cut)
    quarter, previous = quarters if quarters else (None, None)
    activity = activity_by_quarter(snap, filters)

    def count_measure(key: str, label: str, column: str) -> Measure:
        def part(q: Quarter | None) -> QuarterValue:
            if q is None:
                return QuarterValue(None)
            inside = activity.loc[activity["quarter"] == q.name, column]
            return QuarterValue(float(inside.sum()))
        return Measure(key, label, "count", float(activity[column].sum()), None, None, None,
                       None, part(quarter), part(previous))

    rows = outcomes_due(snap, timepoint,
                        tuple(dict.fromkeys((definition, "pain30", "mme50", "mme_stop"))),
                        filters)
    by_definition = {d: rows[rows["definition"] == d] for d in rows["definition"].unique()}
    empty = rows.iloc[0:0]

    def rate(key: str, label: str, chosen: str) -> Measure:
        return _rate_measure(key, label, by_definition.get(chosen, empty), population, ci,
                             quarter, previous)

    measures = (
        count_measure("patients_treated", "Patients treated", "patients_starting"),
        count_measure("infusions", "Infusion visits", "infusions"),
        count_measure("boosters", "Boosters", "boosters"),
        rate("responder_rate", f"Responders ({definition})", definition),
        _rate_measure("pgic_improved", pgic.LABEL,
                      pgic.pgic_patients(snap, timepoint, filters, pgic_best), population, ci,
                      quarter, previous),
        _median_measure(rows, quarter, previous),
        rate("mme50", "Opioid dose halved (mme50)", "mme50"),
        rate("mme_stop", "Off opioids (mme_stop)", "mme_stop"),
    )
    target_day = int(snap.scalar("SELECT target_day FROM timepoints WHERE timepoint = $timepoint",
                                 {"timepoint": timepoint}))
    return Overview(cut, quarter, previous, timepoint, target_day, definition, population, ci,
                    measures, activity)
