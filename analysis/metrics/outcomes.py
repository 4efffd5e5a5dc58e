"""Outcome queries: responder rates, the grid, the claim check (SPEC §3–4).

Everything reads the models of a :class:`analysis.storage.store.Snapshot`, narrowed
by one :class:`analysis.core.filters.Filters` shared by every caller, always through query
parameters.  Results are small named objects.

The claim check and the responder rates of one reading (``python -m
analysis claim --json``, ``responders --json``) read plain rows
(``snap.rows``) and never import pandas; the grids the pages draw are the
same rows (:func:`grid_counts`) as a frame.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from analysis.core import audience, stats
from analysis.core.filters import Filters
from analysis.storage import db
from analysis.core.audience import SMALL_CELL
from analysis.core.definitions import DEFINITIONS, POPULATIONS, TIMEPOINTS, check_setting
from analysis.core.formatting import count, missing
from analysis.storage.store import Snapshot

if TYPE_CHECKING:
    import pandas as pd

# --------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class GroupRate(stats.RateResult):
    """A group's responder rate: n, responders, rate, ci_low and ci_high are
    its ``proportion``'s; ``too_few`` flags n < 11."""
    group: str
    proportion: stats.Proportion
    too_few: bool


def group_rates(grid: pd.DataFrame, ci: str) -> list[GroupRate]:
    """The rows of a rate grid (columns group, n, responders, rate, ci_low,
    ci_high, too_few: :func:`with_rates`) as GroupRates."""
    return [GroupRate(r.group, stats.Proportion(int(r.responders), int(r.n), optional_float(r.rate),
                                                optional_float(r.ci_low),
                                                optional_float(r.ci_high), ci),
                      bool(r.too_few))
            for r in grid.itertuples()]


@dataclass(frozen=True)
class ResponderRates:
    timepoint: str
    definition: str
    population: str
    ci_method: str
    cutoff: dt.date | None
    overall: GroupRate
    by_condition: list[GroupRate]
    excluded: dict[str, int]
    filters: Filters = field(default_factory=Filters)

    def to_dict(self) -> dict:
        def group(g: GroupRate, name: str) -> dict:
            d = g.to_dict()
            d[name] = d.pop("group")
            return d
        overall = group(self.overall, "group")
        overall.pop("group")
        overall.pop("too_few")
        return {
            "timepoint": self.timepoint, "definition": self.definition,
            "population": self.population, "ci_method": self.ci_method,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "overall": overall,
            "by_condition": [group(g, "condition") for g in self.by_condition],
            "excluded": self.excluded,
        }


def optional_float(value) -> float | None:
    """A float, or None for a missing value (pandas turns None into NaN)."""
    return None if missing(value) else float(value)


def optional_date(value) -> dt.date | None:
    """A date, or None for a missing value (NaT)."""
    if missing(value):
        return None
    if type(value) is dt.date:      # what DuckDB gives for a DATE
        return value
    import pandas as pd
    return pd.Timestamp(value).date()


# --------------------------------------------------------------------------
# queries


def cutoff(snap: Snapshot) -> dt.date | None:
    return optional_date(snap.scalar("SELECT cutoff_date FROM data_cutoff"))


# The boolean facts of patient_timepoints that outcome_rules is keyed on.
RULE_FACTS = ("baseline_pain_known", "has_baseline_pain", "baseline_mme_known",
              "baseline_opioid_user", "has_follow_up_pain", "has_follow_up_mme", "window_closed",
              "pain30_met", "pain50_met", "pain2pt_met", "mme50_met", "mme_stop_met")


@dataclass(frozen=True)
class CellCount:
    """One cell of the grid: a reading (timepoint × definition × population)
    in one group (``'All'``: the program-wide row)."""
    timepoint: str
    definition: str
    population: str
    group: str
    n: int
    responders: int

    @property
    def reading(self) -> tuple[str, str, str]:
        return (self.timepoint, self.definition, self.population)


GRID_COLUMNS = ("timepoint", "definition", "population", "group", "n", "responders")


