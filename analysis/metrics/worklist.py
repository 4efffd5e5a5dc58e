"""The follow-up worklist: who needs a call (issue 18).  Clinical team only.

Three lists, as of the data cutoff (the latest visit in the data; "today" for
the worklist is the day of the last export):

* **open windows**: treated patients whose 3-, 6- or 12-month window (SPEC §3)
  has begun and is not over at the cutoff, with no pain score in it yet: the
  window's last day, the days left (at least 1) and their last visit;
* **missed**: the patients whose window is over (index + window end <=
  cutoff) without a pain score in it.  A patient with a baseline pain above 0
  is counted as a non-responder in the ITT rate (``counted_as_non_responder``);
* **stopped during induction**: treated patients who did not complete
  induction (the patient flow's rule, :data:`analysis.core.definitions.INDUCTION_TEXT`),
  have had no visit of any kind since their last treatment session, and that
  was at least :data:`STOPPED_AFTER_DAYS` days before the cutoff (a patient
  between two infusions of a series that is still running is not listed).

Windows, their state and the follow-up are the patient-outcome model's facts
(``patient_timepoints``: ``window_open``, ``window_closed``,
``has_follow_up_pain``), the ITT rule is ``outcome_rules``'; nothing is
re-derived here.  The lists name patients, so only the clinical audience may
have them (:class:`analysis.core.audience.Audience`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from analysis.core import definitions, formatting
from analysis.metrics import outcomes
from analysis.core.audience import Audience
from analysis.metrics.outcomes import optional_date
from analysis.core.filters import Filters
from analysis.storage.queries import run_query
from analysis.storage.store import Snapshot

TIMEPOINTS = ("3m", "6m", "12m")
STOPPED_AFTER_DAYS = 14   # induction infusions are days apart: two weeks without one is a stop
LISTS = (*TIMEPOINTS, "missed", "stopped_in_induction")

# Column names a clinician reads (tables on the page and in the exports).
WINDOW_COLUMNS = {
    "patient_id": "Patient", "site": "Site", "provider": "Provider", "condition": "Condition",
    "timepoint_label": "Timepoint", "window_start_date": "Window opened",
    "window_end_date": "Window closes", "days_left": "Days left",
    "last_visit_date": "Last visit", "days_since_last_visit": "Days since last visit",
}
MISSED_COLUMNS = {
    "patient_id": "Patient", "site": "Site", "provider": "Provider", "condition": "Condition",
    "timepoint_label": "Timepoint", "window_end_date": "Window closed",
    "last_visit_date": "Last visit", "days_since_last_visit": "Days since last visit",
    "counted_as_non_responder": "Non-responder under ITT",
}
STOPPED_COLUMNS = {
    "patient_id": "Patient", "site": "Site", "provider": "Provider", "condition": "Condition",
    "index_date": "First infusion", "induction_infusions": "Infusions in induction",
    "last_visit_date": "Last visit", "days_since_last_visit": "Days since last visit",
}


class NotForAudience(PermissionError):
    """A result this audience may not have."""


@dataclass(frozen=True)
class Worklist:
    cutoff: dt.date | None
    filters: Filters
    # one row per patient and timepoint: patient_id, site, provider,
    # condition, timepoint, index_date, window_start_date, window_end_date,
    # days_left, last_visit_date, days_since_last_visit; most urgent first
    open_windows: pd.DataFrame
    # the same columns and counted_as_non_responder; most recent window first
    missed: pd.DataFrame
    # patient_id, site, provider, condition, index_date,
    # induction_infusions, last_visit_date, days_since_last_visit; most
    # recent stop first
    stopped_in_induction: pd.DataFrame
    synthetic: bool = False   # made from invented data (the demo): its downloads say so

    def due(self, timepoint: str) -> pd.DataFrame:
        """The open windows of one timepoint."""
        return self.open_windows[self.open_windows["timepoint"] == timepoint]

    def counts(self) -> dict[str, int]:
        counts = {tp: len(self.due(tp)) for tp in TIMEPOINTS}
        counts["missed"] = len(self.missed)
        counts["stopped_in_induction"] = len(self.stopped_in_induction)
        return counts

    def to_dict(self) -> dict:
        """The JSON of ``python -m analysis worklist --json``."""
        def iso(value) -> str | None:
            return value.isoformat() if value is not None else None

        result: dict[str, list] = {}
        for timepoint in TIMEPOINTS:
            result[timepoint] = [
                {"patient_id": r.patient_id, "window_end": iso(r.window_end_date),
                 "days_left": int(r.days_left), "last_visit": iso(r.last_visit_date)}
                for r in self.due(timepoint).itertuples()]
        result["missed"] = [
            {"patient_id": r.patient_id, "timepoint": r.timepoint,
             "window_end": iso(r.window_end_date), "last_visit": iso(r.last_visit_date),
             "days_since_last_visit": int(r.days_since_last_visit),
             "counted_as_non_responder": bool(r.counted_as_non_responder)}
            for r in self.missed.itertuples()]
        result["stopped_in_induction"] = [
            {"patient_id": r.patient_id, "infusions": int(r.induction_infusions),
             "last_visit": iso(r.last_visit_date),
             "days_since_last_visit": int(r.days_since_last_visit)}
            for r in self.stopped_in_induction.itertuples()]
        return result

    def tables(self) -> dict[str, pd.DataFrame]:
        """The three lists with a clinician's column names (the page's
        tables and the export's sheets)."""
        def named(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
            frame = frame.assign(timepoint_label=frame["timepoint"].map(
                definitions.TIMEPOINT_LABELS)) if "timepoint" in frame else frame
            return frame[list(columns)].rename(columns=columns).reset_index(drop=True)

        return {"Follow-up due": named(self.open_windows, WINDOW_COLUMNS),
                "Missed follow-up": named(self.missed, MISSED_COLUMNS),
                "Stopped in induction": named(self.stopped_in_induction, STOPPED_COLUMNS)}

    def csv_bytes(self, table: str) -> bytes:
        """One list as CSV, formula-safe (marked when the data is synthetic)."""
        return formatting.csv_bytes(self.tables()[table], synthetic=self.synthetic)

    def xlsx_bytes(self) -> bytes:
        """The three lists as one workbook (a sheet each), formula-safe
        (each sheet marked when the data is synthetic)."""
        return formatting.xlsx_bytes(self.tables(), synthetic=self.synthetic)


def worklist(snap: Snapshot, filters: Filters = Filters(),
             audience: Audience = Audience.CLINICAL) -> Worklist:
    """The follow-up worklist of the patients in view (the shared filters:
    site, condition, route, cohort).  Refuses any audience but the clinical
    team: it lists patients."""
    if not audience.sees_patients:
        raise NotForAudience(f"the follow-up worklist lists patients: it is for the clinical "
                             f"team only, not the {audience.value} audience")
    windows = run_query(snap, "worklist_windows", filters,
                        {"timepoints": list(TIMEPOINTS)}, alias="pt")
    for column in ("index_date", "window_start_date", "window_end_date", "last_visit_date"):
        windows[column] = [optional_date(v) for v in windows[column]]
    windows = windows.astype({"days_left": int, "days_since_last_visit": int,
                              "counted_as_non_responder": bool})
    order = {tp: i for i, tp in enumerate(TIMEPOINTS)}
    open_windows = windows[windows["status"] == "open"].drop(columns=[
        "status", "counted_as_non_responder"])
    open_windows = open_windows.assign(_order=open_windows["timepoint"].map(order)).sort_values(
        ["days_left", "_order", "patient_id"], kind="stable").drop(columns="_order")
    open_windows = open_windows.reset_index(drop=True)
    missed = windows[windows["status"] == "missed"].drop(columns=["status", "days_left"])
    missed = missed.assign(_order=missed["timepoint"].map(order)).sort_values(
        ["window_end_date", "_order", "patient_id"], ascending=[False, True, True],
        kind="stable").drop(columns="_order").reset_index(drop=True)

    stopped = run_query(snap, "worklist_stopped", filters, {
        "timepoint": TIMEPOINTS[0], "definition": "pain30",
        "induction_days": definitions.INDUCTION_DAYS, "induction_min": definitions.INDUCTION_MIN_INFUSIONS,
        "stopped_after_days": STOPPED_AFTER_DAYS})
    for column in ("index_date", "last_visit_date"):
        stopped[column] = [optional_date(v) for v in stopped[column]]
    stopped = stopped.astype({"induction_infusions": int, "days_since_last_visit": int})
    stopped = stopped.sort_values(["days_since_last_visit", "patient_id"],
                                  kind="stable").reset_index(drop=True)
    return Worklist(outcomes.cutoff(snap), filters, open_windows, missed, stopped,
                    synthetic=snap.synthetic)
