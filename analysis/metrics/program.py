"""The medical director's program view: overview, conditions, pain over time
and patient flow (SPEC §3–4).

Every function takes a :class:`analysis.storage.store.Snapshot` and the shared
:class:`analysis.metrics.outcomes.Filters` and returns a small dataclass or a
DataFrame with plain columns; the SQL lives in ``sql/queries/program_*.sql``.

Definitions used here (and shown on the pages):

* **Reporting quarter**: the last complete calendar quarter before the data
  cutoff (the cutoff's own quarter when the cutoff is its last day), compared
  with the quarter before it.  Activity counts by date in the quarter (index
  date for patients starting treatment, visit date for infusions and
  boosters); outcomes count the patients whose result *came due* in the
  quarter: index date + the timepoint's target day inside it.
* **Completed induction**: :data:`analysis.core.definitions.INDUCTION_TEXT`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import pandas as pd

from analysis.metrics import charts, outcomes, pgic
from analysis.core import definitions, disclosure, formatting, stats, words
from analysis.core.audience import SUPPRESSED, Audience, too_few
from analysis.metrics.charts import Chart
from analysis.metrics.outcomes import GroupRate, optional_date
from analysis.core.filters import Filters
from analysis.storage.queries import run_query
from analysis.storage.store import Snapshot
from analysis.core.filters import previous_quarter, quarter_bounds, quarter_of

LAST_WEEK = 52



def conditions_in_view(snap: Snapshot, filters: Filters = Filters()) -> list[str]:
    """The conditions of the treated patients in view, in the clinic's order."""
    where, params = filters.sql()
    present = set(snap.query(
        f"SELECT DISTINCT condition FROM patients WHERE treated AND {where}", params)["condition"])
    return [c for c in outcomes.filter_options(snap).conditions if c in present]


def for_condition(filters: Filters, condition: str | None) -> Filters:
    """The shared filters narrowed to one condition (None: unchanged, pooled)."""
    return filters if condition is None else dataclasses.replace(filters, conditions=(condition,))


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
# overview


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


# --------------------------------------------------------------------------
# conditions


@dataclass(frozen=True)
class ConditionSummary:
    timepoint: str
    definition: str
    population: str
    ci_method: str
    overall: GroupRate
    pain_change: stats.PairedChange   # all conditions in view (outcomes.median_pain_change)
    audience: Audience
    # the fields of outcomes.ConditionRow and suppressed; ranked by the lower
    # end of the rate's CI (highest first), conditions with n < 11 last; and
    # the PGIC result beside the pain one: pgic_n, pgic_responders,
    # pgic_rate, pgic_ci_low, pgic_ci_high (internal readers only; None for
    # the external audience); and what a page draws: ``drawn`` (the rate's
    # point: 11 or more patients, not suppressed), ``pgic_drawn`` (the PGIC
    # diamond: 11 or more answers), ``note`` ("too few to report" or "")
    table: pd.DataFrame
    pgic: GroupRate | None = None  # PGIC much or very much improved, all conditions in view

    @property
    def external(self) -> bool:
        return self.audience.external

    @property
    def median_change(self) -> float | None:
        return self.pain_change.median

    @property
    def not_drawn(self) -> str:
        """The conditions on the forest plot with no point, and why."""
        left = [c for c, drawn in zip(self.table["condition"], self.table["drawn"]) if not drawn]
        return charts.not_drawn_text(left)


CONDITION_VALUE_COLUMNS = ["responders", "rate", "ci_low", "ci_high", "median_change",
                           "p_value", "p_holm", "change_n", "median_ci_low", "median_ci_high",
                           "wilcoxon_p"]


