"""What a quarterly report holds: one quarter's tables for one audience, where
their numbers came from (provenance) and the few sentences that sum it up.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

import analysis
from analysis.core import definitions, formatting, synthetic_mark, words
from analysis.core.audience import SMALL_CELL, Audience
from analysis.core.filters import Filters
from analysis.reports.quarterly.tables import (ALL_SITES, ANY_EVENT, PCHART_READING,
    SUPPRESSED_TEXT, TableSpec, change_text, count_text, iso_date, table_specs, withheld_or_missing)

SOFTWARE_VERSION = getattr(analysis, "__version__", None) or "0.1.0"
AUDIENCES = tuple(a.value for a in Audience)


class NoDataError(ValueError):
    """The quarter has no visits (for the patients in view)."""


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
        return table_specs(self)

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
            ("Data cutoff (latest visit date)", iso_date(self.cutoff)),
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
        if any(withheld_or_missing(total[c]) for c in counts):
            lines = ["New patients: {}; infusion visits: {}; boosters: {}; patients treated: {}."
                     .format(*(count_text(total[c]) for c in counts))]
        else:
            lines = [f"{count_text(total['new_patients'])} new patients started treatment; "
                     f"{words.sessions_text(total['infusions'], total['boosters'])} were given "
                     f"to {count_text(total['patients_treated'])} patients."]
        reading = self.due[(self.due["timepoint"] == PCHART_READING["timepoint"])
                           & (self.due["definition"] == PCHART_READING["definition"])]
        if not reading.empty:
            r = reading.iloc[0]
            label = (f"{definitions.DEFINITION_LABELS[r['definition']]} at "
                     f"{definitions.TIMEPOINT_LABELS[r['timepoint']]}")
            if withheld_or_missing(r["n"]) or withheld_or_missing(r["rate"]) and r["n"]:
                lines.append(f"Results due at 3 months this quarter ({label}): {SUPPRESSED_TEXT}.")
            elif r["n"] == 0:
                lines.append(f"No 3-month results came due this quarter ({label}).")
            else:
                lines.append(
                    f"Of {count_text(r['n'])} patients whose 3-month result came due, "
                    f"{formatting.rate_with_ci(r['rate'], r['ci_low'], r['ci_high'])} had "
                    f"{definitions.DEFINITION_LABELS[r['definition']]} (ITT; change from "
                    f"{self.previous_quarter}: {change_text(r['change_prev'])}).")
        flagged = self.pchart[self.pchart["outside"].fillna(False).astype(bool)]
        if pchart_points(self).empty:
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
            if withheld_or_missing(e["n"]) or withheld_or_missing(e["per_100"]) and e["n"]:
                lines.append(f"Adverse events: {SUPPRESSED_TEXT}.")
            elif e["n"]:
                lines.append(f"Adverse events: {formatting.number(e['per_100'])} "
                             f"{words.PER_100_SESSIONS} (95% CI {formatting.number(e['ci_low'])}–"
                             f"{formatting.number(e['ci_high'])}).")
        if not self.complete:
            lines.append(f"The quarter is not over: data run to "
                         f"{formatting.long_date(self.cutoff)}.")
        return lines


def pchart_points(report: QuarterlyReport) -> pd.DataFrame:
    frame = report.pchart
    return frame[frame["rate"].map(lambda v: not withheld_or_missing(v))]
