"""The quarterly report (issue 6): one quarter's activity, results and safety.

``build_report(snap, "2026Q3")`` computes every table from the snapshot's
models (the same ones every page reads) and records where the numbers came
from (quarter, data cutoff, data fingerprint, definitions, thresholds,
software version, when generated).  Two runs on the same data give the same
tables and fingerprint; only ``generated_at`` differs.

Tables (``QuarterlyReport.tables()``):

* ``activity``  new patients (index date in the quarter), patients treated,
  infusion visits and boosters (visits dated in the quarter), by site.
* ``cohort``    responder rates (ITT, Wilson 95% CI) of the quarter's new
  patients, every timepoint x definition, with the change from the previous
  quarter's cohort and from the same quarter a year earlier.  Recent cohorts
  are mostly "not yet due".
* ``due``       the same for the results that came due in the quarter
  (patients whose index date + target day lies in it).
* ``pchart``    responder rate by cohort quarter (pain30, 3 months, ITT)
  with p-chart limits (centre = pooled rate, 3 sigma by each quarter's n);
  points outside the limits are flagged.
* ``opioids``   baseline opioid users among new patients, mme50 and mme_stop
  at 3 months (results due in the quarter), share of visits at >= 50 and
  >= 90 MME/day.
* ``benzodiazepines``  share of visits with a benzodiazepine (and with an
  opioid as well) among the visits recording it.
* ``safety``    the Safety page's rates (:func:`analysis.metrics.safety.safety_summary`,
  one computation for both) over the treatment sessions (infusion visits and
  boosters) dated in the quarter: adverse events per 100 treatment sessions
  by type (a session listing several counts once for each), and SBP >= 180 /
  SpO2 < 90 per 100 sessions that recorded that vital sign, with the Wilson
  interval of the per-session proportion.

Audiences (:class:`analysis.core.audience.Audience`): ``clinical`` shows every
cell and the adverse events as written; ``analyst`` every cell too, with
groups under 11 flagged ``too_few`` and adverse events by category only;
``external`` is the whole program whatever the filters (a fixed table: two
filter states can never be differenced), adverse events by category, and
every count of the report registered in one :class:`analysis.core.disclosure.Tables`
with the sums that tie them (sites to their total, new patients to the
treated and to each definition's eligible patients, ITT n to responders and
non-responders, a definition's n to the claim's, a quarter's cohort to its
p-chart point, sessions to the safety table's denominator): every count from
1 to 10, every count that would reveal one, and every rate built on them
reads "too few to report".  Exports: :func:`write_html` (self-contained, charts
as inline SVG), :func:`write_xlsx` (one sheet per table + Provenance, every
text cell through :func:`analysis.core.formatting.safe_for_spreadsheet`) and
:func:`write_pdf` (fpdf2, DejaVu Sans, matplotlib charts as PNG).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

import analysis
from analysis.core import definitions, disclosure, formatting, stats, synthetic_mark, words
from analysis.metrics import outcomes, safety
from analysis.storage import queries
from analysis.core.audience import SMALL_CELL, SUPPRESSED, Audience, parse as parse_audience
from analysis.core.definitions import DEFINITIONS, TIMEPOINTS
from analysis.core.filters import Filters
from analysis.core.palette import ACCENT, BAD, GOOD, NEUTRAL, PRIMARY, font_dir as _font_dir
from analysis.storage.store import Snapshot
from analysis.core.filters import previous_quarter, quarter_bounds, quarter_of

SOFTWARE_VERSION = getattr(analysis, "__version__", None) or "0.1.0"
AUDIENCES = tuple(a.value for a in Audience)
FORMATS = ("html", "xlsx", "pdf")
CI_METHOD = "wilson"
CONFIDENCE = 0.95
PCHART_READING = {"timepoint": "3m", "definition": "pain30", "population": "itt"}
PCHART_SIGMA = 3.0
OPIOID_TIMEPOINT = "3m"
MME_THRESHOLDS = (50, 90)
SBP_THRESHOLD = 180
SPO2_THRESHOLD = 90
ALL_SITES = "All sites"
ANY_EVENT = "Any adverse event"
SUPPRESSED_TEXT = SUPPRESSED


class NoDataError(ValueError):
    """The quarter has no visits (for the patients in view)."""


# --------------------------------------------------------------------------
# table layout: what each column is, for the page, HTML, XLSX and PDF


@dataclass(frozen=True)
class Column:
    """One column of a report table.

    ``kind`` says how it reads: ``text``, ``timepoint``, ``definition``,
    ``n`` (a group size: suppressed for outsiders when < 11), ``count`` (a
    count inside a group), ``rate`` (a proportion 0-1), ``ci`` (an interval
    end of the rate before it, merged into it when displayed), ``change`` (a
    difference of proportions), ``per100`` / ``ci100`` (per 100 treatment sessions).
    ``n`` names the group-size column a rate belongs to; ``ci`` its interval.
    """
    name: str
    label: str
    kind: str = "text"
    n: str | None = None
    ci: tuple[str, str] | None = None


_NUMERIC_KINDS = {"n", "count", "rate", "per100", "change"}


@dataclass(frozen=True)
class TableSpec:
    key: str
    title: str
    note: str
    columns: tuple[Column, ...]


# --------------------------------------------------------------------------
# the report


@dataclass
class QuarterlyReport:
    quarter: str
    audience: Audience
    start: dt.date
    end: dt.date
    previous_quarter: str
    year_earlier: str
    cutoff: dt.date | None
    filters: Filters
    fingerprint: str
    software_version: str
    generated_at: str
    activity: pd.DataFrame
    cohort: pd.DataFrame
    due: pd.DataFrame
    pchart: pd.DataFrame
    pchart_centre: float | None
    opioids: pd.DataFrame
    benzodiazepines: pd.DataFrame
    safety: pd.DataFrame
    definitions: list[tuple[str, str]] = field(default_factory=list)
    synthetic: bool = False   # made from invented data: every page and sheet says so
    disclosure: object = None  # external: the analysis.core.disclosure.Tables the report was protected by

    @property
    def external(self) -> bool:
        return self.audience.external

    @property
    def complete(self) -> bool:
        """The quarter had ended by the data cutoff."""
        return self.cutoff is not None and self.cutoff >= self.end

    @property
    def period_text(self) -> str:
        return f"{formatting.long_date(self.start)} – {formatting.long_date(self.end)}"

    @property
    def title(self) -> str:
        return f"Quarterly outcomes report {self.quarter}"

    def specs(self) -> list[TableSpec]:
        return _specs(self)

    def tables(self) -> list[tuple[TableSpec, pd.DataFrame]]:
        """Every table in report order, with its layout."""
        return [(spec, getattr(self, spec.key)) for spec in self.specs()]

    def provenance(self) -> list[tuple[str, str]]:
        """Where the numbers come from: item, value (text)."""
        audience = {
            Audience.EXTERNAL: f"external: the whole program (filters do not apply); every count "
                               f"from 1 to {SMALL_CELL - 1}, every count that would reveal one "
                               f"and every rate built on them withheld; adverse events by "
                               f"category; nothing patient-level",
            Audience.ANALYST: f"internal (analysts): every cell shown, groups under {SMALL_CELL} "
                              f"flagged; adverse events by category",
            Audience.CLINICAL: "clinical team: every cell shown",
        }[self.audience]
        status = ("complete" if self.complete else
                  f"in progress: data up to {formatting.long_date(self.cutoff)}")
        return [
            ("Report", self.title),
            ("Quarter", f"{self.quarter} ({self.period_text}), {status}"),
            ("Compared with", f"previous quarter {self.previous_quarter}; "
                              f"same quarter a year earlier {self.year_earlier}"),
            ("Audience", audience),
            ("Patients in view", self.filters.describe()),
            *([("Data", synthetic_mark.TEXT)] if self.synthetic else []),
            ("Data cutoff (latest visit date)", _iso(self.cutoff)),
            ("Data fingerprint (SHA-256 of the visits table)", self.fingerprint),
            *self.definitions,
            ("Software version", f"analysis {self.software_version}"),
            ("Generated at (UTC)", self.generated_at),
        ]

    def provenance_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.provenance(), columns=["item", "value"])

    def highlights(self) -> list[str]:
        """A few sentences with the quarter's main numbers (suppression respected)."""
        total = self.activity[self.activity["site"] == ALL_SITES].iloc[0]
        counts = ("new_patients", "infusions", "boosters", "patients_treated")
        if any(_withheld_or_missing(total[c]) for c in counts):
            lines = ["New patients: {}; infusion visits: {}; boosters: {}; patients treated: {}."
                     .format(*(_count_text(total[c]) for c in counts))]
        else:
            lines = [f"{_count_text(total['new_patients'])} new patients started treatment; "
                     f"{words.sessions_text(total['infusions'], total['boosters'])} were given "
                     f"to {_count_text(total['patients_treated'])} patients."]
        reading = self.due[(self.due["timepoint"] == PCHART_READING["timepoint"])
                           & (self.due["definition"] == PCHART_READING["definition"])]
        if not reading.empty:
            r = reading.iloc[0]
            label = (f"{definitions.DEFINITION_LABELS[r['definition']]} at "
                     f"{definitions.TIMEPOINT_LABELS[r['timepoint']]}")
            if _withheld_or_missing(r["n"]) or _withheld_or_missing(r["rate"]) and r["n"]:
                lines.append(f"Results due at 3 months this quarter ({label}): {SUPPRESSED_TEXT}.")
            elif r["n"] == 0:
                lines.append(f"No 3-month results came due this quarter ({label}).")
            else:
                lines.append(
                    f"Of {_count_text(r['n'])} patients whose 3-month result came due, "
                    f"{formatting.rate_with_ci(r['rate'], r['ci_low'], r['ci_high'])} had "
                    f"{definitions.DEFINITION_LABELS[r['definition']]} (ITT; change from "
                    f"{self.previous_quarter}: {_change_text(r['change_prev'])}).")
        flagged = self.pchart[self.pchart["outside"].fillna(False).astype(bool)]
        if _pchart_points(self).empty:
            lines.append("No cohort has 3-month results due yet, so cohorts cannot be compared.")
        elif not flagged.empty:
            lines.append("Cohorts whose 3-month pain result (≥30% less pain) differs from the "
                         "average of all cohorts by more than chance would give: "
                         + ", ".join(f"{q} ({s.split(' the ')[0]} the average)" for q, s in
                                     zip(flagged["cohort_quarter"], flagged["signal"])) + ".")
        else:
            lines.append("Every cohort's 3-month pain result (≥30% less pain) is within what "
                         "chance gives around the average of all cohorts.")
        any_event = self.safety[self.safety["event"] == ANY_EVENT]
        if not any_event.empty:
            e = any_event.iloc[0]
            if _withheld_or_missing(e["n"]) or _withheld_or_missing(e["per_100"]) and e["n"]:
                lines.append(f"Adverse events: {SUPPRESSED_TEXT}.")
            elif e["n"]:
                lines.append(f"Adverse events: {formatting.number(e['per_100'])} "
                             f"{words.PER_100_SESSIONS} (95% CI {formatting.number(e['ci_low'])}–"
                             f"{formatting.number(e['ci_high'])}).")
        if not self.complete:
            lines.append(f"The quarter is not over: data run to "
                         f"{formatting.long_date(self.cutoff)}.")
        return lines


