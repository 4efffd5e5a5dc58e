"""The report's tables as people read them: the fixed readings and thresholds
the tables follow, each table's columns and caption, the p-chart limits of a
table whose counts may be withheld, and every number as text ("1,234", "64%
(95% CI 60–68%)", "too few to report", "–").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from analysis.core import definitions, formatting, stats
from analysis.core.audience import SUPPRESSED

if TYPE_CHECKING:   # annotations only
    from analysis.reports.quarterly.report import QuarterlyReport

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


NUMERIC_KINDS = {"n", "count", "rate", "per100", "change"}


@dataclass(frozen=True)
class TableSpec:
    key: str
    title: str
    note: str
    columns: tuple[Column, ...]


def difference(a, b):
    return None if withheld_or_missing(a) or withheld_or_missing(b) else float(a) - float(b)


def control_limits(frame: pd.DataFrame) -> tuple[pd.DataFrame, float | None]:
    """Rates, p-chart limits and signals of the rows whose n is present."""
    present = [not withheld_or_missing(n) and not withheld_or_missing(k)
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


# --------------------------------------------------------------------------
# layout of each table


def table_specs(report: QuarterlyReport) -> list[TableSpec]:
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


def withheld_or_missing(value) -> bool:
    """No value: none, NaN, or withheld ("too few to report")."""
    return (isinstance(value, str) and value == SUPPRESSED_TEXT) or formatting.missing(value)


def count_text(value) -> str:
    return SUPPRESSED_TEXT if withheld_or_missing(value) else formatting.count(value)


def change_text(value) -> str:
    # round first, so that a change of 0.4 points reads "±0 pp", not "+0 pp"
    return "–" if withheld_or_missing(value) else formatting.signed(round(100 * float(value)), 0, "pp")


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
    return [c.label for c in spec.columns if c.kind in NUMERIC_KINDS]


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
        return count_text(value)
    if c.kind == "count":
        return "" if withheld_or_missing(value) else formatting.count(value)
    if c.kind in ("rate", "per100"):
        if c.n and withheld_or_missing(row.get(c.n)):
            return SUPPRESSED_TEXT
        if withheld_or_missing(value):
            return "–"
        if c.kind == "per100":
            text = formatting.number(float(value), 1)
            if c.ci and not withheld_or_missing(row.get(c.ci[0])):
                text += (f" ({formatting.number(float(row[c.ci[0]]), 1)}–"
                         f"{formatting.number(float(row[c.ci[1]]), 1)})")
            return text
        if c.ci:
            return formatting.rate_with_ci(float(value), _float(row.get(c.ci[0])),
                                           _float(row.get(c.ci[1])))
        return formatting.percent(float(value))
    if c.kind == "change":
        return change_text(value)
    return "" if withheld_or_missing(value) else str(value)


def _float(value):
    return None if withheld_or_missing(value) else float(value)


def iso_date(day: dt.date | None) -> str:
    return "–" if day is None else day.isoformat()
