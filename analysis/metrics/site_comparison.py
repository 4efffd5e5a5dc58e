"""Sites and providers compared fairly: a funnel plot (issue 18).

Each site's (or provider's) responder rate is drawn against its volume (the
patients in the rate's denominator) with control limits around the
program's rate: the range a unit of that volume shows 95% and 99.8% of the
time when its true rate is the program's (exact binomial,
:func:`analysis.core.stats.funnel_limits`).  A small site far from the program
rate may be noise; a point outside the 99.8% limits is unlikely to be.  A
patient's site is their first recorded one and their provider the clinician
of their first treatment session (the ``patients`` model).

Audiences (:mod:`analysis.core.audience`): the clinical team and analysts compare
sites or providers under the shared filters; the external audience gets one
fixed table, sites only, over the whole program (no filter), every count
from 1 to 10 withheld with its complements (:mod:`analysis.core.disclosure`), and
no funnel plot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.core import definitions, disclosure, stats
from analysis.metrics import outcomes
from analysis.core.audience import SUPPRESSED, Audience
from analysis.metrics.outcomes import GroupRate, group_rates
from analysis.core.filters import Filters
from analysis.storage.store import Snapshot

DIMENSIONS = {"site": "Site", "provider": "Provider"}
INSIDE = "within the 95% limits"
POSITIONS = ("above the 99.8% limit", "above the 95% limit", INSIDE,
             "below the 95% limit", "below the 99.8% limit")


@dataclass(frozen=True)
class Comparison:
    by: str                     # "site" | "provider"
    timepoint: str
    definition: str
    population: str
    ci_method: str
    audience: Audience
    program: GroupRate          # every patient in view: the funnel's centre line
    # group, n, responders, rate, ci_low, ci_high, too_few, position,
    # suppressed; largest volume first.  Suppressed cells are None.
    groups: pd.DataFrame
    # n (1 .. largest volume), lower_95, upper_95, lower_998, upper_998;
    # None for the external audience (fixed table, no plot)
    funnel: pd.DataFrame | None

    @property
    def label(self) -> str:
        return DIMENSIONS[self.by]

    @property
    def fixed(self) -> bool:
        """The external audience's fixed table: sites over the whole program,
        the sidebar's filters not applied, no funnel."""
        return self.audience.external

    @property
    def total_label(self) -> str:
        return "Whole program" if self.fixed else "All in view"

    def table(self, ci_name: str = "Wilson") -> list[dict]:
        """The rows a page shows, already made safe for the audience: a
        withheld cell reads "too few to report", a group under 11 shown to an
        internal reader is flagged "too few"; the total last."""
        from analysis.core.formatting import count, percent
        from analysis.core.formatting import percent_range

        def shown(value, text):
            return SUPPRESSED if value is None or value != value else text

        rows = []
        for r in self.groups.itertuples():
            hidden = bool(r.suppressed)
            rows.append({
                self.label: r.group,
                "Patients (n)": shown(r.n, count(r.n)),
                "Responders": SUPPRESSED if hidden else count(r.responders),
                "Rate": SUPPRESSED if hidden else percent(r.rate),
                f"95% CI ({ci_name})": SUPPRESSED if hidden else percent_range(r.ci_low,
                                                                                r.ci_high),
                "Against the funnel": SUPPRESSED if hidden else r.position,
                "Note": "too few" if r.too_few and not hidden else "",
            })
        total = self.program
        rows.append({
            self.label: self.total_label,
            "Patients (n)": shown(total.n, count(total.n)),
            "Responders": shown(total.responders, count(total.responders)),
            "Rate": shown(total.n, percent(total.rate)),
            f"95% CI ({ci_name})": percent_range(total.ci_low, total.ci_high),
            "Against the funnel": "",
            "Note": "",
        })
        return rows

    def outside(self, level: str = "95") -> pd.DataFrame:
        """The groups outside the 95% (or 99.8%) limits."""
        marks = [p for p in POSITIONS if p != INSIDE and (level == "95" or "99.8" in p)]
        return self.groups[self.groups["position"].isin(marks)]