# --------------------------------------------------------------------------
# building


def quarters_with_data(snap: Snapshot) -> list[str]:
    """Quarters that have at least one visit, oldest first."""
    return list(_query(snap, "report_quarters")["quarter"])


def default_quarter(snap: Snapshot) -> str | None:
    """The latest quarter that had ended by the data cutoff (else the latest)."""
    quarters = quarters_with_data(snap)
    cutoff = outcomes.cutoff(snap)
    complete = [q for q in quarters if cutoff and quarter_bounds(q)[1] <= cutoff]
    return (complete or quarters or [None])[-1]


def build_report(snap: Snapshot, quarter: str, audience: Audience | str = Audience.CLINICAL,
                 filters: Filters = Filters()) -> QuarterlyReport:
    """The report of one quarter for one audience, already safe for it.

    ``filters`` narrows the patients (sites, conditions, routes) for an
    internal audience; its index date range is ignored, since the report sets
    its own periods.  The external audience always gets the whole program
    (its fixed tables), whatever ``filters`` says.  Raises ``ValueError``
    for a malformed quarter or unknown audience and :class:`NoDataError`
    when no visit of the patients in view is dated in the quarter.
    """
    start, end = quarter_bounds(quarter)
    quarter = quarter_of(start)
    reader = parse_audience(audience)
    filters = Filters() if reader.external else \
        dataclasses.replace(filters, index_from=None, index_to=None)
    visits = _scalar(snap, "report_quarter_visits", filters, "p", start=start, end=end)
    if not visits:
        quarters = quarters_with_data(snap)
        span = f"the data run from {quarters[0]} to {quarters[-1]}" if quarters else \
            "the database has no visits"
        raise NoDataError(f"no visits in {quarter} ({formatting.long_date(start)} – "
                          f"{formatting.long_date(end)}) for {filters.describe()}; {span}")

    previous = previous_quarter(quarter)
    year_earlier = previous_quarter(quarter, 4)
    from analysis.storage.fingerprint import data_fingerprint

    pchart, centre = _pchart(snap, end, filters)
    due = _responders(snap, "due", quarter, filters)
    medication = _query(snap, "report_opioids", filters, start=start, end=end).iloc[0]
    report = QuarterlyReport(
        quarter=quarter, audience=reader, start=start, end=end,
        previous_quarter=previous, year_earlier=year_earlier,
        cutoff=outcomes.cutoff(snap), filters=filters,
        fingerprint=data_fingerprint(snap), software_version=SOFTWARE_VERSION,
        generated_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        activity=_activity(snap, start, end, filters),
        cohort=_responders(snap, "cohort", quarter, filters),
        due=due, pchart=pchart, pchart_centre=centre,
        opioids=_opioids(medication, due),
        benzodiazepines=_benzodiazepines(medication),
        safety=_safety(snap, start, end, filters, reader.sees_free_text),
        definitions=_definitions(snap),
        synthetic=snap.synthetic,
    )
    if reader.external:
        _protect(report)
    else:
        _flag_too_few(report)
    return report


def _query(snap: Snapshot, name: str, filters: Filters = Filters(), alias: str = "",
           **params) -> pd.DataFrame:
    """Run ``sql/queries/<name>.sql`` with the patient filter for ``alias``."""
    return queries.run_query(snap, name, filters, params, alias)


def _scalar(snap: Snapshot, name: str, filters: Filters, alias: str = "", **params):
    return _query(snap, name, filters, alias, **params).iloc[0, 0]


def _activity(snap, start, end, filters) -> pd.DataFrame:
    frame = _query(snap, "report_activity", filters, start=start, end=end)
    counts = ["new_patients", "patients_treated", "infusions", "boosters"]
    total = {"site": ALL_SITES, **{c: int(frame[c].sum()) for c in counts}}
    frame = pd.concat([frame, pd.DataFrame([total])], ignore_index=True)
    for c in counts:
        frame[c] = frame[c].astype(int)
    return frame


def _proportion(k, n) -> stats.Proportion:
    return stats.proportion(int(k), int(n), method=CI_METHOD, confidence=CONFIDENCE)


def _responder_counts(snap, basis: str, quarter: str, filters: Filters) -> pd.DataFrame:
    start, end = quarter_bounds(quarter)
    counts = _query(snap, "report_responders", filters, "o", basis=basis, start=start, end=end)
    index = pd.MultiIndex.from_product([TIMEPOINTS, DEFINITIONS], names=["timepoint", "definition"])
    counts = counts.set_index(["timepoint", "definition"]).reindex(index, fill_value=0)
    return counts.reset_index()


def _responders(snap, basis: str, quarter: str, filters: Filters) -> pd.DataFrame:
    """ITT responder counts and rates of one period, with the two comparisons."""
    now = _responder_counts(snap, basis, quarter, filters)
    before = _responder_counts(snap, basis, previous_quarter(quarter), filters)
    year = _responder_counts(snap, basis, previous_quarter(quarter, 4), filters)
    rows = []
    for r, p, y in zip(now.itertuples(), before.itertuples(), year.itertuples()):
        current = _proportion(r.responders, r.n)
        prev_rate = _proportion(p.responders, p.n).rate
        yoy_rate = _proportion(y.responders, y.n).rate
        rows.append({
            "timepoint": r.timepoint, "definition": r.definition,
            "n": int(r.n), "responders": int(r.responders),
            "rate": current.rate, "ci_low": current.ci_low, "ci_high": current.ci_high,
            "pending": int(r.pending),
            "prev_n": int(p.n), "prev_rate": prev_rate,
            "change_prev": _difference(current.rate, prev_rate),
            "yoy_n": int(y.n), "yoy_rate": yoy_rate,
            "change_yoy": _difference(current.rate, yoy_rate),
        })
    return pd.DataFrame(rows)


def _difference(a, b):
    return None if _withheld_or_missing(a) or _withheld_or_missing(b) else float(a) - float(b)


def _pchart(snap, end: dt.date, filters: Filters) -> tuple[pd.DataFrame, float | None]:
    """Responder rate by cohort quarter (cohorts up to the report quarter)."""
    counts = outcomes.counts_by_condition(snap, dataclasses.replace(filters, index_to=end),
                                          group_by="cohort_quarter")
    cell = counts[(counts["timepoint"] == PCHART_READING["timepoint"])
                  & (counts["definition"] == PCHART_READING["definition"])
                  & (counts["population"] == PCHART_READING["population"])
                  & (counts["group"] != "All") & (counts["n"] > 0)]
    cell = cell.sort_values("group")
    frame = pd.DataFrame({"cohort_quarter": list(cell["group"]),
                          "n": [int(v) for v in cell["n"]],
                          "responders": [int(v) for v in cell["responders"]]})
    return _control_limits(frame)


