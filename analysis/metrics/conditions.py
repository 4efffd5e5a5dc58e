"""Responder rates by condition (the Conditions page): each condition's rate
with its interval, median pain change and the Holm-adjusted comparison with
the other conditions, the PGIC result beside it, and what a forest plot
draws (SPEC §3–4)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from analysis.metrics import charts, outcomes, pgic
from analysis.core import definitions, disclosure, stats
from analysis.core.audience import SUPPRESSED, Audience
from analysis.metrics.outcomes import GroupRate
from analysis.core.filters import Filters
from analysis.storage.store import Snapshot


def conditions_in_view(snap: Snapshot, filters: Filters = Filters()) -> list[str]:
    """The conditions of the treated patients in view, in the clinic's order."""
    where, params = filters.sql()
    present = set(snap.query(
        f"SELECT DISTINCT condition FROM patients WHERE treated AND {where}", params)["condition"])
    return [c for c in outcomes.filter_options(snap).conditions if c in present]


def for_condition(filters: Filters, condition: str | None) -> Filters:
    """The shared filters narrowed to one condition (None: unchanged, pooled)."""
    return filters if condition is None else dataclasses.replace(filters, conditions=(condition,))


@dataclass(frozen=True)
class ConditionSummary:
    timepoint: str
    definition: str
    population: str
    ci_method: str
    overall: GroupRate
    pain_change: stats.PairedChange   # all conditions in view (outcomes.median_pain_change)
    audience: Audience
    # the fields of outcomes.ConditionRow and suppressed; ranked by the lower
    # end of the rate's CI (highest first), conditions with n < 11 last; and
    # the PGIC result beside the pain one: pgic_n, pgic_responders,
    # pgic_rate, pgic_ci_low, pgic_ci_high (internal readers only; None for
    # the external audience); and what a page draws: ``drawn`` (the rate's
    # point: 11 or more patients, not suppressed), ``pgic_drawn`` (the PGIC
    # diamond: 11 or more answers), ``note`` ("too few to report" or "")
    table: pd.DataFrame
    pgic: GroupRate | None = None  # PGIC much or very much improved, all conditions in view

    @property
    def external(self) -> bool:
        return self.audience.external

    @property
    def median_change(self) -> float | None:
        return self.pain_change.median

    @property
    def not_drawn(self) -> str:
        """The conditions on the forest plot with no point, and why."""
        left = [c for c, drawn in zip(self.table["condition"], self.table["drawn"]) if not drawn]
        return charts.not_drawn_text(left)


CONDITION_VALUE_COLUMNS = ["responders", "rate", "ci_low", "ci_high", "median_change",
                           "p_value", "p_holm", "change_n", "median_ci_low", "median_ci_high",
                           "wilcoxon_p"]


def condition_summary(snap: Snapshot, timepoint: str = "3m", definition: str = "pain30",
                      population: str = "itt", filters: Filters = Filters(),
                      ci: str = "wilson", audience: Audience = Audience.CLINICAL,
                      pgic_best: int = pgic.DEFAULT_BEST) -> ConditionSummary:
    """Responder rate by condition (outcomes.condition_table) and program-wide,
    with the PGIC result beside it (internal readers).

    ``too_few`` marks n < 11: flagged for internal readers (``note``), with
    no point drawn.  For the external audience the table is protected as one
    (disclosure.rate_table: a condition's n or responders from 1 to 10, and
    their complements): such a condition's n and every value blanked,
    ``suppressed`` True; the PGIC columns (another denominator) are left
    empty.
    """
    definitions.check_setting(timepoint, definition, population, ci)
    external = audience.external
    rates = outcomes.responder_rates(snap, timepoint, definition, population, filters, ci)
    rows = outcomes.condition_table(snap, timepoint, definition, population, filters, ci)
    table = pd.DataFrame([r.to_dict() for r in rows], columns=outcomes.ConditionRow.columns())
    table = table.astype({"n": int, "responders": int, "too_few": bool, "change_n": int}) \
        if len(table) else table
    if external:
        protected = disclosure.rate_table({r.condition: (r.n, r.responders) for r in rows},
                                          (rates.overall.n, rates.overall.responders))
        # a condition without patients in the denominator has nothing to show either
        table["suppressed"] = [r.n == 0 or protected.hidden(("n", r.condition))
                               or protected.hidden(("k", r.condition)) for r in rows]
        for column in CONDITION_VALUE_COLUMNS + ["n"]:
            table[column] = table[column].astype(object).where(~table["suppressed"], None)
    else:
        table["suppressed"] = False
    table = table.reset_index(drop=True)
    overall_pgic = None
    pgic_columns = {"n": "pgic_n", "responders": "pgic_responders", "rate": "pgic_rate",
                    "ci_low": "pgic_ci_low", "ci_high": "pgic_ci_high"}
    if external:
        for column in pgic_columns.values():
            table[column] = None
    else:
        improved = pgic.pgic_rates(snap, timepoint, population, filters, ci, pgic_best)
        overall_pgic = improved.overall
        by_condition = pd.DataFrame(
            [{"condition": g.group, **{c: getattr(g, f) for f, c in pgic_columns.items()}}
             for g in improved.by_condition],
            columns=["condition", *pgic_columns.values()])
        table = table.merge(by_condition, on="condition", how="left")
    table["drawn"] = ~table["suppressed"].astype(bool) & ~table["too_few"].astype(bool) \
        if len(table) else pd.Series(dtype=bool)
    table["pgic_drawn"] = [bool(drawn) and rate is not None and rate == rate and charts.enough(n)
                           for drawn, rate, n in zip(~table["suppressed"].astype(bool),
                                                     table["pgic_rate"], table["pgic_n"])]
    table["note"] = ["" if hidden else (SUPPRESSED if few else "")
                     for hidden, few in zip(table["suppressed"], table["too_few"])]
    change = outcomes.median_pain_change(snap, timepoint, filters)
    return ConditionSummary(timepoint, definition, population, ci, rates.overall, change,
                            audience, table, overall_pgic)
