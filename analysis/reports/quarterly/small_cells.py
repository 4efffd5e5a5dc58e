"""Small cells in the quarterly report: internal readers see every count with
groups under 11 flagged; for the external audience every count of the report
is registered in one :class:`analysis.core.disclosure.Tables` with the sums
that tie them, and every count from 1 to 10, every count that would reveal
one and every rate built on them reads "too few to report".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from analysis.core import disclosure
from analysis.core.audience import SMALL_CELL, SUPPRESSED
from analysis.core.definitions import DEFINITIONS, TIMEPOINTS
from analysis.reports.quarterly.tables import (ALL_SITES, OPIOID_TIMEPOINT, PCHART_READING,
    control_limits, difference)

if TYPE_CHECKING:   # annotations only
    from analysis.reports.quarterly.report import QuarterlyReport

#: Definitions that count the same patients (the same baselines needed): one n.
ELIGIBILITY = {"pain30": "pain", "pain50": "pain", "pain2pt": "pain",
               "mme50": "opioids", "mme_stop": "opioids", "claim": "claim"}
#: (wider, narrower): the narrower definition's responders are among the wider's.
NESTED_RESPONDERS = (("pain30", "pain50"), ("mme50", "mme_stop"), ("pain30", "claim"),
                     ("mme50", "claim"))
_RATE_TABLES = ("cohort", "due")
_MEASURE_TABLES = ("opioids", "benzodiazepines")


def flag_too_few(report: QuarterlyReport) -> None:
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


def protect(report: QuarterlyReport) -> None:
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
            row["change_prev"] = difference(row["rate"], row["prev_rate"])
            row["change_yoy"] = difference(row["rate"], row["yoy_rate"])
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
    report.pchart, report.pchart_centre = control_limits(
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