def _control_limits(frame: pd.DataFrame) -> tuple[pd.DataFrame, float | None]:
    """Rates, p-chart limits and signals of the rows whose n is present."""
    present = [not _withheld_or_missing(n) and not _withheld_or_missing(k)
               for n, k in zip(frame["n"], frame["responders"])]
    k = [int(v) for v, p in zip(frame["responders"], present) if p]
    n = [int(v) for v, p in zip(frame["n"], present) if p]
    limits = stats.p_chart(k, n, sigma=PCHART_SIGMA)
    lower, upper = iter(limits.lower), iter(limits.upper)
    rows = []
    for row, p in zip(frame.itertuples(index=False), present):
        if not p:
            rows.append({"cohort_quarter": row.cohort_quarter, "n": SUPPRESSED_TEXT,
                         "responders": SUPPRESSED_TEXT,
                         "rate": None, "centre": limits.centre, "lower": None, "upper": None,
                         "outside": False, "signal": ""})
            continue
        low, high = next(lower), next(upper)
        rate = int(row.responders) / int(row.n)
        signal = ("above the upper limit" if high is not None and rate > high + 1e-12 else
                  "below the lower limit" if low is not None and rate < low - 1e-12 else "")
        rows.append({"cohort_quarter": row.cohort_quarter, "n": int(row.n),
                     "responders": int(row.responders), "rate": rate, "centre": limits.centre,
                     "lower": low, "upper": high, "outside": bool(signal), "signal": signal})
    columns = ["cohort_quarter", "n", "responders", "rate", "centre", "lower", "upper",
               "outside", "signal"]
    out = pd.DataFrame(rows, columns=columns)
    for column in ("n", "responders"):  # whole numbers, "too few to report" where withheld
        out[column] = pd.Series([r[column] for r in rows], index=out.index, dtype=object)
    return out, limits.centre


def _measure(measure: str, basis: str, k, n) -> dict:
    p = _proportion(k, n)
    return {"measure": measure, "basis": basis, "count": int(k), "n": int(n),
            "rate": p.rate, "ci_low": p.ci_low, "ci_high": p.ci_high}


def _opioids(row: pd.Series, due: pd.DataFrame) -> pd.DataFrame:
    tp = definitions.TIMEPOINT_LABELS[OPIOID_TIMEPOINT]
    at = due[due["timepoint"] == OPIOID_TIMEPOINT].set_index("definition")
    due_basis = f"baseline opioid users whose result at {tp} came due in the quarter (ITT)"
    low, high = MME_THRESHOLDS
    return pd.DataFrame([
        _measure("On opioids at baseline",
                 "new patients of the quarter whose opioid use at baseline is known",
                 row.baseline_users, row.baseline_known),
        _measure(f"Opioid dose cut by ≥50% at {tp}", due_basis,
                 at.loc["mme50", "responders"], at.loc["mme50", "n"]),
        _measure(f"Off opioids at {tp}", due_basis,
                 at.loc["mme_stop", "responders"], at.loc["mme_stop", "n"]),
        _measure(f"Visits at ≥{low} MME/day", "visits in the quarter recording a daily MME",
                 row.mme_at_least_50, row.mme_recorded),
        _measure(f"Visits at ≥{high} MME/day", "visits in the quarter recording a daily MME",
                 row.mme_at_least_90, row.mme_recorded),
    ])


def _benzodiazepines(row: pd.Series) -> pd.DataFrame:
    return pd.DataFrame([
        _measure("Visits with a benzodiazepine",
                 "visits in the quarter recording whether one is taken",
                 row.benzo_yes, row.benzo_recorded),
        _measure("Visits with a benzodiazepine and an opioid",
                 "visits in the quarter recording both", row.both_yes, row.both_recorded),
    ])


SAFETY_VITALS = {"sbp_180": f"Systolic BP ≥ {SBP_THRESHOLD} mmHg",
                 "spo2_below_90": f"SpO₂ < {SPO2_THRESHOLD}%"}


def _safety(snap, start, end, filters, free_text: bool = True) -> pd.DataFrame:
    """The Safety page's rates for the treatment sessions dated in the
    quarter: the same computation (safety.safety_summary), so the page and
    the report cannot disagree on a definition.  ``n`` is each row's
    denominator: every session for adverse events, the sessions that
    recorded the vital sign for SBP and SpO2.  Without ``free_text`` (anyone
    but the clinical team) adverse events are counted by category
    (:func:`adverse_event_category`), never by the text as written."""
    summary = safety.safety_summary(snap, filters, CI_METHOD, visits_from=start, visits_to=end)
    rows = [("Adverse events", ANY_EVENT, summary.rate("any_adverse_event"))]
    if free_text:
        rows += [("Adverse events", event.capitalize(), summary.rate(event))
                 for event in summary.adverse_event_types]
    else:
        rows += [("Adverse events", category.capitalize(), rate)
                 for category, rate in _category_rates(snap, start, end, filters, summary)]
    rows += [("Vital signs", label, summary.rate(measure))
             for measure, label in SAFETY_VITALS.items()]
    return pd.DataFrame(
        [{"category": category, "event": event, "events": rate.events, "n": rate.n,
          "per_100": rate.per_100, "ci_low": rate.ci_low, "ci_high": rate.ci_high}
         for category, event, rate in rows],
        columns=["category", "event", "events", "n", "per_100", "ci_low", "ci_high"])


OTHER_EVENT = "other"


def adverse_event_category(text: str, db_path=None) -> str:
    """The controlled category of one adverse event as written (the
    clinic's table, analysis.metrics.adverse_events; unknown text is "other")."""
    from analysis.metrics import adverse_events
    return adverse_events.category(text, db_path)


def _category_rates(snap, start, end, filters, summary) -> list[tuple[str, "safety.SafetyRate"]]:
    """Sessions with an event of each category (a session counts once per
    category), per 100 sessions, most frequent first."""
    sessions = safety.infusions(snap, filters, start, end)
    counts: dict[str, int] = {}
    for events in sessions["adverse_events"]:
        for category in {adverse_event_category(e, snap.db_path) for e in events}:
            counts[category] = counts.get(category, 0) + 1
    n = summary.rate("any_adverse_event").n
    out = []
    for category in sorted(counts, key=lambda c: (-counts[c], c == OTHER_EVENT, c)):
        p = stats.proportion(counts[category], n, method=CI_METHOD, confidence=CONFIDENCE)
        out.append((category, safety.SafetyRate("overall", "All", category, p, n < SMALL_CELL)))
    return out


def _definitions(snap) -> list[tuple[str, str]]:
    timepoints = snap.query("SELECT * FROM timepoints ORDER BY sort_order")
    responder_definitions = snap.query("SELECT * FROM definitions ORDER BY sort_order")
    reading = (f"{PCHART_READING['definition']} at "
               f"{definitions.TIMEPOINT_LABELS[PCHART_READING['timepoint']]}, ITT")
    return [
        ("Index date", "first infusion or booster visit"),
        ("Baselines", "pain: last pain score in [index − 30, index] days, above 0; "
                      "opioid dose: last daily MME in [index − 90, index] days "
                      "(> 0: baseline opioid user)"),
        ("Timepoints (target day, window in days from index, inclusive)",
         "; ".join(f"{r.timepoint}: day {r.target_day} [{r.window_start}, {r.window_end}]"
                   for r in timepoints.itertuples())),
        ("Responder definitions (r = relative reduction from baseline)",
         "; ".join(f"{r.definition}: {r.label}" for r in responder_definitions.itertuples())
         + "; ratios compared with a tolerance of 1e-9"),
        ("Population", "ITT: eligible patients (every baseline the definition needs) whose "
                       "whole follow-up window had closed by the data cutoff (index + window "
                       "end ≤ cutoff); a missing follow-up counts as not a responder. An "
                       "early follow-up of a patient whose window is still open is "
                       "provisional and not in this report"),
        ("Results due in the quarter", "patients whose index date + target day falls in "
                                       "the quarter"),
        ("Confidence intervals", f"{100 * CONFIDENCE:.0f}% Wilson score interval"),
        ("Control chart", f"p-chart of {reading} by cohort quarter: centre = pooled rate, "
                          f"limits ±{PCHART_SIGMA:g} sigma using each quarter's n"),
        ("Opioid thresholds", "≥50 and ≥90 MME/day (CDC 2022); MME from the session export, "
                              "else the medication export"),
        ("Safety", f"as on the Safety page: adverse events {words.PER_100_SESSIONS} "
                   f"(infusion visits and boosters dated in the quarter; a session listing "
                   f"several events counts once for each); systolic BP ≥ {SBP_THRESHOLD} "
                   f"mmHg and SpO₂ < {SPO2_THRESHOLD}% per 100 sessions that recorded them"),
        ("Small-cell rule", f"outside the clinical team (external): no count from 1 to "
                            f"{SMALL_CELL - 1} is shown or can be worked out from the shown "
                            f"ones (complementary suppression across every table of the "
                            f"report); inside, groups with n < {SMALL_CELL} are flagged"),
    ]


# --------------------------------------------------------------------------
# small cells