def condition_summary(snap: Snapshot, timepoint: str = "3m", definition: str = "pain30",
                      population: str = "itt", filters: Filters = Filters(),
                      ci: str = "wilson", audience: Audience = Audience.CLINICAL,
                      pgic_best: int = pgic.DEFAULT_BEST) -> ConditionSummary:
    """Responder rate by condition (outcomes.condition_table) and program-wide,
    with the PGIC result beside it (internal readers).

    ``too_few`` marks n < 11: flagged for internal readers (``note``), with
    no point drawn.  For the external audience the table is protected as one
    (disclosure.rate_table: a condition's n or responders from 1 to 10, and
    their complements): such a condition's n and every value blanked,
    ``suppressed`` True; the PGIC columns (another denominator) are left
    empty.
    """
    definitions.check_setting(timepoint, definition, population, ci)
    external = audience.external
    rates = outcomes.responder_rates(snap, timepoint, definition, population, filters, ci)
    rows = outcomes.condition_table(snap, timepoint, definition, population, filters, ci)
    table = pd.DataFrame([r.to_dict() for r in rows], columns=outcomes.ConditionRow.columns())
    table = table.astype({"n": int, "responders": int, "too_few": bool, "change_n": int}) \
        if len(table) else table
    if external:
        protected = disclosure.rate_table({r.condition: (r.n, r.responders) for r in rows},
                                          (rates.overall.n, rates.overall.responders))
        # a condition without patients in the denominator has nothing to show either
        table["suppressed"] = [r.n == 0 or protected.hidden(("n", r.condition))
                               or protected.hidden(("k", r.condition)) for r in rows]
        for column in CONDITION_VALUE_COLUMNS + ["n"]:
            table[column] = table[column].astype(object).where(~table["suppressed"], None)
    else:
        table["suppressed"] = False
    table = table.reset_index(drop=True)
    overall_pgic = None
    pgic_columns = {"n": "pgic_n", "responders": "pgic_responders", "rate": "pgic_rate",
                    "ci_low": "pgic_ci_low", "ci_high": "pgic_ci_high"}
    if external:
        for column in pgic_columns.values():
            table[column] = None
    else:
        improved = pgic.pgic_rates(snap, timepoint, population, filters, ci, pgic_best)
        overall_pgic = improved.overall
        by_condition = pd.DataFrame(
            [{"condition": g.group, **{c: getattr(g, f) for f, c in pgic_columns.items()}}
             for g in improved.by_condition],
            columns=["condition", *pgic_columns.values()])
        table = table.merge(by_condition, on="condition", how="left")
    table["drawn"] = ~table["suppressed"].astype(bool) & ~table["too_few"].astype(bool) \
        if len(table) else pd.Series(dtype=bool)
    table["pgic_drawn"] = [bool(drawn) and rate is not None and rate == rate and charts.enough(n)
                           for drawn, rate, n in zip(~table["suppressed"].astype(bool),
                                                     table["pgic_rate"], table["pgic_n"])]
    table["note"] = ["" if hidden else (SUPPRESSED if few else "")
                     for hidden, few in zip(table["suppressed"], table["too_few"])]
    change = outcomes.median_pain_change(snap, timepoint, filters)
    return ConditionSummary(timepoint, definition, population, ci, rates.overall, change,
                            audience, table, overall_pgic)


# --------------------------------------------------------------------------
# pain over time


def pain_by_week(snap: Snapshot, filters: Filters = Filters(),
                 min_patients: int = charts.MIN_PER_POINT,
                 last_week: int = LAST_WEEK) -> pd.DataFrame:
    """Median and IQR of pain_score by week since the index date (week =
    floor(days / 7), 0..52); one value per patient and week (the mean of
    their scores that week); weeks with fewer than ``min_patients`` dropped.
    Columns: week, patients, q1, median, q3."""
    frame = run_query(snap, "program_pain_by_week", filters,
                   {"min_patients": int(min_patients), "last_week": int(last_week)})
    return frame.astype({"week": int, "patients": int})


def acute_by_infusion(snap: Snapshot, filters: Filters = Filters(),
                      min_patients: int = charts.MIN_PER_POINT) -> pd.DataFrame:
    """Acute relief (pain_score − pain_post) by infusion number (a patient's
    infusion and booster visits numbered 1..n by date): median and IQR.
    Columns: infusion_number, patients, q1, median, q3."""
    frame = run_query(snap, "program_acute_by_infusion", filters,
                   {"min_patients": int(min_patients)})
    return frame.astype({"infusion_number": int, "patients": int})


def pain_week_chart(snap: Snapshot, filters: Filters = Filters(),
                    audience: Audience = Audience.CLINICAL) -> Chart:
    """Weekly pain (:func:`pain_by_week`) as a page draws it: weeks 0 to the
    last drawn one, a week from fewer than 11 patients left empty (the line
    breaks there), and the sentence naming the weeks left out."""
    outcomes.internal_only(audience, "Pain by week")
    weeks = pain_by_week(snap, filters, charts.MIN_PER_POINT)
    if weeks.empty:
        return Chart(weeks, nothing=f"No week has pain scores from at least "
                                    f"{charts.MIN_PER_POINT} patients")
    last = int(weeks["week"].max())
    weeks = weeks.set_index("week").reindex(range(last + 1)).reset_index()
    gaps = [int(w) for w, n in zip(weeks["week"], weeks["patients"]) if n != n]
    gaps += list(range(last + 1, LAST_WEEK + 1))
    return Chart(weeks, charts.not_drawn_text([f"weeks {charts.ranges(gaps)}"] if gaps else [],
                                              "patients with a pain score"))


