"""Pain over time (the Pain page): weekly pain since the first infusion,
acute relief by session number, and each patient's change at a timepoint
(the waterfall), each as a page draws it (SPEC §3–4)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.metrics import charts, outcomes
from analysis.core import definitions
from analysis.core.audience import Audience
from analysis.metrics.charts import Chart
from analysis.core.filters import Filters
from analysis.storage.queries import run_query
from analysis.storage.store import Snapshot


LAST_WEEK = 52


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