#: Definitions that count the same patients (the same baselines needed): one n.
ELIGIBILITY = {"pain30": "pain", "pain50": "pain", "pain2pt": "pain",
               "mme50": "opioids", "mme_stop": "opioids", "claim": "claim"}
#: (wider, narrower): the narrower definition's responders are among the wider's.
NESTED_RESPONDERS = (("pain30", "pain50"), ("mme50", "mme_stop"), ("pain30", "claim"),
                     ("mme50", "claim"))
_RATE_TABLES = ("cohort", "due")
_MEASURE_TABLES = ("opioids", "benzodiazepines")


def _flag_too_few(report: QuarterlyReport) -> None:
    """Internal readers see every count, and which groups are too few (n < 11)."""
    for name in (*_RATE_TABLES, *_MEASURE_TABLES, "safety"):
        frame = getattr(report, name).copy()
        frame["too_few"] = [int(n) < SMALL_CELL for n in frame["n"]]
        setattr(report, name, frame)


class _Publication:
    """The report's counts as one :class:`analysis.core.disclosure.Tables`."""

    def __init__(self):
        self.tables = disclosure.Tables()

    def cell(self, key, value, published: bool = True):
        return self.tables.cell(key, int(value), published)

    def rest(self, total, parts, key) -> None:
        """``total = parts + rest`` with ``rest`` never shown (it is derived),
        when the counts say so (a relation the data break is not a relation)."""
        values = self.tables.values
        value = values[total] - sum(values[p] for p in parts)
        if value >= 0:
            self.cell(key, value, published=False)
            self.tables.add_sum(total, [*parts, key])

    def same(self, a, b) -> None:
        if self.tables.values[a] == self.tables.values[b]:
            self.tables.add_sum(a, [b])

    def hidden(self, key) -> bool:
        return self.tables.hidden(key)


def _rate_keys(name: str, quarter: str, timepoint: str, definition: str):
    base = (name if name == "due" else "cohort", quarter, timepoint)
    return ("n", *base, ELIGIBILITY[definition]), ("k", *base, definition)


def _register_rates(pub: _Publication, report: QuarterlyReport, name: str) -> None:
    frame = getattr(report, name)
    periods = (("", report.quarter), ("prev_", report.previous_quarter),
               ("yoy_", report.year_earlier))
    for row in frame.itertuples():
        for prefix, quarter in periods:
            n_key, k_key = _rate_keys(name, quarter, row.timepoint, row.definition)
            n = getattr(row, f"{prefix}n")
            pub.cell(n_key, n)
            k = row.responders if not prefix else \
                0 if not int(n) else round(float(getattr(row, f"{prefix}rate")) * int(n))
            pub.cell(k_key, k)
            pub.rest(n_key, [k_key], ("not responders", *k_key[1:]))
        pending = ("pending", name, report.quarter, row.timepoint, ELIGIBILITY[row.definition])
        pub.cell(pending, row.pending)
        n_key, _ = _rate_keys(name, report.quarter, row.timepoint, row.definition)
        # eligible = due + not yet due; in a cohort the same patients at every timepoint
        eligible = ("eligible", name, report.quarter, ELIGIBILITY[row.definition]) \
            + (() if name == "cohort" else (row.timepoint,))
        value = int(row.n) + int(row.pending)
        if eligible not in pub.tables.values:
            pub.cell(eligible, value, published=False)
        if pub.tables.values[eligible] == value:
            pub.tables.add_sum(eligible, [n_key, pending])
    for quarter in {q for _, q in periods}:
        for timepoint in TIMEPOINTS:
            keys = {d: _rate_keys(name, quarter, timepoint, d) for d in DEFINITIONS}
            if (keys["claim"][0] not in pub.tables.values):
                continue
            for wider in ("pain30", "mme50"):     # the claim needs both baselines
                pub.rest(keys[wider][0], [keys["claim"][0]],
                         ("eligible beyond the claim", name, quarter, timepoint, wider))
            for wider, narrower in NESTED_RESPONDERS:
                pub.rest(keys[wider][1], [keys[narrower][1]],
                         ("responders beyond", name, quarter, timepoint, wider, narrower))


def _publication(report: QuarterlyReport) -> _Publication:
    """Every count the external report shows, and the sums an outsider knows."""
    pub = _Publication()
    activity = report.activity.set_index("site")
    measures = ("new_patients", "patients_treated", "infusions", "boosters")
    for site, row in activity.iterrows():
        for measure in measures:
            pub.cell(("activity", measure, site), row[measure])
        pub.rest(("activity", "patients_treated", site), [("activity", "new_patients", site)],
                 ("returning patients", site))
    sites = [s for s in activity.index if s != ALL_SITES]
    for measure in measures:
        pub.tables.add_sum(("activity", measure, ALL_SITES),
                           [("activity", measure, s) for s in sites])
    new = ("activity", "new_patients", ALL_SITES)
    for name in _RATE_TABLES:
        _register_rates(pub, report, name)
    for group in ELIGIBILITY.values():     # the cohort is the quarter's new patients
        eligible = ("eligible", "cohort", report.quarter, group)
        if eligible in pub.tables.values:
            pub.rest(new, [eligible], ("not eligible", group))
    for row in report.pchart.itertuples():
        n_key, k_key = _rate_keys("cohort", row.cohort_quarter, PCHART_READING["timepoint"],
                                  PCHART_READING["definition"])
        pub.cell(n_key, row.n)
        pub.cell(k_key, row.responders)
        pub.rest(n_key, [k_key], ("not responders", *k_key[1:]))

    opioids = report.opioids
    users, known = ("opioids", "users"), ("opioids", "known")
    pub.cell(users, opioids.iloc[0]["count"])
    pub.cell(known, opioids.iloc[0]["n"])
    pub.rest(known, [users], ("opioids", "not users"))
    pub.rest(new, [known], ("opioids", "unknown"))
    pub.same(("eligible", "cohort", report.quarter, "opioids"), users) \
        if ("eligible", "cohort", report.quarter, "opioids") in pub.tables.values else None
    for i, definition in ((1, "mme50"), (2, "mme_stop")):
        n_key, k_key = _rate_keys("due", report.quarter, OPIOID_TIMEPOINT, definition)
        pub.cell(n_key, opioids.iloc[i]["n"])
        pub.cell(k_key, opioids.iloc[i]["count"])
    recorded = pub.cell(("visits", "mme recorded"), opioids.iloc[3]["n"])
    pub.same(recorded, pub.cell(("visits", "mme recorded", 2), opioids.iloc[4]["n"]))
    at_50 = pub.cell(("visits", "mme 50"), opioids.iloc[3]["count"])
    at_90 = pub.cell(("visits", "mme 90"), opioids.iloc[4]["count"])
    pub.rest(recorded, [at_50], ("visits", "mme below 50"))
    pub.rest(at_50, [at_90], ("visits", "mme 50 to 90"))
    benzo = report.benzodiazepines
    b_yes, b_n = pub.cell(("visits", "benzo"), benzo.iloc[0]["count"]), \
        pub.cell(("visits", "benzo recorded"), benzo.iloc[0]["n"])
    both, both_n = pub.cell(("visits", "both"), benzo.iloc[1]["count"]), \
        pub.cell(("visits", "both recorded"), benzo.iloc[1]["n"])
    pub.rest(b_n, [b_yes], ("visits", "no benzo"))
    pub.rest(both_n, [both], ("visits", "not both"))
    pub.rest(b_yes, [both], ("visits", "benzo without opioid"))

    sessions = ("safety", "sessions")
    for row in report.safety.itertuples():
        n_key = sessions if row.category == "Adverse events" else ("safety", "recorded", row.event)
        pub.cell(n_key, row.n)
        events = pub.cell(("safety", "events", row.event), row.events)
        pub.rest(n_key, [events], ("safety", "without", row.event))
    if sessions in pub.tables.values:
        pub.rest(sessions, [("activity", "infusions", ALL_SITES), ("activity", "boosters", ALL_SITES)],
                 ("safety", "sessions not in activity"))
    return pub