def acute_chart(snap: Snapshot, filters: Filters = Filters(),
                audience: Audience = Audience.CLINICAL) -> Chart:
    """Acute relief by session number (:func:`acute_by_infusion`) as a page
    draws it: session numbers from fewer than 11 patients left out, and
    named."""
    outcomes.internal_only(audience, "Acute relief by session")
    acute = acute_by_infusion(snap, filters, charts.MIN_PER_POINT)
    if acute.empty:
        return Chart(acute, nothing=f"No session number has before-and-after scores from at "
                                    f"least {charts.MIN_PER_POINT} patients")
    numbers = set(int(n) for n in acute["infusion_number"])
    missing = sorted(set(range(1, max(numbers) + 1)) - numbers)
    return Chart(acute, charts.not_drawn_text(
        [f"session numbers {charts.ranges(missing)}"] if missing else [],
        "patients with both scores"))


@dataclass(frozen=True)
class Waterfall:
    timepoint: str
    definition: str             # the pain definition the colours use
    requested_definition: str   # the shared setting (may be an opioid one)
    bars: pd.DataFrame          # patient_id, condition, baseline_pain, follow_up_pain,
                                # percent_change, responder; largest increase first
    due_without_follow_up: int  # eligible, due, no follow-up pain: not drawn
    ids_shown: bool = True      # patient ids in ``bars`` (the clinical team only)

    @property
    def responders(self) -> int:
        return int(self.bars["responder"].sum()) if len(self.bars) else 0


def waterfall_definition(definition: str) -> str:
    """The responder definition a pain waterfall is coloured by: the shared one
    when it is a pain definition, else pain30."""
    return definition if definition in definitions.PAIN_DEFINITIONS else "pain30"


def pain_waterfall(snap: Snapshot, timepoint: str = "3m", definition: str = "pain30",
                   filters: Filters = Filters(),
                   audience: Audience = Audience.CLINICAL) -> Waterfall:
    """Each patient's % change in pain at the timepoint, coloured by responder.
    Patient ids for the clinical team only (None for analysts); not for the
    external audience (one bar is one patient)."""
    definitions.check_setting(timepoint, definition)
    outcomes.internal_only(audience, "The pain waterfall")
    used = waterfall_definition(definition)
    bars = run_query(snap, "program_waterfall", filters, {"timepoint": timepoint, "definition": used})
    bars["responder"] = bars["responder"].astype(bool)
    where, params = filters.sql()
    missing = snap.scalar(f"""
        SELECT count(*) FROM patient_outcomes
        WHERE timepoint = $timepoint AND definition = $definition
          AND missing_follow_up AND {where}
    """, {"timepoint": timepoint, "definition": used, **params})
    if not audience.sees_patients:
        bars["patient_id"] = None
    return Waterfall(timepoint, used, definition, bars, int(missing or 0),
                     audience.sees_patients)


# --------------------------------------------------------------------------
# patient flow


EXIT_LABELS = {
    "not treated": "Not treated (no infusion)",
    "stopped before completing induction": "Stopped before completing induction",
    "no baseline pain": "No baseline pain score",
    "baseline pain 0": "Baseline pain 0",
    "opioid use at baseline unknown": "Opioid use at baseline unknown",
    "not on opioids at baseline": "Not on opioids at baseline",
    "not yet due": "Not yet due",
    "lost to follow-up": "Lost to follow-up (due, no follow-up)",
    "non-responder": "Non-responder",
}


@dataclass(frozen=True)
class FlowExit:
    reason: str
    label: str
    patients: int


@dataclass(frozen=True)
class FlowStage:
    key: str
    label: str
    patients: int
    exits: tuple[FlowExit, ...]   # who leaves between this stage and the next

    @property
    def exited(self) -> int:
        return sum(e.patients for e in self.exits)