def grid_counts(snap: Snapshot, filters: Filters = Filters(),
                group_by: str = "condition") -> list[CellCount]:
    """n and responders per timepoint × definition × population × group.

    One query, ``sql/queries/outcome_grid.sql``, computes the whole grid;
    ``group`` is ``'All'`` for the program-wide row, and cells with n = 0
    are left out (the file says how it counts).  Plain rows, no pandas:
    every grid (:func:`counts_by_condition` for the pages and reports, the
    claim check, the responder rates) is these counts.
    """
    if group_by not in ("condition", "site", "provider", "route", "cohort_quarter"):
        raise ValueError(f"cannot group by {group_by!r}")
    where, params = filters.sql()
    sql = db.read_sql("queries/outcome_grid.sql")
    for token, text in (("group_by", group_by), ("rule_facts", ", ".join(RULE_FACTS)),
                        ("patient_filter", where)):
        sql = sql.replace("{{ %s }}" % token, text)
    return [CellCount(*row) for row in snap.rows(sql, params)]


def counts_by_condition(snap: Snapshot, filters: Filters = Filters(),
                        group_by: str = "condition") -> pd.DataFrame:
    """:func:`grid_counts` as a frame (columns :data:`GRID_COLUMNS`)."""
    import pandas as pd
    cells = grid_counts(snap, filters, group_by)
    frame = pd.DataFrame([[getattr(c, name) for name in GRID_COLUMNS] for c in cells],
                         columns=list(GRID_COLUMNS))
    return frame.astype({"n": "int64", "responders": "int64"})


def responder_grid(snap: Snapshot, filters: Filters = Filters(), ci: str = "wilson",
                   group_by: str = "condition") -> pd.DataFrame:
    """Every timepoint × definition × population, overall and by group, with CIs.

    ``rate``/``ci_low``/``ci_high`` are NaN where n = 0 (``responder_rates``
    turns them into None)."""
    check_setting(ci=ci)
    counts = counts_by_condition(snap, filters, group_by)
    return with_rates(_complete_grid(counts, _groups(snap, filters, group_by)), ci)


def with_rates(counts: pd.DataFrame, ci: str = "wilson") -> pd.DataFrame:
    """``counts`` (columns n and responders) with rate, ci_low, ci_high (NaN
    where n = 0) and too_few (n < 11) added."""
    counts["rate"], counts["ci_low"], counts["ci_high"] = stats.intervals(
        counts["responders"].to_numpy(), counts["n"].to_numpy(), ci)
    counts["too_few"] = counts["n"] < SMALL_CELL
    return counts


def _groups(snap: Snapshot, filters: Filters, group_by: str) -> list[str]:
    where, params = filters.sql()
    return [row[0] for row in snap.rows(
        f"SELECT DISTINCT {group_by} AS g FROM patients WHERE treated AND {where} ORDER BY 1",
        params)]


def complete_readings(cells: Iterable[CellCount], group: str = "All"
                      ) -> list[tuple[tuple[str, str, str], int, int]]:
    """Every reading (timepoint × definition × population, in that order)
    of one group with its (n, responders), 0 where the grid has no patient."""
    found = {c.reading: (c.n, c.responders) for c in cells if c.group == group}
    return [((t, d, p), *found.get((t, d, p), (0, 0)))
            for t in TIMEPOINTS for d in DEFINITIONS for p in POPULATIONS]


def _complete_grid(counts: pd.DataFrame, groups: Iterable[str]) -> pd.DataFrame:
    """Add the cells with no patients (n = 0) so that every cell is present."""
    import pandas as pd
    index = pd.MultiIndex.from_product(
        [TIMEPOINTS, DEFINITIONS, POPULATIONS, ["All", *groups]],
        names=["timepoint", "definition", "population", "group"])
    full = (counts.set_index(["timepoint", "definition", "population", "group"])
            .reindex(index, fill_value=0).reset_index())
    full["n"] = full["n"].astype(int)
    full["responders"] = full["responders"].astype(int)
    return full


def exclusion_counts(snap: Snapshot, filters: Filters = Filters(),
                     timepoints: Iterable[str] = TIMEPOINTS,
                     definitions: Iterable[str] = DEFINITIONS) -> dict[tuple[str, str], dict[str, int]]:
    """Why treated patients are not in each reading's ITT denominator, with
    counts, per (timepoint, definition) (``sql/queries/outcome_exclusions.sql``;
    a reading without treated patients in view is left out)."""
    where, params = filters.sql()
    sql = db.read_sql("queries/outcome_exclusions.sql").replace("{{ patient_filter }}", where)
    rows = snap.rows(f"SELECT timepoint, definition, {', '.join(EXCLUSIONS)} FROM ({sql}\n)",
                     {"timepoints": list(timepoints), "definitions": list(definitions),
                      **params})
    return {(timepoint, definition): {c: int(v) for c, v in zip(EXCLUSIONS, counts)}
            for timepoint, definition, *counts in rows}