def _protect(report: QuarterlyReport) -> None:
    """Withhold, as one publication, every count from 1 to 10, every count
    that would let one be worked out, and every rate built on a withheld
    count ("too few to report" in their place)."""
    pub = _publication(report)
    pub.tables.protect()
    hide = lambda key, value: SUPPRESSED if pub.hidden(key) else value

    activity = report.activity.copy()
    for column in ("new_patients", "patients_treated", "infusions", "boosters"):
        activity[column] = pd.Series([hide(("activity", column, s), v) for s, v in
                                      zip(activity["site"], activity[column])], dtype=object)
    report.activity = activity

    for name in _RATE_TABLES:
        frame = getattr(report, name).astype(object)
        rows = []
        for row in frame.to_dict("records"):
            for prefix, quarter in (("", report.quarter), ("prev_", report.previous_quarter),
                                    ("yoy_", report.year_earlier)):
                n_key, k_key = _rate_keys(name, quarter, row["timepoint"], row["definition"])
                withheld = pub.hidden(n_key) or pub.hidden(k_key)
                row[f"{prefix}n"] = hide(n_key, row[f"{prefix}n"])
                if withheld:
                    row[f"{prefix}rate"] = SUPPRESSED
                if not prefix:
                    row["responders"] = hide(k_key, row["responders"])
                    if withheld:
                        row["ci_low"] = row["ci_high"] = SUPPRESSED
            row["pending"] = hide(("pending", name, report.quarter, row["timepoint"],
                                   ELIGIBILITY[row["definition"]]), row["pending"])
            row["change_prev"] = _difference(row["rate"], row["prev_rate"])
            row["change_yoy"] = _difference(row["rate"], row["yoy_rate"])
            rows.append(row)
        setattr(report, name, pd.DataFrame(rows, columns=frame.columns, dtype=object))

    # The centre line (the pooled rate) and the limits come from the shown
    # quarters alone: both are then sums of shown counts.
    pchart = []
    for row in report.pchart.itertuples():
        n_key, k_key = _rate_keys("cohort", row.cohort_quarter, PCHART_READING["timepoint"],
                                  PCHART_READING["definition"])
        withheld = pub.hidden(n_key) or pub.hidden(k_key)
        pchart.append({"cohort_quarter": row.cohort_quarter,
                       "n": SUPPRESSED if withheld else int(row.n),
                       "responders": SUPPRESSED if withheld else int(row.responders)})
    report.pchart, report.pchart_centre = _control_limits(
        pd.DataFrame(pchart, columns=["cohort_quarter", "n", "responders"]))

    opioids = report.opioids.astype(object)
    keys = [(("opioids", "users"), ("opioids", "known")),
            (_rate_keys("due", report.quarter, OPIOID_TIMEPOINT, "mme50")[1],
             _rate_keys("due", report.quarter, OPIOID_TIMEPOINT, "mme50")[0]),
            (_rate_keys("due", report.quarter, OPIOID_TIMEPOINT, "mme_stop")[1],
             _rate_keys("due", report.quarter, OPIOID_TIMEPOINT, "mme_stop")[0]),
            (("visits", "mme 50"), ("visits", "mme recorded")),
            (("visits", "mme 90"), ("visits", "mme recorded"))]
    report.opioids = _hide_measures(opioids, keys, pub)
    keys = [(("visits", "benzo"), ("visits", "benzo recorded")),
            (("visits", "both"), ("visits", "both recorded"))]
    report.benzodiazepines = _hide_measures(report.benzodiazepines.astype(object), keys, pub)
    safety_keys = [(("safety", "events", r.event),
                    ("safety", "sessions") if r.category == "Adverse events"
                    else ("safety", "recorded", r.event)) for r in report.safety.itertuples()]
    report.safety = _hide_measures(report.safety.astype(object), safety_keys, pub,
                                   count="events", rate="per_100")
    report.disclosure = pub.tables


def _hide_measures(frame: pd.DataFrame, keys, pub: _Publication, count: str = "count",
                   rate: str = "rate") -> pd.DataFrame:
    rows = []
    for row, (k_key, n_key) in zip(frame.to_dict("records"), keys):
        withheld = pub.hidden(k_key) or pub.hidden(n_key)
        row[count] = SUPPRESSED if pub.hidden(k_key) else row[count]
        row["n"] = SUPPRESSED if pub.hidden(n_key) else row["n"]
        if withheld:
            row[rate] = row["ci_low"] = row["ci_high"] = SUPPRESSED
        rows.append(row)
    return pd.DataFrame(rows, columns=frame.columns, dtype=object)


# --------------------------------------------------------------------------
# layout of each table


def _specs(report: QuarterlyReport) -> list[TableSpec]:
    prev, year = report.previous_quarter, report.year_earlier
    comparison = (
        Column("pending", "Not yet due", "n"),
        Column("prev_n", f"n {prev}", "n"),
        Column("prev_rate", f"Rate {prev}", "rate", n="prev_n"),
        Column("change_prev", f"Change vs {prev}", "change"),
        Column("yoy_n", f"n {year}", "n"),
        Column("yoy_rate", f"Rate {year}", "rate", n="yoy_n"),
        Column("change_yoy", f"Change vs {year}", "change"),
    )
    rates = (
        Column("timepoint", "Timepoint", "timepoint"),
        Column("definition", "Responder definition", "definition"),
        Column("n", "n (ITT)", "n"),
        Column("responders", "Responders", "count"),
        Column("rate", "Rate (95% CI)", "rate", n="n", ci=("ci_low", "ci_high")),
        Column("ci_low", "CI low", "ci"),
        Column("ci_high", "CI high", "ci"),
        *comparison,
    )
    measure = (
        Column("measure", "Measure"),
        Column("basis", "Among"),
        Column("count", "Count", "count"),
        Column("n", "n", "n"),
        Column("rate", "Share (95% CI)", "rate", n="n", ci=("ci_low", "ci_high")),
        Column("ci_low", "CI low", "ci"),
        Column("ci_high", "CI high", "ci"),
    )
    reading = (f"{definitions.DEFINITION_LABELS[PCHART_READING['definition']]} at "
               f"{definitions.TIMEPOINT_LABELS[PCHART_READING['timepoint']]}")
    return [
        TableSpec("activity", "Activity by site",
                  f"New patients: first infusion or booster in {report.quarter}. Patients "
                  f"treated, infusion visits and boosters (together: treatment sessions): "
                  f"visits dated in the quarter. Site: the patient's site.",
                  (Column("site", "Site"),
                   Column("new_patients", "New patients", "n"),
                   Column("patients_treated", "Patients treated", "n"),
                   Column("infusions", "Infusion visits", "n"),
                   Column("boosters", "Boosters", "n"))),
        TableSpec("due", f"Results that came due in {report.quarter}",
                  "Patients whose index date + target day (28, 90, 180, 365) falls in the "
                  "quarter, ITT: a due patient without the follow-up counts as a "
                  "non-responder. 'Not yet due': window still open at the data cutoff (an "
                  "early follow-up is provisional and not counted). Comparisons: the same "
                  f"reading in {prev} and in {year}; "
                  "changes in percentage points.",
                  rates),
        TableSpec("cohort", f"Responder rates of the {report.quarter} cohort",
                  f"Patients whose first infusion or booster was in {report.quarter} "
                  f"(compared with the {prev} and {year} cohorts), ITT. A recent cohort is "
                  "mostly not yet due at the later timepoints.",
                  rates),
        TableSpec("pchart", "Responder rate by cohort quarter (p-chart)",
                  f"{reading}, ITT, cohorts up to {report.quarter} with results due. Centre: "
                  "the rate of all these cohorts together. Limits: how far from it chance "
                  "alone would put a cohort of that size (they narrow as cohorts grow); a "
                  "cohort outside them differs by more than chance would give. (A p-chart: "
                  f"limits at {PCHART_SIGMA:g} standard errors.)"
                  + (" Quarters whose counts are withheld are left out of the centre and "
                     "limits." if report.external else ""),
                  (Column("cohort_quarter", "Cohort quarter"),
                   Column("n", "n (ITT)", "n"),
                   Column("responders", "Responders", "count"),
                   Column("rate", "Rate", "rate", n="n"),
                   Column("centre", "Centre", "rate"),
                   Column("lower", "Lower limit", "rate", n="n"),
                   Column("upper", "Upper limit", "rate", n="n"),
                   Column("signal", "Signal"))),
        TableSpec("opioids", "Opioids",
                  f"Baseline: last daily MME in the 90 days up to the index date. Dose cut and "
                  f"off opioids: results due at {definitions.TIMEPOINT_LABELS[OPIOID_TIMEPOINT]} "
                  "in the quarter (as in the table of results due). Visit shares: visits dated "
                  "in the quarter.",
                  measure),
        TableSpec("benzodiazepines", "Benzodiazepines",
                  "Visits dated in the quarter that record whether a benzodiazepine is taken "
                  "(session export, else the medication export).",
                  measure),
        TableSpec("safety", "Safety per 100 treatment sessions",
                  f"The Safety page's definitions, for the treatment sessions (infusion visits "
                  f"and boosters) dated in {report.quarter}. Adverse events: sessions with the "
                  "event per 100 sessions; a session listing several events (\"nausea; "
                  "headache\") counts once for each, so the types can add up to more than 'Any "
                  "adverse event'. Vital signs: sessions with a reading beyond the threshold "
                  "per 100 sessions that recorded that vital sign. 95% Wilson interval of the "
                  "per-session proportion.",
                  (Column("category", "Category"),
                   Column("event", "Event"),
                   Column("events", "Sessions with the event", "count"),
                   Column("n", "Sessions counted", "n"),
                   Column("per_100", "Per 100 sessions (95% CI)", "per100", n="n",
                          ci=("ci_low", "ci_high")),
                   Column("ci_low", "CI low", "ci100"),
                   Column("ci_high", "CI high", "ci100"))),
    ]


# --------------------------------------------------------------------------
# numbers for people


def _withheld_or_missing(value) -> bool:
    """No value: none, NaN, or withheld ("too few to report")."""
    return (isinstance(value, str) and value == SUPPRESSED_TEXT) or formatting.missing(value)


