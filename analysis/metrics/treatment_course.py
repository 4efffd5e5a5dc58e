"""Dose and course: response by the induction a patient had (issue 18).

Two views of the same responder rate (the shared definition, timepoint and
population):

* by the number of **induction infusions** completed: treatment sessions on
  days 0-42 after the first (the patient flow's count,
  :data:`analysis.core.definitions.INDUCTION_TEXT`),
  1, 2, ... :data:`MOST_INFUSIONS` or more;
* by **ketamine dose per kg** over those sessions (each session's mg over the
  weight recorded on it, else the last weight before it), in bands
  :data:`DOSE_BANDS`.

:data:`CAVEAT` is shown with them: these are associations, and under ITT
they are biased in a known direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.core import definitions
from analysis.metrics import outcomes
from analysis.core.audience import Audience
from analysis.core.filters import Filters
from analysis.storage.queries import run_query
from analysis.storage.store import Snapshot

MOST_INFUSIONS = 6                      # "6 or more"
DOSE_BANDS = (0.5, 0.75, 1.0)           # mg/kg: <0.5, 0.5-<0.75, 0.75-<1.0, >=1.0
UNKNOWN_DOSE = "dose unknown"
CAVEAT = (
    "These are associations, not a dose-response. Patients who feel no benefit stop early, "
    "so fewer infusions go with worse results whatever the infusions themselves do; and under "
    "ITT a patient without a follow-up counts as a non-responder, which weighs most on those "
    "who stopped early, the patients most often lost to follow-up. Doses per kg differ by "
    "route (oral and intranasal doses are higher for a lower bioavailability): compare dose "
    "bands within one route (the Routes filter).")


@dataclass(frozen=True)
class Course:
    timepoint: str
    definition: str
    population: str
    ci_method: str
    # group, n, responders, rate, ci_low, ci_high, too_few; in order
    by_infusions: pd.DataFrame
    by_dose: pd.DataFrame
    caveat: str = CAVEAT


def infusion_group(count: int) -> str:
    if count >= MOST_INFUSIONS:
        return f"{MOST_INFUSIONS} or more"
    return "1 infusion" if count == 1 else f"{count} infusions"


def dose_band(mg_per_kg) -> str:
    if mg_per_kg is None or pd.isna(mg_per_kg):
        return UNKNOWN_DOSE
    edges = DOSE_BANDS
    if mg_per_kg < edges[0]:
        return f"under {edges[0]:g} mg/kg"
    for low, high in zip(edges, edges[1:]):
        if mg_per_kg < high:
            return f"{low:g} to under {high:g} mg/kg"
    return f"{edges[-1]:g} mg/kg or more"


def _rates(frame: pd.DataFrame, groups: list[str], population: str, ci: str) -> pd.DataFrame:
    chosen = frame[frame[f"in_{population}"]]
    counts = chosen.groupby("group").agg(n=("responder", "size"), responders=("responder", "sum"))
    table = counts.reindex(groups, fill_value=0).reset_index()
    return outcomes.with_rates(table.astype({"n": int, "responders": int}), ci)


def course(snap: Snapshot, timepoint: str = "3m", definition: str = "pain30",
           population: str = "itt", filters: Filters = Filters(), ci: str = "wilson",
           audience: Audience = Audience.CLINICAL) -> Course:
    """Responder rate by induction infusions completed and by dose band."""
    definitions.check_setting(timepoint, definition, population, ci)
    if audience.external:
        raise PermissionError("dose and course is an internal analysis (clinical team and "
                              "analysts)")
    frame = run_query(snap, "course_patients", filters, {
        "timepoint": timepoint, "definition": definition,
        "induction_days": definitions.INDUCTION_DAYS,
        "induction_min": definitions.INDUCTION_MIN_INFUSIONS})
    for column in ("in_itt", "in_completers", "responder"):
        frame[column] = frame[column].astype(bool)
    infusions = frame.assign(group=[infusion_group(int(c)) for c in frame["induction_infusions"]])
    infusion_groups = [infusion_group(c) for c in range(1, MOST_INFUSIONS + 1)]
    dose = frame.assign(group=[dose_band(v) for v in frame["mg_per_kg"]])
    dose_groups = [dose_band(v) for v in (0.0, *DOSE_BANDS)] + [UNKNOWN_DOSE]
    by_dose = _rates(dose, dose_groups, population, ci)
    if not by_dose.loc[by_dose.group == UNKNOWN_DOSE, "n"].sum():
        by_dose = by_dose[by_dose.group != UNKNOWN_DOSE].reset_index(drop=True)
    return Course(timepoint, definition, population, ci,
                  _rates(infusions, infusion_groups, population, ci), by_dose)