@dataclass(frozen=True)
class PatientFlow:
    timepoint: str
    definition: str
    stages: tuple[FlowStage, ...]
    # patients who stopped before completing induction yet count in the
    # program's ITT rate (eligible and due), and how many of them respond
    stopped_early_due: int
    stopped_early_responders: int

    def stage(self, key: str) -> FlowStage:
        return next(s for s in self.stages if s.key == key)

    @property
    def itt_n(self) -> int:
        """The program's ITT denominator (as on Overview): due patients who
        completed induction and those who stopped before completing it."""
        return self.stage("due").patients + self.stopped_early_due

    @property
    def itt_responders(self) -> int:
        return self.stage("responder").patients + self.stopped_early_responders

    @property
    def reconciles(self) -> bool:
        """Each stage = the next stage + the exits between them."""
        return all(a.patients == b.patients + a.exited
                   for a, b in zip(self.stages, self.stages[1:])) and not self.stages[-1].exits

    def table(self) -> pd.DataFrame:
        """One row per stage (stage, patients) and per exit after it (exit,
        left); columns step, stage, patients, exit, left."""
        rows = []
        for number, stage in enumerate(self.stages, start=1):
            rows.append({"step": number, "stage": stage.label, "patients": stage.patients,
                         "exit": "", "left": None})
            for exit_ in stage.exits:
                rows.append({"step": number, "stage": "", "patients": None,
                             "exit": exit_.label, "left": exit_.patients})
        return pd.DataFrame(rows, columns=["step", "stage", "patients", "exit", "left"])


def flow_patients(snap: Snapshot, timepoint: str = "3m", definition: str = "pain30",
                  filters: Filters = Filters()) -> pd.DataFrame:
    """One row per patient in view with the stage flags and exit_reason (None
    for a responder).  See ``program_patient_flow.sql``."""
    definitions.check_setting(timepoint, definition)
    return run_query(snap, "program_patient_flow", filters, {
        "timepoint": timepoint, "definition": definition,
        "induction_days": definitions.INDUCTION_DAYS,
        "induction_min": definitions.INDUCTION_MIN_INFUSIONS})


def patient_flow(snap: Snapshot, timepoint: str = "3m", definition: str = "pain30",
                 filters: Filters = Filters(),
                 audience: Audience = Audience.CLINICAL) -> PatientFlow:
    """CONSORT-style flow: seen → first infusion → completed induction → due →
    with follow-up → responder, with the count and reason at every exit.
    Internal readers only: every exit is a count, most of them small."""
    outcomes.internal_only(audience, "The patient flow")
    people = flow_patients(snap, timepoint, definition, filters)
    reasons = people["exit_reason"].value_counts().to_dict()

    def exits(*names: str) -> tuple[FlowExit, ...]:
        return tuple(FlowExit(r, EXIT_LABELS[r], int(reasons.get(r, 0))) for r in names)

    baseline = _baseline_reasons(definition)
    treated = people["treated"]
    completed = treated & people["completed_induction"]
    due = completed & people["in_itt"]
    followed = due & people["in_completers"]
    responders = followed & people["responder"]
    timepoint_label = definitions.TIMEPOINT_LABELS[timepoint]
    stages = (
        FlowStage("seen", "Patients seen", len(people), exits("not treated")),
        FlowStage("treated", "Received a first infusion", int(treated.sum()),
                  exits("stopped before completing induction")),
        FlowStage("induction", "Completed induction", int(completed.sum()),
                  exits(*baseline, "not yet due")),
        FlowStage("due", f"Due at {timepoint_label}", int(due.sum()), exits("lost to follow-up")),
        FlowStage("follow_up", "With a follow-up", int(followed.sum()), exits("non-responder")),
        FlowStage("responder", f"Responders ({definition})", int(responders.sum()), ()),
    )
    early = treated & ~people["completed_induction"] & people["in_itt"]
    return PatientFlow(timepoint, definition, stages, int(early.sum()),
                       int((early & people["responder"]).sum()))


def _baseline_reasons(definition: str) -> tuple[str, ...]:
    """The "no baseline" exits that can apply to a definition."""
    needs = definitions.definition(definition)
    reasons: tuple[str, ...] = ()
    if needs.needs_pain:
        reasons += ("no baseline pain", "baseline pain 0")
    if needs.needs_mme:
        reasons += ("opioid use at baseline unknown", "not on opioids at baseline")
    return reasons