def _count_text(value) -> str:
    return SUPPRESSED_TEXT if _withheld_or_missing(value) else formatting.count(value)


def _change_text(value) -> str:
    # round first, so that a change of 0.4 points reads "±0 pp", not "+0 pp"
    return "–" if _withheld_or_missing(value) else formatting.signed(round(100 * float(value)), 0, "pp")


#: On a screen a table keeps to what fits beside the sidebar: a rates table
#: shows its rate and the two changes; every column is in the downloads.
_KEY_COLUMNS = {"cohort": ("timepoint", "definition", "n", "rate", "change_prev", "change_yoy"),
                "due": ("timepoint", "definition", "n", "rate", "change_prev", "change_yoy")}


def key_labels(spec: TableSpec) -> list[str]:
    """The labels of the columns a screen shows first (all, for most tables)."""
    keep = _KEY_COLUMNS.get(spec.key)
    return [c.label for c in spec.columns if c.kind not in ("ci", "ci100")
            and (keep is None or c.name in keep)]


def numeric_labels(spec: TableSpec) -> list[str]:
    """Labels of the displayed columns that hold numbers (to align right)."""
    return [c.label for c in spec.columns if c.kind in _NUMERIC_KINDS]


def display_frame(spec: TableSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The table as text for people: labels, "64% (95% CI 60–68%)", "1,234",
    "too few to report" for suppressed groups, "–" for no data."""
    columns = [c for c in spec.columns if c.kind not in ("ci", "ci100")]
    out = {}
    for c in columns:
        values = []
        for _, row in frame.iterrows():
            values.append(_cell_text(c, row))
        out[c.label] = values
    return pd.DataFrame(out, columns=[c.label for c in columns])


def _cell_text(c: Column, row: pd.Series) -> str:
    value = row.get(c.name)
    if isinstance(value, str) and value == SUPPRESSED_TEXT:
        return SUPPRESSED_TEXT
    if c.kind == "timepoint":
        return definitions.TIMEPOINT_LABELS.get(value, str(value))
    if c.kind == "definition":
        return f"{definitions.DEFINITION_LABELS.get(value, value)} ({value})"
    if c.kind == "n":
        return _count_text(value)
    if c.kind == "count":
        return "" if _withheld_or_missing(value) else formatting.count(value)
    if c.kind in ("rate", "per100"):
        if c.n and _withheld_or_missing(row.get(c.n)):
            return SUPPRESSED_TEXT
        if _withheld_or_missing(value):
            return "–"
        if c.kind == "per100":
            text = formatting.number(float(value), 1)
            if c.ci and not _withheld_or_missing(row.get(c.ci[0])):
                text += (f" ({formatting.number(float(row[c.ci[0]]), 1)}–"
                         f"{formatting.number(float(row[c.ci[1]]), 1)})")
            return text
        if c.ci:
            return formatting.rate_with_ci(float(value), _float(row.get(c.ci[0])),
                                           _float(row.get(c.ci[1])))
        return formatting.percent(float(value))
    if c.kind == "change":
        return _change_text(value)
    return "" if _withheld_or_missing(value) else str(value)


def _float(value):
    return None if _withheld_or_missing(value) else float(value)


def _iso(day: dt.date | None) -> str:
    return "–" if day is None else day.isoformat()


# --------------------------------------------------------------------------
# charts: matplotlib (HTML as inline SVG, PDF as PNG) and Plotly (the page)

SERIES = {"new_patients": ("New patients", PRIMARY), "infusions": ("Infusion visits", ACCENT),
          "boosters": ("Boosters", GOOD)}


def chart_titles(report: QuarterlyReport) -> dict[str, str]:
    return {
        "activity": f"Activity by site, {report.quarter}",
        "pchart": "Responders (≥30% less pain at 3 months, ITT) by cohort quarter",
        "safety": f"Adverse events {words.PER_100_SESSIONS}, {report.quarter}",
    }


def _site_rows(report: QuarterlyReport) -> pd.DataFrame:
    return report.activity[report.activity["site"] != ALL_SITES]


def _pchart_points(report: QuarterlyReport) -> pd.DataFrame:
    frame = report.pchart
    return frame[frame["rate"].map(lambda v: not _withheld_or_missing(v))]


def _event_rows(report: QuarterlyReport) -> pd.DataFrame:
    frame = report.safety
    return frame[frame["per_100"].map(lambda v: not _withheld_or_missing(v))]


def matplotlib_charts(report: QuarterlyReport) -> dict[str, object]:
    """Static charts (matplotlib ``Figure`` objects, no pyplot state)."""
    from matplotlib.figure import Figure

    titles = chart_titles(report)
    charts = {}

    sites = _site_rows(report)
    fig = Figure(figsize=(8, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    width = 0.26
    positions = list(range(len(sites)))
    for i, (column, (label, colour)) in enumerate(SERIES.items()):
        values = [0 if _withheld_or_missing(v) else int(v) for v in sites[column]]
        bars = ax.bar([p + (i - 1) * width for p in positions], values, width, label=label,
                      color=colour)
        for bar, raw in zip(bars, sites[column]):
            ax.annotate("n<11" if _withheld_or_missing(raw) else formatting.count(raw),
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7, color="#333")
    ax.set_xticks(positions, list(sites["site"]))
    ax.set_ylabel("Count")
    ax.set_title(titles["activity"], loc="left", fontsize=11)
    ax.legend(frameon=False, fontsize=8, ncols=3, loc="upper center",
              bbox_to_anchor=(0.5, -0.14))
    ax.margins(y=0.15)
    _tidy(ax)
    charts["activity"] = fig

    points = _pchart_points(report)
    fig = Figure(figsize=(8, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if len(points):
        x = list(range(len(points)))
        rates = [100 * float(v) for v in points["rate"]]
        ax.step(x, [100 * float(v) for v in points["upper"]], where="mid", color=NEUTRAL,
                linewidth=1, linestyle="--", label="3-sigma limits")
        ax.step(x, [100 * float(v) for v in points["lower"]], where="mid", color=NEUTRAL,
                linewidth=1, linestyle="--")
        if report.pchart_centre is not None:
            ax.axhline(100 * report.pchart_centre, color=PRIMARY, linewidth=1,
                       label=f"centre {formatting.percent(report.pchart_centre)}")
        ax.plot(x, rates, color=PRIMARY, linewidth=1, alpha=0.5)
        colours = [BAD if o else PRIMARY for o in points["outside"]]
        ax.scatter(x, rates, c=colours, zorder=3, s=28, label="cohort quarter")
        ax.set_xticks(x, list(points["cohort_quarter"]), fontsize=8)
        ax.set_ylim(0, 100)
        ax.legend(frameon=False, fontsize=8, ncols=3, loc="upper center",
                  bbox_to_anchor=(0.5, -0.14))
    else:
        ax.text(0.5, 0.5, "No cohort has results due at 3 months", ha="center",
                transform=ax.transAxes)
    ax.set_ylabel("Responders (%)")
    ax.set_title(titles["pchart"], loc="left", fontsize=11)
    _tidy(ax)
    charts["pchart"] = fig

    events = _event_rows(report)
    events = events[events["category"] == "Adverse events"].iloc[::-1]
    fig = Figure(figsize=(8, 0.9 + 0.32 * max(len(events), 1)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    if len(events):
        values = [float(v) for v in events["per_100"]]
        errors = [[v - float(lo) for v, lo in zip(values, events["ci_low"])],
                  [float(hi) - v for v, hi in zip(values, events["ci_high"])]]
        ax.barh(list(events["event"]), values, xerr=errors, color=ACCENT, capsize=3,
                error_kw={"linewidth": 0.8})
        ax.set_xlabel(f"{words.PER_100_SESSIONS} (95% CI)")
    else:
        ax.text(0.5, 0.5, SUPPRESSED_TEXT if report.external else "No treatment sessions",
                ha="center", transform=ax.transAxes)
    ax.set_title(titles["safety"], loc="left", fontsize=11)
    _tidy(ax)
    charts["safety"] = fig
    return charts


def _tidy(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#e5e8ec", linewidth=0.6)
    ax.set_axisbelow(True)


def _svg(fig) -> str:
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "quarterly-report", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    # scale to the page: drop the fixed size, keep the viewBox
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
                  r'<svg\1 style="width:100%;height:auto;max-width:900px"', text, count=1)


def _png(fig, dpi: int = 150) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def plotly_charts(report: QuarterlyReport) -> dict[str, object]:
    """The same charts as Plotly figures (the page styles them with ui.theme)."""
    import plotly.graph_objects as go

    titles = chart_titles(report)
    charts = {}
    sites = _site_rows(report)
    fig = go.Figure()
    for column, (label, colour) in SERIES.items():
        fig.add_bar(x=list(sites["site"]), y=[None if _withheld_or_missing(v) else int(v) for v in sites[column]],
                    name=label, marker_color=colour,
                    text=[("n<11" if _withheld_or_missing(v) else formatting.count(v)) for v in sites[column]],
                    textposition="outside")
    fig.update_layout(barmode="group", yaxis_title="Count", title=titles["activity"],
                      margin=dict(t=90))
    charts["activity"] = fig

    points = _pchart_points(report)
    fig = go.Figure()
    quarters = list(points["cohort_quarter"])
    pct = lambda s: [None if _withheld_or_missing(v) else 100 * float(v) for v in s]
    fig.add_scatter(x=quarters, y=pct(points["upper"]), mode="lines", name="upper limit (3σ)",
                    line=dict(color=NEUTRAL, dash="dash", shape="hvh"))
    fig.add_scatter(x=quarters, y=pct(points["lower"]), mode="lines", name="lower limit (3σ)",
                    line=dict(color=NEUTRAL, dash="dot", shape="hvh"))
    if report.pchart_centre is not None:
        fig.add_scatter(x=quarters, y=[100 * report.pchart_centre] * len(quarters),
                        mode="lines", name=f"centre {formatting.percent(report.pchart_centre)}",
                        line=dict(color=PRIMARY))
    fig.add_scatter(x=quarters, y=pct(points["rate"]), mode="lines+markers", name="responders",
                    line=dict(color=PRIMARY, width=1),
                    marker=dict(size=9, color=[BAD if o else PRIMARY for o in points["outside"]]),
                    customdata=[[formatting.count(n), s or "within limits"]
                                for n, s in zip(points["n"], points["signal"])],
                    hovertemplate="%{x}: %{y:.0f}% of %{customdata[0]}<br>%{customdata[1]}"
                                  "<extra></extra>")
    fig.update_layout(yaxis=dict(title="Responders (%)", range=[0, 100]),
                      xaxis=dict(type="category", title="Cohort quarter (first infusion)"),
                      title=titles["pchart"], margin=dict(t=90))
    charts["pchart"] = fig

    events = _event_rows(report)
    events = events[events["category"] == "Adverse events"].iloc[::-1]
    fig = go.Figure()
    values = [float(v) for v in events["per_100"]]
    fig.add_bar(y=list(events["event"]), x=values, orientation="h", marker_color=ACCENT,
                error_x=dict(type="data", symmetric=False,
                             array=[float(h) - v for v, h in zip(values, events["ci_high"])],
                             arrayminus=[v - float(lo) for v, lo in zip(values, events["ci_low"])]),
                hovertemplate=f"%{{y}}: %{{x:.1f}} {words.PER_100_SESSIONS}<extra></extra>")
    fig.update_layout(xaxis_title=f"{words.PER_100_SESSIONS} (95% CI)", title=titles["safety"],
                      showlegend=False)
    charts["safety"] = fig
    return charts


# --------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#222;margin:2rem auto;
max-width:1240px;padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:2px solid #1f5f8b;padding-bottom:.2rem}
.sub{color:#555;margin-top:0}.note{color:#555;font-size:.85rem;max-width:900px}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.6rem;font-size:.8rem;
background:#e8f0f6;color:#1f5f8b;margin-left:.4rem;vertical-align:middle}
.badge.external{background:#fbeee2;color:#a04000}
table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0 1rem}
th,td{border-bottom:1px solid #dde1e6;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f3f5f8;font-weight:600}td.num,th.num{text-align:right}td.num{white-space:nowrap}
td.sup{color:#a04000;font-style:italic;white-space:normal}
.scroll{overflow-x:auto}td.wide{min-width:11rem}
ul.highlights{background:#f7f9fb;border-left:4px solid #1f5f8b;padding:.6rem 1rem .6rem 2rem}
figure{margin:.5rem 0 1rem}table.prov td:first-child{font-weight:600;width:28%}
td.mono{font-family:"DejaVu Sans Mono",monospace;font-size:.75rem;word-break:break-all}
@media print{body{margin:0}h2{break-after:avoid}table{break-inside:auto}}
"""

def render_html(report: QuarterlyReport) -> str:
    """The report as one self-contained HTML page (no scripts, no network)."""
    e = html.escape
    charts = {k: _svg(fig) for k, fig in matplotlib_charts(report).items()}
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(report.title)}</title><style>{_CSS}"
        f"{synthetic_mark.HTML_STYLE if report.synthetic else ''}</style></head><body>",
        synthetic_mark.html_banner() if report.synthetic else "",
        f"<h1>{e(report.title)}<span class=\"badge{' external' if report.external else ''}\">"
        f"{e(report.audience.value)}</span></h1>",
        f"<p class=\"sub\">{e(report.period_text)} · data cutoff "
        f"{e(formatting.long_date(report.cutoff))} · {e(report.filters.describe())} · "
        f"fingerprint {e(report.fingerprint[:12])}</p>",
        "<ul class=\"highlights\">" + "".join(f"<li>{e(h)}</li>" for h in report.highlights())
        + "</ul>",
    ]
    after = {"activity": "activity", "pchart": "pchart", "safety": "safety"}
    for spec, frame in report.tables():
        parts.append(f"<section id=\"{spec.key}\"><h2>{e(spec.title)}</h2>")
        parts.append(f"<p class=\"note\">{e(spec.note)}</p>")
        if spec.key in after:
            parts.append(f"<figure>{charts[after[spec.key]]}</figure>")
        parts.append(_html_table(spec, frame))
        parts.append("</section>")
    parts.append("<section id=\"provenance\"><h2>Provenance</h2><table class=\"prov\">")
    for item, value in report.provenance():
        cls = " class=\"mono\"" if item.startswith("Data fingerprint") else ""
        parts.append(f"<tr><td>{e(item)}</td><td{cls}>{e(value)}</td></tr>")
    parts.append("</table></section></body></html>")
    return "\n".join(parts)