# The columns of sql/queries/outcome_exclusions.sql, in its order.
EXCLUSIONS = ("no_baseline_pain", "baseline_pain_zero", "opioid_use_unknown",
              "not_on_opioids_at_baseline", "no_baseline", "not_yet_due", "provisional",
              "missing_follow_up", "treated")


def exclusions(snap: Snapshot, timepoint: str, definition: str, population: str,
               filters: Filters = Filters()) -> dict[str, int]:
    """Why treated patients are not in the denominator, with counts."""
    counts = exclusion_counts(snap, filters, [timepoint], [definition])
    row = counts.get((timepoint, definition)) or dict.fromkeys(EXCLUSIONS, 0)
    # An untreated patient has no index date or route: as in the patient flow,
    # the cohort filter applies to their first visit and a route filter
    # leaves them out.
    untreated_where, untreated_params = filters.sql("u")
    untreated = snap.scalar(f"""
        SELECT count(*) FROM (
            SELECT * REPLACE (coalesce(index_date, first_visit_date) AS index_date)
            FROM patients WHERE NOT treated) AS u
        WHERE {untreated_where}""", untreated_params)
    result = {k: int(v) for k, v in row.items()}
    result["untreated"] = int(untreated)
    if population == "itt":
        # In ITT, a due patient without the follow-up counts as a non-responder.
        result["missing_follow_up_counted_as_non_responder"] = result.pop("missing_follow_up")
    return result


def responder_rates(snap: Snapshot, timepoint: str = "3m", definition: str = "pain30",
                    population: str = "itt", filters: Filters = Filters(),
                    ci: str = "wilson") -> ResponderRates:
    check_setting(timepoint, definition, population, ci)
    reading = (timepoint, definition, population)
    found = {c.group: c for c in grid_counts(snap, filters) if c.reading == reading}
    rows = []
    for group in ("All", *_groups(snap, filters, "condition")):
        cell = found.get(group)
        k, n = (cell.responders, cell.n) if cell else (0, 0)
        rows.append(GroupRate(group, stats.proportion(k, n, ci), n < SMALL_CELL))
    overall, by_condition = rows[0], rows[1:]
    return ResponderRates(timepoint, definition, population, ci, cutoff(snap), overall,
                          by_condition, exclusions(snap, timepoint, definition, population, filters),
                          filters)


# --------------------------------------------------------------------------
# claim check


@dataclass(frozen=True)
class SensitivityCell:
    """One reading of the claim (timepoint × definition × population) and
    its claim test, whose n, responders, rate, verdict and one-sided bounds
    it reads."""
    timepoint: str
    definition: str
    population: str
    test: stats.ClaimTest

    @property
    def n(self) -> int:
        return self.test.n

    @property
    def responders(self) -> int:
        return self.test.responders

    @property
    def rate(self) -> float | None:
        return self.test.rate

    @property
    def verdict(self) -> str:
        return self.test.verdict

    @property
    def lower_bound(self) -> float | None:
        return self.test.lower_bound

    @property
    def upper_bound(self) -> float | None:
        return self.test.upper_bound

    def to_dict(self) -> dict:
        return {"timepoint": self.timepoint, "definition": self.definition,
                "population": self.population, "n": self.n, "responders": self.responders,
                "rate": self.rate, "verdict": self.verdict, "lower_bound": self.lower_bound,
                "upper_bound": self.upper_bound}


@dataclass(frozen=True)
class ClaimCheck:
    timepoint: str
    definition: str
    population: str
    test: stats.ClaimTest
    cutoff: dt.date | None
    excluded: dict[str, int]
    sensitivity: list[SensitivityCell]

    def to_dict(self) -> dict:
        t = self.test
        return {
            "verdict": t.verdict, "n": t.n, "responders": t.responders, "rate": t.rate,
            "p_value": t.p_value, "lower_bound": t.lower_bound, "upper_bound": t.upper_bound,
            "target": t.target, "timepoint": self.timepoint, "definition": self.definition,
            "population": self.population,
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "excluded": self.excluded,
            "sensitivity": [c.to_dict() for c in self.sensitivity],
        }


