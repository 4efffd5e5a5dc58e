"""One patient's timeline: who they are, their baselines, their outcome at
each timepoint, and every visit (for the clinical team only).

Functions take a :class:`analysis.storage.store.Snapshot` first; results are small
frozen dataclasses and DataFrames (picklable, so the dashboard can cache
them).  Nothing here decides who may see a patient: the page does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from analysis.metrics.outcomes import optional_date, optional_float
from analysis.core.filters import Filters
from analysis.core.definitions import DEFINITIONS
from analysis.storage.queries import run_query
from analysis.storage.store import Snapshot



def _bool(value) -> bool:
    return False if value is None or pd.isna(value) else bool(value)


# --------------------------------------------------------------------------
# the picker


def patients_in_view(snap: Snapshot, filters: Filters = Filters()) -> pd.DataFrame:
    """The patients the shared filters select (treated and, when no index-date
    or route filter rules them out, untreated): patient_id, treated,
    condition, site, index_date, last_visit_date, ordered by patient id."""
    return run_query(snap, "timeline_patients", filters, alias="p")


def search_patients(patient_ids: list[str], text: str | None) -> list[str]:
    """The ids containing ``text`` (case-blind); all of them when it is blank."""
    needle = (text or "").strip().casefold()
    if not needle:
        return list(patient_ids)
    return [p for p in patient_ids if needle in str(p).casefold()]


# --------------------------------------------------------------------------
# one patient


@dataclass(frozen=True)
class TimepointStatus:
    timepoint: str
    label: str
    target_date: dt.date
    window_start: dt.date
    window_end: dt.date
    follow_up_pain: float | None
    follow_up_pain_date: dt.date | None
    follow_up_mme: float | None
    follow_up_mme_date: dt.date | None
    pain_reduction: float | None
    mme_reduction: float | None
    eligible: bool
    due: bool
    complete: bool
    responder: bool
    exclusion: str | None
    status: str              # in words: "responder", "not a responder", "not yet due", …
    # An early follow-up while the window is still open (SPEC §3): shown on
    # this clinical page only, labelled provisional; never in a rate.
    provisional: bool = False
    provisional_responder: bool = False


@dataclass(frozen=True)
class PatientSummary:
    patient_id: str
    treated: bool
    condition: str
    condition_raw: str | None
    site: str
    route: str
    index_date: dt.date | None
    cohort_quarter: str | None
    first_visit_date: dt.date | None
    last_visit_date: dt.date | None
    visits: int
    infusions: int
    boosters: int
    first_booster_date: dt.date | None
    baseline_pain: float | None
    baseline_pain_date: dt.date | None
    baseline_mme: float | None
    baseline_mme_date: dt.date | None
    definition: str
    timepoints: tuple[TimepointStatus, ...]


PROVISIONAL = "provisional"


def status_text(eligible: bool, due: bool, complete: bool, responder: bool,
                exclusion: str | None, provisional_responder: bool = False,
                window_end: dt.date | None = None) -> str:
    """A patient's standing at one timepoint, in words.  A follow-up recorded
    before the window has closed is provisional (a closer visit may still
    come) and says so."""
    if not eligible:
        return f"not counted: {exclusion or 'no baseline'}"
    if not due and complete:
        closes = f"; window closes {window_end.isoformat()}" if window_end else ""
        so_far = "responder" if provisional_responder else "not a responder"
        return f"{PROVISIONAL}: {so_far} so far (not yet due, not counted{closes})"
    if not due:
        return "not yet due"
    if not complete:
        return "no follow-up in the window (ITT: not a responder)"
    return "responder" if responder else "not a responder"


def patient_summary(snap: Snapshot, patient_id: str,
                    definition: str = "pain30") -> PatientSummary | None:
    """The patient's description, baselines and outcome at each timepoint for
    ``definition``; None when there is no such patient."""
    if definition not in DEFINITIONS:
        raise ValueError(f"unknown definition {definition!r}")
    rows = run_query(snap, "timeline_patient", None, {"patient_id": patient_id})
    if rows.empty:
        return None
    r = rows.iloc[0]
    outcomes = run_query(snap, "timeline_outcomes", None, {"patient_id": patient_id,
                                                "definition": definition})
    timepoints = []
    for o in outcomes.itertuples():
        eligible, due, complete, responder = (_bool(o.eligible), _bool(o.due),
                                              _bool(o.complete), _bool(o.responder))
        provisional, provisional_responder = (_bool(o.provisional),
                                              _bool(o.provisional_responder))
        exclusion = None if o.itt_exclusion is None or pd.isna(o.itt_exclusion) \
            else str(o.itt_exclusion)
        window_end = optional_date(o.window_end_date)
        timepoints.append(TimepointStatus(
            o.timepoint, o.label, optional_date(o.target_date), optional_date(o.window_start_date),
            window_end, optional_float(o.follow_up_pain), optional_date(o.follow_up_pain_date),
            optional_float(o.follow_up_mme), optional_date(o.follow_up_mme_date), optional_float(o.pain_reduction),
            optional_float(o.mme_reduction), eligible, due, complete, responder, exclusion,
            status_text(eligible, due, complete, responder, exclusion, provisional_responder,
                        window_end),
            provisional, provisional_responder))
    return PatientSummary(
        str(r.patient_id), _bool(r.treated), str(r.condition),
        None if pd.isna(r.condition_raw) else str(r.condition_raw), str(r.site), str(r.route),
        optional_date(r.index_date), None if pd.isna(r.cohort_quarter) else str(r.cohort_quarter),
        optional_date(r.first_visit_date), optional_date(r.last_visit_date), int(r.visits), int(r.infusions),
        int(r.boosters), optional_date(r.first_booster_date), optional_float(r.baseline_pain),
        optional_date(r.baseline_pain_date), optional_float(r.baseline_mme), optional_date(r.baseline_mme_date),
        definition, tuple(timepoints))


def patient_visits(snap: Snapshot, patient_id: str) -> pd.DataFrame:
    """The patient's visits in date order with ``day`` since the index date
    (None for an untreated patient)."""
    frame = run_query(snap, "timeline_visits", None, {"patient_id": patient_id})
    frame["visit_date"] = pd.to_datetime(frame["visit_date"]).dt.date
    return frame