def _html_table(spec: TableSpec, frame: pd.DataFrame) -> str:
    e = html.escape
    shown = display_frame(spec, frame)
    kinds = [c.kind for c in spec.columns if c.kind not in ("ci", "ci100")]
    head = "".join(("<th class=\"num\">" if kind in _NUMERIC_KINDS else "<th>")
                   + f"{e(label)}</th>" for kind, label in zip(kinds, shown.columns))
    rows = []
    for values in shown.itertuples(index=False):
        cells = []
        for kind, value in zip(kinds, values):
            classes = []
            if kind in _NUMERIC_KINDS:
                classes.append("num")
            elif kind in ("definition", "text") and len(str(value)) > 24:
                classes.append("wide")
            if value == SUPPRESSED_TEXT:
                classes.append("sup")
            cls = f" class=\"{' '.join(classes)}\"" if classes else ""
            cells.append(f"<td{cls}>{e(str(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        rows.append(f"<tr><td colspan=\"{len(kinds)}\">No rows.</td></tr>")
    return (f"<div class=\"scroll\"><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def write_html(report: QuarterlyReport, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(render_html(report), encoding="utf-8")
    return path


# --------------------------------------------------------------------------
# XLSX

_SHEET_NAMES = {"activity": "Activity by site", "due": "Results due", "cohort": "Cohort",
                "pchart": "p-chart", "opioids": "Opioids", "benzodiazepines": "Benzodiazepines",
                "safety": "Safety"}


def render_xlsx(report: QuarterlyReport) -> bytes:
    """One sheet per table and a Provenance sheet; text cannot run as a formula."""
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False, "strings_to_numbers": False})
    book.set_properties({"title": report.title, "comments": f"fingerprint {report.fingerprint}"})
    formats = {
        "title": book.add_format({"bold": True, "font_size": 14}),
        "note": book.add_format({"italic": True, "font_color": "#555555", "text_wrap": True,
                                 "valign": "top"}),
        "header": book.add_format({"bold": True, "bg_color": "#1F5F8B", "font_color": "#FFFFFF",
                                   "text_wrap": True, "valign": "top", "border": 1}),
        "text": book.add_format({"valign": "top"}),
        "n": book.add_format({"num_format": "#,##0"}),
        "count": book.add_format({"num_format": "#,##0"}),
        "rate": book.add_format({"num_format": "0.0%"}),
        "ci": book.add_format({"num_format": "0.0%"}),
        "change": book.add_format({"num_format": '+0.0" pp";-0.0" pp";0.0" pp"'}),
        "per100": book.add_format({"num_format": "0.00"}),
        "ci100": book.add_format({"num_format": "0.00"}),
        "suppressed": book.add_format({"italic": True, "font_color": "#A04000"}),
        "bold": book.add_format({"bold": True, "valign": "top"}),
        "wrap": book.add_format({"text_wrap": True, "valign": "top"}),
    }
    safe = formatting.neutralise_formula
    mark = synthetic_mark.xlsx_format(book) if report.synthetic else None
    for spec, frame in report.tables():
        sheet = book.add_worksheet(_SHEET_NAMES[spec.key])
        sheet.write_string(0, 0, safe(spec.title), formats["title"])
        sheet.merge_range(1, 0, 1, max(len(spec.columns) - 1, 1), safe(spec.note), formats["note"])
        sheet.set_row(1, 45)
        if mark:   # the empty row between the note and the table
            synthetic_mark.xlsx_mark(sheet, 2, mark, len(spec.columns) - 1)
        header_row = 3
        table = _xlsx_frame(spec, frame)
        widths = []
        for j, (column, label) in enumerate(zip(spec.columns, table.columns)):
            sheet.write_string(header_row, j, label, formats["header"])
            widths.append(min(max(len(label) * 0.9, 8), 40))
        for i, row in enumerate(table.itertuples(index=False), start=header_row + 1):
            for j, (column, value) in enumerate(zip(spec.columns, row)):
                if isinstance(value, str) and value == SUPPRESSED_TEXT:
                    sheet.write_string(i, j, SUPPRESSED_TEXT, formats["suppressed"])
                    widths[j] = max(widths[j], len(SUPPRESSED_TEXT))
                elif _withheld_or_missing(value):
                    sheet.write_blank(i, j, None)
                elif isinstance(value, str):
                    sheet.write_string(i, j, value, formats["text"])
                    widths[j] = min(max(widths[j], len(value) + 1), 60)
                elif isinstance(value, (bool,)):
                    sheet.write_boolean(i, j, value)
                else:
                    fmt = formats.get(column.kind, formats["text"])
                    sheet.write_number(i, j, float(value), fmt)
                    widths[j] = max(widths[j], 9)
        for j, width in enumerate(widths):
            sheet.set_column(j, j, width)
        sheet.freeze_panes(header_row + 1, 0)
        if len(table):
            sheet.autofilter(header_row, 0, header_row + len(table), len(spec.columns) - 1)
    prov = formatting.safe_for_spreadsheet(report.provenance_frame())
    sheet = book.add_worksheet("Provenance")
    sheet.write_string(0, 0, safe(report.title), formats["title"])
    if mark:
        synthetic_mark.xlsx_mark(sheet, 1, mark, 1)
    sheet.write_string(2, 0, "Item", formats["header"])
    sheet.write_string(2, 1, "Value", formats["header"])
    for i, (item, value) in enumerate(prov.itertuples(index=False), start=3):
        sheet.write_string(i, 0, item, formats["bold"])
        sheet.write_string(i, 1, value, formats["wrap"])
    sheet.set_column(0, 0, 42)
    sheet.set_column(1, 1, 110)
    book.close()
    return buffer.getvalue()


