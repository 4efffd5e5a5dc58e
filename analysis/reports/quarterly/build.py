"""Building a quarterly report: every table computed from the snapshot's models
(the same ones every page reads), then made safe for its audience.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from analysis.core import definitions, formatting, stats, words
from analysis.metrics import outcomes, safety
from analysis.storage import queries
from analysis.core.audience import SMALL_CELL, Audience, parse as parse_audience
from analysis.core.definitions import DEFINITIONS, TIMEPOINTS
from analysis.core.filters import Filters, previous_quarter, quarter_bounds, quarter_of
from analysis.storage.store import Snapshot
from analysis.reports.quarterly.report import NoDataError, QuarterlyReport, SOFTWARE_VERSION
from analysis.reports.quarterly.small_cells import flag_too_few, protect
from analysis.reports.quarterly.tables import (ALL_SITES, ANY_EVENT, CI_METHOD, CONFIDENCE,
    MME_THRESHOLDS, OPIOID_TIMEPOINT, PCHART_READING, PCHART_SIGMA, SBP_THRESHOLD, SPO2_THRESHOLD,
    control_limits, difference)


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
        protect(report)
    else:
        flag_too_few(report)
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
            "change_prev": difference(current.rate, prev_rate),
            "yoy_n": int(y.n), "yoy_rate": yoy_rate,
            "change_yoy": difference(current.rate, yoy_rate),
        })
    return pd.DataFrame(rows)


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
    return control_limits(frame)


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