def dimensions_for(audience: Audience) -> tuple[str, ...]:
    """What a reader may compare: sites or providers internally; the
    external audience the fixed sites table only."""
    return ("site",) if audience.external else tuple(DIMENSIONS)


def position(rate: float, lower_95: float, upper_95: float, lower_998: float,
             upper_998: float) -> str:
    """Where a rate falls among the limits (a rate on a limit is inside)."""
    if rate > upper_998:
        return POSITIONS[0]
    if rate > upper_95:
        return POSITIONS[1]
    if rate < lower_998:
        return POSITIONS[4]
    if rate < lower_95:
        return POSITIONS[3]
    return INSIDE


def funnel(target: float, largest: int) -> pd.DataFrame:
    """The limit curves for volumes 1 .. ``largest``."""
    n = np.arange(1, max(int(largest), 1) + 1)
    low95, high95 = stats.funnel_limits(target, n, 0.95)
    low998, high998 = stats.funnel_limits(target, n, 0.998)
    return pd.DataFrame({"n": n, "lower_95": low95, "upper_95": high95,
                         "lower_998": low998, "upper_998": high998})


def compare(snap: Snapshot, by: str = "site", timepoint: str = "3m",
            definition: str = "pain30", population: str = "itt",
            filters: Filters = Filters(), ci: str = "wilson",
            audience: Audience = Audience.CLINICAL) -> Comparison:
    """Responder rates by site or provider with their place in the funnel."""
    definitions.check_setting(timepoint, definition, population, ci)
    if by not in DIMENSIONS:
        raise ValueError(f"compare by site or provider, not {by!r}")
    if audience.external:
        if by != "site":
            raise PermissionError("the external audience compares sites only")
        filters = Filters()   # one fixed table: the whole program
    grid = outcomes.responder_grid(snap, filters, ci, group_by=by)
    cell = grid[(grid.timepoint == timepoint) & (grid.definition == definition)
                & (grid.population == population)]
    program = group_rates(cell[cell.group == "All"], ci)[0]
    groups = cell[cell.group != "All"].drop(columns=["timepoint", "definition", "population"])
    groups = groups[groups["n"] > 0].sort_values(["n", "group"], ascending=[False, True])
    groups = groups.reset_index(drop=True)
    curves = None
    if program.rate is not None and len(groups):
        curves = funnel(program.rate, int(groups["n"].max()))
        limits = curves.set_index("n")
        groups["position"] = [position(r.rate, *limits.loc[int(r.n)]) for r in groups.itertuples()]
    else:
        groups["position"] = None
    groups["suppressed"] = False
    if audience.external:
        groups, program = _protect(groups, program)
        curves = None
    return Comparison(by, timepoint, definition, population, ci, audience, program, groups,
                      curves)


def _protect(groups: pd.DataFrame, program: GroupRate) -> tuple[pd.DataFrame, GroupRate]:
    """The external table: no count from 1 to 10 shown or derivable (a
    site's n, its responders, the total minus the shown sites)."""
    tables = disclosure.rate_table({r.group: (int(r.n), int(r.responders))
                                    for r in groups.itertuples()},
                                   (program.n, program.responders))
    out = groups.astype(object).copy()
    for i, r in enumerate(groups.itertuples()):
        hide_n, hide_k = tables.hidden(("n", r.group)), tables.hidden(("k", r.group))
        if hide_n or hide_k:
            out.loc[i, "suppressed"] = True
            for column in ("responders", "rate", "ci_low", "ci_high", "position"):
                out.at[i, column] = None
            if hide_n:
                out.at[i, "n"] = None
            out.at[i, "too_few"] = bool(r.too_few)
    if tables.hidden(("n", "All")) or tables.hidden(("k", "All")):
        withheld = stats.Proportion(None, None, None, None, None,  # type: ignore[arg-type]
                                    program.proportion.method)
        program = GroupRate("All", withheld, True)
    return out, program