def _xlsx_frame(spec: TableSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The raw values of a table with labelled columns, text made safe."""
    out = pd.DataFrame({c.label: frame[c.name].astype(object) if c.name in frame else None
                        for c in spec.columns})
    for c in spec.columns:
        if c.kind == "timepoint":
            out[c.label] = out[c.label].map(lambda v: definitions.TIMEPOINT_LABELS.get(v, v))
        elif c.kind == "definition":
            out[c.label] = out[c.label].map(
                lambda v: f"{definitions.DEFINITION_LABELS.get(v, v)} ({v})")
        elif c.kind == "change":
            out[c.label] = out[c.label].map(lambda v: None if _withheld_or_missing(v) else 100 * float(v))
    return formatting.safe_for_spreadsheet(out)


def write_xlsx(report: QuarterlyReport, path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(render_xlsx(report))
    return path


# --------------------------------------------------------------------------
# PDF


def render_pdf(report: QuarterlyReport) -> bytes:
    """A landscape A4 PDF: highlights, tables, charts (PNG) and provenance."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    charts = {k: _png(fig) for k, fig in matplotlib_charts(report).items()}
    generated = dt.datetime.strptime(report.generated_at, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=dt.UTC)
    footer_text = (f"{report.title} · {report.audience.value} · data cutoff {_iso(report.cutoff)} · "
                   f"fingerprint {report.fingerprint[:12]}")

    class _PDF(FPDF):
        def header(self):
            if report.synthetic:
                synthetic_mark.pdf_header(self, "DejaVu")

        def footer(self):
            self.set_y(-12)
            self.set_font("DejaVu", size=7)
            self.set_text_color(120)
            self.cell(0, 6, footer_text, align="L")
            self.cell(0, 6, f"page {self.page_no()}/{{nb}}", align="R")
            self.set_text_color(0)

    pdf = _PDF(orientation="landscape", format="A4")
    pdf.set_creation_date(generated)
    pdf.set_title(report.title)
    pdf.set_creator(f"analysis {report.software_version}")
    fonts = _font_dir()
    pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.add_font("DejaVu", "I", str(fonts / "DejaVuSans-Oblique.ttf"))
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_margins(12, 12, 12)
    pdf.add_page()

    pdf.set_font("DejaVu", "B", 18)
    pdf.cell(0, 10, report.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=10)
    pdf.set_text_color(80)
    pdf.multi_cell(0, 5, f"{report.period_text} · audience: {report.audience.value} · data cutoff "
                         f"{formatting.long_date(report.cutoff)} · {report.filters.describe()}",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0)
    pdf.ln(3)
    pdf.set_font("DejaVu", size=10)
    for line in report.highlights():
        pdf.multi_cell(0, 5.5, f"•  {line}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    heading = FontFace(emphasis="BOLD", color=255, fill_color=(31, 95, 139))
    width = pdf.epw
    for spec, frame in report.tables():
        shown = display_frame(spec, frame)
        needed = 22 + 5 * min(len(shown) + 1, 6)
        if pdf.will_page_break(needed):
            pdf.add_page()
        pdf.set_font("DejaVu", "B", 13)
        pdf.cell(0, 8, spec.title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "I", 8)
        pdf.set_text_color(80)
        pdf.multi_cell(0, 4, spec.note, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0)
        pdf.ln(1)
        if spec.key in charts:
            image_height = 62 if spec.key != "safety" else min(62, 20 + 5 * len(frame))
            if pdf.will_page_break(image_height + 4):
                pdf.add_page()
            pdf.image(io.BytesIO(charts[spec.key]), h=image_height, keep_aspect_ratio=True)
            pdf.ln(2)
        pdf.set_font("DejaVu", size=7.5 if len(shown.columns) > 8 else 8.5)
        widths = _pdf_widths(pdf, shown, width - 0.5)
        kinds = [c.kind for c in spec.columns if c.kind not in ("ci", "ci100")]
        align = ["RIGHT" if k in _NUMERIC_KINDS else "LEFT" for k in kinds]
        with pdf.table(col_widths=widths, width=sum(widths), align="LEFT",
                       text_align=tuple(align),
                       headings_style=heading, line_height=4.6, padding=1,
                       cell_fill_color=(246, 248, 250), cell_fill_mode="ROWS",
                       borders_layout="HORIZONTAL_LINES") as table:
            table.row(list(shown.columns))
            for values in shown.itertuples(index=False):
                table.row([str(v) for v in values])
        pdf.ln(4)

    pdf.add_page()
    pdf.set_font("DejaVu", "B", 13)
    pdf.cell(0, 8, "Provenance", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=8)
    with pdf.table(col_widths=(30, 70), width=width, text_align=("LEFT", "LEFT"),
                   headings_style=heading, line_height=4.4, padding=1,
                   borders_layout="HORIZONTAL_LINES") as table:
        table.row(["Item", "Value"])
        for item, value in report.provenance():
            table.row([item, value])
    return bytes(pdf.output())


def _pdf_widths(pdf, shown: pd.DataFrame, available: float, padding: float = 2.5
                ) -> tuple[float, ...]:
    """Column widths (mm) in the current font: each column at least as wide as
    its longest word (header included), then as wide as its longest cell as
    far as the page allows; the widest columns wrap."""
    family, size = pdf.font_family, pdf.font_size_pt
    pdf.set_font(family, "B", size)   # headers are bold
    heads = [max(pdf.get_string_width(w) for w in str(label).split()) for label in shown.columns]
    pdf.set_font(family, "", size)
    least, wanted = [], []
    for label, head in zip(shown.columns, heads):
        cells = [str(v) for v in shown[label]]
        words = [w for text in cells for w in text.split()] or [" "]
        least.append(max([head] + [pdf.get_string_width(w) for w in words]) + padding)
        wanted.append(max([head] + [pdf.get_string_width(c) for c in cells]) + padding)
    if sum(wanted) <= available:
        return tuple(wanted)
    if sum(least) >= available:
        return tuple(w * available / sum(least) for w in least)
    spare = available - sum(least)
    extra = [w - m for w, m in zip(wanted, least)]
    return tuple(m + spare * e / sum(extra) for m, e in zip(least, extra))


def write_pdf(report: QuarterlyReport, path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(render_pdf(report))
    return path


WRITERS = {"html": write_html, "xlsx": write_xlsx, "pdf": write_pdf}
RENDERERS = {"html": lambda r: render_html(r).encode("utf-8"), "xlsx": render_xlsx,
             "pdf": render_pdf}
MIME_TYPES = {"html": "text/html", "xlsx": "application/vnd.openxmlformats-officedocument."
              "spreadsheetml.sheet", "pdf": "application/pdf"}


def file_name(report: QuarterlyReport, fmt: str) -> str:
    return f"quarterly_report_{report.quarter}_{report.audience.value}.{fmt}"


def write(report: QuarterlyReport, out_dir: str | Path, formats=FORMATS) -> list[Path]:
    """Write the report in each format into ``out_dir``; the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [WRITERS[fmt](report, out / file_name(report, fmt)) for fmt in formats]