def claim_check(snap: Snapshot, target: float = 0.70, timepoint: str = "3m",
                definition: str = "claim", population: str = "itt",
                filters: Filters = Filters()) -> ClaimCheck:
    """The claim test of SPEC §4 for one reading, and every reading beside it."""
    check_setting(timepoint, definition, population)
    if not 0 < target < 1:
        raise ValueError(f"target must be between 0 and 1, got {target}")
    sensitivity = [SensitivityCell(*reading, stats.claim_test(k, n, target))
                   for reading, n, k in complete_readings(grid_counts(snap, filters))]
    chosen = next(c for c in sensitivity if (c.timepoint, c.definition, c.population)
                  == (timepoint, definition, population))
    return ClaimCheck(timepoint, definition, population, chosen.test, cutoff(snap),
                      exclusions(snap, timepoint, definition, population, filters), sensitivity)


# --------------------------------------------------------------------------
# pain change and conditions


def pain_changes(snap: Snapshot, timepoint: str = "3m", filters: Filters = Filters()) -> pd.DataFrame:
    """Per patient with baseline pain > 0 who is due at the timepoint and has
    its follow-up (SPEC §3: an early follow-up of a patient not yet due is
    provisional and left out): baseline, follow-up, change (follow-up −
    baseline) and % change."""
    where, params = filters.sql()
    return snap.query(f"""
        SELECT patient_id, condition, site, route, cohort_quarter, baseline_pain, follow_up_pain,
               follow_up_pain - baseline_pain AS change,
               100 * (follow_up_pain - baseline_pain) / baseline_pain AS percent_change
        FROM patient_outcomes
        WHERE definition = 'pain30' AND timepoint = $timepoint AND in_completers AND {where}
        ORDER BY percent_change, patient_id
    """, {"timepoint": timepoint, **params})


def median_pain_change(snap: Snapshot, timepoint: str = "3m",
                       filters: Filters = Filters()) -> stats.PairedChange:
    """Median pain change (points, follow-up − baseline) of the patients due
    with a follow-up, its exact 95% interval and the Wilcoxon signed-rank p
    (:func:`analysis.core.stats.median_change`)."""
    changes = pain_changes(snap, timepoint, filters)["change"].to_numpy(dtype=float)
    return stats.median_change(changes)


def ranking_key(n: int, rate: float | None, ci_low: float | None, name: str) -> tuple:
    """The order of a ranking of groups by their rate: by the lower end of
    the 95% interval, highest first (then the rate), so that a small group's
    lucky rate does not lead ("Unspecified (n=11)" at 55%, 95% CI 28–79%,
    ranks below Neuropathy at 48%, 41–55%); groups with fewer than
    SMALL_CELL patients go last, never first, however high their rate
    ("Unspecified (n=1)" at 100%), then groups without a rate."""
    return (n < SMALL_CELL, rate is None, -(ci_low or 0), -(rate or 0), name)


@dataclass(frozen=True)
class ConditionRow(stats.RateResult):
    condition: str
    proportion: stats.Proportion  # responder rate (n: the population's denominator)
    too_few: bool
    median_change: float | None   # pain change of the patients due with a follow-up
    p_value: float | None
    p_holm: float | None
    change_n: int = 0             # ... how many they are (<= n in ITT)
    median_ci_low: float | None = None    # exact order-statistic 95% CI
    median_ci_high: float | None = None
    wilcoxon_p: float | None = None       # Wilcoxon signed-rank, change vs 0


def condition_table(snap: Snapshot, timepoint: str = "3m", definition: str = "pain30",
                    population: str = "itt", filters: Filters = Filters(),
                    ci: str = "wilson") -> list[ConditionRow]:
    """Responder rate by condition with its CI, median pain change with its
    exact CI and Wilcoxon p, and the Holm-adjusted Fisher p-value of each
    condition against all others.  Ranked by the lower end of the rate's
    interval, highest first, with the conditions of fewer than SMALL_CELL
    patients last (:func:`ranking_key`)."""
    rates = responder_rates(snap, timepoint, definition, population, filters, ci)
    comparisons = {c.group: c for c in stats.compare_groups(
        {g.group: (g.responders, g.n) for g in rates.by_condition})}
    changes = pain_changes(snap, timepoint, filters)
    by_condition = {name: part["change"].to_numpy(dtype=float)
                    for name, part in changes.groupby("condition")}
    rows = []
    for g in rates.by_condition:
        comparison = comparisons.get(g.group)
        change = stats.median_change(by_condition.get(g.group, []))
        rows.append(ConditionRow(
            g.group, g.proportion, g.too_few,
            change.median,
            comparison.p_value if comparison else None,
            comparison.p_holm if comparison else None,
            change.n, change.ci_low, change.ci_high, change.wilcoxon_p))
    return sorted(rows, key=lambda r: ranking_key(r.n, r.rate, r.ci_low, r.condition))


