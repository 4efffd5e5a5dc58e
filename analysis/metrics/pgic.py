"""Patient Global Impression of Change as an outcome (issue 18).

PGIC asks how the patient's condition has changed since treatment began, on
seven points.  It runs both ways in the wild: the IMMPACT / CGI-I wording has
1 = very much improved, 2 = much improved, 4 = no change, 7 = very much worse
(Farrar et al. 2001; Dworkin et al. 2008); other forms put "a great deal
better" at 7.  Which one a clinic's export uses is a setting:

* ``OUTCOMES_PGIC_BEST=1`` (the default, IMMPACT wording) or ``=7``, in the
  environment of the dashboard and the command line;
* the demo clinic states its own (:data:`analysis.ingest.demo.clinic.PGIC_BEST`), whatever
  the setting, since its exports were written that way.

A patient *improved* when their follow-up PGIC is "much improved" or "very
much improved" (1-2, or 6-7).  The follow-up PGIC is chosen like pain (the
visit closest to the target day in the timepoint's window, never the index
date: the ``follow_ups`` model), and the populations follow SPEC §3:
``itt`` = treated patients whose window is over at the cutoff (no PGIC counts
as not improved; PGIC needs no baseline, so every treated patient is
eligible), ``completers`` = those of them with a PGIC.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from analysis.core import definitions
from analysis.metrics import outcomes
from analysis.core.audience import Audience
from analysis.metrics.outcomes import GroupRate, group_rates
from analysis.core.filters import Filters
from analysis.storage.queries import run_query
from analysis.storage.store import Snapshot

SETTING = "OUTCOMES_PGIC_BEST"
DEFAULT_BEST = 1
ORIENTATIONS = {
    1: "1 = very much improved, 2 = much improved, 4 = no change, 7 = very much worse",
    7: "7 = very much improved, 6 = much improved, 4 = no change, 1 = very much worse",
}
LABEL = "PGIC much or very much improved"


def improved_answers(best: int) -> tuple[int, int]:
    """The two answers that mean "much" or "very much improved"."""
    if best not in ORIENTATIONS:
        raise ValueError(f"PGIC orientation: the best answer is 1 or 7, not {best!r}")
    return (1, 2) if best == 1 else (6, 7)


def configured_best() -> int:
    """The clinic's PGIC orientation: ``OUTCOMES_PGIC_BEST`` (1 or 7), else 1."""
    value = os.environ.get(SETTING, "").strip()
    if not value:
        return DEFAULT_BEST
    if value not in ("1", "7"):
        raise ValueError(f"{SETTING} must be 1 (1 = very much improved) or 7 "
                         f"(7 = very much improved), not {value!r}")
    return int(value)


def orientation_text(best: int) -> str:
    improved_answers(best)
    return f"PGIC {ORIENTATIONS[best]}"


@dataclass(frozen=True)
class PgicRates:
    timepoint: str
    population: str
    ci_method: str
    best: int
    overall: GroupRate
    by_condition: list[GroupRate]

    @property
    def improved(self) -> tuple[int, int]:
        return improved_answers(self.best)


def pgic_patients(snap: Snapshot, timepoint: str, filters: Filters = Filters(),
                  best: int = DEFAULT_BEST) -> pd.DataFrame:
    """Per treated patient in view at one timepoint: the follow-up PGIC and
    the flags eligible (always), complete, due, in_itt, in_completers, responder, with
    target_date (index + target day).  See ``pgic_patients.sql``."""
    definitions.check_setting(timepoint=timepoint)
    frame = run_query(snap, "pgic_patients", filters,
                      {"improved": list(improved_answers(best))})
    frame = frame[frame["timepoint"] == timepoint].reset_index(drop=True)
    dates = pd.to_datetime(frame["target_date"])
    frame["target_date"] = dates.dt.date.astype(object).where(dates.notna(), None)
    return frame


def pgic_grid(snap: Snapshot, filters: Filters = Filters(), ci: str = "wilson",
              best: int = DEFAULT_BEST) -> pd.DataFrame:
    """Every timepoint x population, over all conditions ("All") and by
    condition: n, responders (improved), rate, ci_low, ci_high, too_few."""
    definitions.check_setting(ci=ci)
    counts = run_query(snap, "pgic_counts", filters, {"improved": list(improved_answers(best))})
    # every condition with a patient in some population (a condition nobody
    # in view has reached a timepoint with is absent, as n = 0 everywhere)
    groups = ["All", *sorted(set(counts["group"]) - {"All"})]
    index = pd.MultiIndex.from_product([definitions.TIMEPOINTS, definitions.POPULATIONS, groups],
                                       names=["timepoint", "population", "group"])
    grid = (counts.set_index(["timepoint", "population", "group"])
            .reindex(index, fill_value=0).reset_index())
    return outcomes.with_rates(grid.astype({"n": int, "responders": int}), ci)


def pgic_rates(snap: Snapshot, timepoint: str = "3m", population: str = "itt",
               filters: Filters = Filters(), ci: str = "wilson", best: int = DEFAULT_BEST,
               audience: Audience = Audience.CLINICAL) -> PgicRates:
    """The share of patients much or very much improved at one timepoint,
    over all conditions in view and by condition.  For the clinical team and
    analysts (groups under 11 flagged ``too_few``); an external reader gets
    no PGIC by condition from here."""
    definitions.check_setting(timepoint=timepoint, population=population, ci=ci)
    if audience.external:
        raise PermissionError("PGIC rates by condition are internal: the external audience "
                              "reads the fixed tables of the quarterly report")
    grid = pgic_grid(snap, filters, ci, best)
    cell = grid[(grid.timepoint == timepoint) & (grid.population == population)]
    rows = group_rates(cell, ci)
    overall = next(r for r in rows if r.group == "All")
    return PgicRates(timepoint, population, ci, best, overall,
                     [r for r in rows if r.group != "All"])