# --------------------------------------------------------------------------
# what is in view


@dataclass(frozen=True)
class Scope:
    cutoff: dt.date | None
    patients: int   # treated patients matching the filters
    visits: int     # their visits (every visit type)
    first_index: dt.date | None
    last_index: dt.date | None
    all_patients: int = 0   # every patient matching the filters, untreated included
    all_visits: int = 0     # their visits (what the Data page counts)

    def text(self) -> str:
        """"1,827 treated patients and their 15,356 visits" (the status line)."""
        return f"{count(self.patients)} treated patients and their {count(self.visits)} visits"

    def all_visits_text(self) -> str:
        """How the Data page's visit count (all patients) reconciles with the
        status line's (treated patients)."""
        untreated = self.all_visits - self.visits
        return (f"{count(self.all_visits)} visits of all {count(self.all_patients)} patients in "
                f"view: the {count(self.visits)} visits of the {count(self.patients)} treated "
                f"patients (the status line's count) and {count(untreated)} visits of "
                f"{count(self.all_patients - self.patients)} patients never treated")


def internal_only(reader: "audience.Audience", what: str) -> None:
    """Refuse a builder of an internal page (the clinical team's and the
    analysts') to the external audience, which sees the fixed tables only."""
    if reader.external:
        raise PermissionError(f"{what} is for the clinical team and analysts only, not the "
                              f"{reader.value} audience (it sees the fixed tables)")


def in_view_text(snap: Snapshot, filters: Filters = Filters(),
                 reader: "audience.Audience" = audience.Audience.CLINICAL) -> str:
    """What the status line says is in view, made safe for ``reader``: the
    treated patients and visits matching the filters for the clinical team
    and analysts; for the external audience no count at all, only that the
    view is the whole program's fixed tables (a count of 1-10, or a difference
    between two views, would give a patient away; SPEC §4)."""
    if reader.external:
        return (f"whole program: fixed tables, no count under {audience.SMALL_CELL} shown")
    return f"{scope(snap, filters).text()} in view ({filters.describe()})"


def scope(snap: Snapshot, filters: Filters = Filters()) -> Scope:
    """What is in view: the treated patients matching the filters and their
    visits (the status line), and every patient matching them with their
    visits, untreated included (the Data page, which filters the same way)."""
    where, params = filters.sql("p")
    row = snap.query(f"""
        SELECT count(*) FILTER (WHERE p.treated) AS patients,
               coalesce(sum(p.visits) FILTER (WHERE p.treated), 0) AS visits,
               min(p.index_date) AS first_index, max(p.index_date) AS last_index,
               count(*) AS all_patients, coalesce(sum(p.visits), 0) AS all_visits
        FROM patients p
        WHERE {where}
    """, params).iloc[0]
    return Scope(cutoff(snap), int(row.patients), int(row.visits),
                 optional_date(row.first_index), optional_date(row.last_index),
                 int(row.all_patients), int(row.all_visits))


@dataclass(frozen=True)
class FilterOptions:
    sites: list[str]
    conditions: list[str]
    routes: list[str]
    quarters: list[str]


def filter_options(snap: Snapshot) -> FilterOptions:
    """The values the shared filters can take, from the treated patients."""
    from analysis.storage.reference import condition_names

    def distinct(column: str) -> list[str]:
        return [r for r in snap.query(
            f"SELECT DISTINCT {column} AS value FROM patients "
            f"WHERE treated AND {column} IS NOT NULL ORDER BY 1")["value"]]

    order = {name: i for i, name in enumerate(condition_names())}
    conditions = sorted(distinct("condition"), key=lambda c: (order.get(c, len(order)), c))
    return FilterOptions(distinct("site"), conditions, distinct("route"),
                         distinct("cohort_quarter"))

