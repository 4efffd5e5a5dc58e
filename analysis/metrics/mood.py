"""Depression (PHQ-9) and PTSD (PCL-5) outcomes, and how they go with pain relief.

The same baseline, window and population rules as pain (SPEC §3), applied to
the questionnaires:

* **baseline**: the last non-null score in [index − 30, index];
* **follow-up**: the non-null score from the visit closest to the
  timepoint's target day inside its window, never on the index date; a tie
  goes to the later visit;
* **due**: index + window end ≤ data cutoff (the whole window inside the
  data); an early follow-up of a patient not yet due is *provisional* and
  never counted;
* **itt** (default): eligible and due, a missing follow-up counts as *not* a
  responder; **completers**: due with a follow-up score (a subset of ITT).
* **pain × depression**: on patients with both follow-ups observed (SPEC §4).

Measures, and who is eligible for each (the questionnaires' usual cut-offs):

* ``phq9_response``: PHQ-9 at least 50% below baseline (20 → 10 counts);
* ``phq9_remission``: PHQ-9 below 5 at follow-up;
  both only for patients whose baseline PHQ-9 is ≥ 10 (at least moderate
  depression): a patient without depression cannot respond or remit;
* ``pcl5_improvement``: PCL-5 at least 10 points below baseline (clinically
  meaningful change), only for patients whose baseline PCL-5 is ≥ 33
  (probable PTSD).

Every function takes ``(snap, ..., filters)`` and returns a small dataclass or
a DataFrame, so the dashboard and the quarterly report show the same numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from analysis.metrics import charts
from analysis.core import stats
from analysis.core.audience import SMALL_CELL, Audience
from analysis.core.definitions import POPULATIONS, TIMEPOINT_LABELS, TIMEPOINTS, check_setting
from analysis.core.formatting import count, percent
from analysis.metrics.outcomes import GroupRate, cutoff, group_rates, internal_only, optional_float, with_rates
from analysis.core.filters import Filters
from analysis.storage.queries import run_query
from analysis.storage.store import Snapshot

MEASURES = ("phq9_response", "phq9_remission", "pcl5_improvement")
MEASURE_LABELS = {
    "phq9_response": "Depression response (PHQ-9 ≥50% lower)",
    "phq9_remission": "Depression remission (PHQ-9 below 5)",
    "pcl5_improvement": "PTSD improvement (PCL-5 ≥10 points lower)",
}
MEASURE_SHORT = {
    "phq9_response": "PHQ-9 response",
    "phq9_remission": "PHQ-9 remission",
    "pcl5_improvement": "PCL-5 improvement",
}
ELIGIBILITY = {
    "phq9_response": "baseline PHQ-9 ≥ 10 (at least moderate depression)",
    "phq9_remission": "baseline PHQ-9 ≥ 10 (at least moderate depression)",
    "pcl5_improvement": "baseline PCL-5 ≥ 33 (probable PTSD)",
}


# --------------------------------------------------------------------------
# per patient


def mood_outcomes(snap: Snapshot, filters: Filters = Filters()) -> pd.DataFrame:
    """One row per treated patient in view × timepoint × measure: baseline,
    follow-up (and their dates), eligible, complete, due, responder and, for
    patients outside the ITT denominator, why (``itt_exclusion``)."""
    frame = run_query(snap, "mood_outcomes", filters)
    for column in ("eligible", "complete", "due", "in_itt", "in_completers", "responder",
                   "missing_follow_up", "not_yet_due", "provisional", "provisional_responder"):
        frame[column] = frame[column].astype(bool)
    return frame


# --------------------------------------------------------------------------
# rates


def mood_grid(snap: Snapshot, filters: Filters = Filters(), ci: str = "wilson") -> pd.DataFrame:
    """Every timepoint × measure × population, overall (group ``"All"``) and by
    condition: n, responders, rate, Wilson (or exact) CI, ``too_few``."""
    check_setting(ci=ci)
    # Counted in SQL (mood_counts), not over a million patient rows in pandas.
    counts = run_query(snap, "mood_counts", filters).rename(columns={"group_name": "group"})
    in_view = counts[counts["population"] == "in_view"]
    conditions = sorted(set(in_view["group"]) - {"All"})
    index = pd.MultiIndex.from_product(
        [TIMEPOINTS, MEASURES, POPULATIONS, ["All", *conditions]],
        names=["timepoint", "measure", "population", "group"])
    full = (counts[counts["population"] != "in_view"]
            .set_index(["timepoint", "measure", "population", "group"])[["n", "responders"]]
            .reindex(index, fill_value=0).reset_index())
    full["n"] = full["n"].astype(int)
    full["responders"] = full["responders"].astype(int)
    # One vectorised call for the whole grid (stats.intervals); NaN when n = 0.
    return with_rates(full, ci)


@dataclass(frozen=True)
class MeasureRates:
    measure: str
    label: str
    eligibility: str
    overall: GroupRate
    by_condition: list[GroupRate]
    excluded: dict[str, int]


@dataclass(frozen=True)
class MoodRates:
    timepoint: str
    population: str
    ci_method: str
    cutoff: dt.date | None
    treated: int
    measures: list[MeasureRates]
    filters: Filters = field(default_factory=Filters)

    def get(self, measure: str) -> MeasureRates:
        return next(m for m in self.measures if m.measure == measure)


def mood_rates(snap: Snapshot, timepoint: str = "3m", population: str = "itt",
               filters: Filters = Filters(), ci: str = "wilson",
               audience: Audience = Audience.CLINICAL) -> MoodRates:
    """The three mood measures at one timepoint, overall and by condition,
    with who was left out and why.  Internal readers only: a group under 11
    is flagged ``too_few``, not hidden."""
    check_setting(timepoint, population=population, ci=ci)
    internal_only(audience, "Depression and PTSD rates")
    grid = mood_grid(snap, filters, ci)
    excluded = run_query(snap, "mood_exclusions", filters,
                         {"timepoint": timepoint}).set_index("measure")
    measures = []
    for measure in MEASURES:
        cell = grid[(grid.timepoint == timepoint) & (grid.measure == measure)
                    & (grid.population == population)]
        rows = group_rates(cell, ci)
        overall = next(r for r in rows if r.group == "All")
        by_condition = [r for r in rows if r.group != "All"]
        counts = excluded.loc[measure] if measure in excluded.index else None
        measures.append(MeasureRates(measure, MEASURE_LABELS[measure], ELIGIBILITY[measure],
                                     overall, by_condition, _exclusions(counts, population)))
    treated = int(excluded["treated"].max()) if len(excluded) else 0
    return MoodRates(timepoint, population, ci, cutoff(snap), treated, measures, filters)


def _exclusions(counts: pd.Series | None, population: str) -> dict[str, int]:
    """Why treated patients are not in the denominator, with counts (a row
    of ``mood_exclusions``; None when nobody is in view)."""
    def get(column: str) -> int:
        return 0 if counts is None else int(counts[column])

    result = {
        "treated": get("treated"),
        "no_baseline_score": get("no_baseline_score"),
        "baseline_below_threshold": get("baseline_below_threshold"),
        "not_yet_due": get("not_yet_due"),
        # of the not yet due, those with an early follow-up (provisional, not counted)
        "provisional": get("provisional"),
    }
    if population == "itt":
        # In ITT, a due patient without the follow-up counts as a non-responder.
        result["missing_follow_up_counted_as_non_responder"] = get("missing_follow_up")
    else:
        result["missing_follow_up"] = get("missing_follow_up")
    return result


# --------------------------------------------------------------------------
# pain relief and depression response together


@dataclass(frozen=True)
class PainMoodTable:
    """2×2 table of pain30 response × PHQ-9 response at one timepoint, among
    the patients with *both* follow-ups observed (SPEC §4: due for each, with
    each follow-up score).  Whatever population the rest of the page uses, a
    missing follow-up is never counted as "no" on both axes, so ``n`` is
    smaller than either rate's ITT denominator; ``pain_n`` and ``mood_n`` (the
    ITT denominators of the two rates) say by how much."""
    timepoint: str
    both: int          # pain responder and PHQ-9 responder
    pain_only: int     # pain responder, not a PHQ-9 responder
    mood_only: int     # PHQ-9 responder, not a pain responder
    neither: int
    odds_ratio: stats.OddsRatio
    too_few: bool

    @property
    def n(self) -> int:
        return self.both + self.pain_only + self.mood_only + self.neither

    @property
    def pain_responders(self) -> int:
        return self.both + self.pain_only

    @property
    def pain_non_responders(self) -> int:
        return self.mood_only + self.neither

    @property
    def mood_responders(self) -> int:
        return self.both + self.mood_only

    def mood_rate_given_pain(self, pain_responder: bool) -> float | None:
        """Share of PHQ-9 responders among pain responders (or non-responders)."""
        k, n = ((self.both, self.pain_responders) if pain_responder
                else (self.mood_only, self.pain_non_responders))
        return k / n if n else None


ASSOCIATION_BASIS = ("patients with both follow-ups observed (pain and PHQ-9, each due and "
                     "recorded): a missing follow-up is never counted as no response on both")


def pain_mood_pairs(snap: Snapshot, timepoint: str = "3m",
                    filters: Filters = Filters()) -> pd.DataFrame:
    """Per patient with both the pain30 and the PHQ-9 response follow-up
    observed at the timepoint: ``pain_responder`` and ``mood_responder``."""
    check_setting(timepoint)
    pairs = run_query(snap, "mood_pain_pairs", filters, {"timepoint": timepoint})
    for column in ("pain_responder", "mood_responder"):
        pairs[column] = pairs[column].astype(bool)
    return pairs


def mood_chart(snap: Snapshot, population: str = "itt", filters: Filters = Filters(),
               ci: str = "wilson", audience: Audience = Audience.CLINICAL) -> charts.Chart:
    """The three measures over every timepoint (all conditions in view), as a
    page draws them: one row per measure and timepoint with rate, ci_low,
    ci_high, responders, n and ``drawn``; a point from fewer than 11
    patients has ``drawn`` False and no rate or interval, and is named in
    ``not_drawn``."""
    check_setting(population=population, ci=ci)
    internal_only(audience, "Mood outcomes over time")
    grid = mood_grid(snap, filters, ci)
    overall = grid[(grid.group == "All") & (grid.population == population)]
    rows, missing = [], []
    for measure in MEASURES:
        part = overall[overall.measure == measure].set_index("timepoint").reindex(TIMEPOINTS)
        for timepoint, r in part.iterrows():
            n = 0 if r["n"] != r["n"] else int(r["n"])
            drawn = charts.enough(n)
            if n and not drawn:
                missing.append(f"{MEASURE_SHORT[measure]} at {TIMEPOINT_LABELS[timepoint]}")
            rows.append({"measure": measure, "timepoint": timepoint, "n": n,
                         "responders": 0 if r["responders"] != r["responders"]
                         else int(r["responders"]),
                         "rate": optional_float(r["rate"]) if drawn else None,
                         "ci_low": optional_float(r["ci_low"]) if drawn else None,
                         "ci_high": optional_float(r["ci_high"]) if drawn else None,
                         "drawn": drawn})
    points = pd.DataFrame(rows, columns=["measure", "timepoint", "n", "responders", "rate",
                                         "ci_low", "ci_high", "drawn"])
    if not points["drawn"].any():
        return charts.Chart(points, nothing=charts.nothing_text("Mood outcomes over time"))
    return charts.Chart(points, charts.not_drawn_text(missing))


def pain_mood_table(snap: Snapshot, timepoint: str = "3m",
                    filters: Filters = Filters(),
                    audience: Audience = Audience.CLINICAL) -> PainMoodTable:
    """How pain response (pain30) and depression response (PHQ-9) go together
    among patients with both follow-ups observed: the 2×2 table and the odds
    ratio of PHQ-9 response for pain responders against pain non-responders
    (Woolf CI, Fisher p).  Internal readers only (a cell of the table is
    often under 11)."""
    internal_only(audience, "Pain and depression together")
    pairs = pain_mood_pairs(snap, timepoint, filters)
    pain, mood = pairs["pain_responder"], pairs["mood_responder"]
    a = int((pain & mood).sum())
    b = int((pain & ~mood).sum())
    c = int((~pain & mood).sum())
    d = int((~pain & ~mood).sum())
    return PainMoodTable(timepoint, a, b, c, d, stats.odds_ratio(a, b, c, d),
                         a + b + c + d < SMALL_CELL)


def odds_ratio_text(table: PainMoodTable, digits: int = 1) -> str:
    """"4.2 (95% CI 2.1–8.4)"; with a zero cell, what the table shows instead."""
    result = table.odds_ratio
    value = result.odds_ratio
    if value is None:
        return "not estimable (a whole row or column of the table is empty)"
    if value == float("inf"):
        why = ("every pain responder had a depression response" if table.pain_only == 0
               else "no depression response without pain relief")
        return f"not estimable: infinite ({why})"
    if value == 0:
        why = ("no pain responder had a depression response" if table.both == 0
               else "every patient without pain relief had a depression response")
        return f"0 ({why})"

    def bound(x):
        if x is None:
            return "–"
        return "∞" if x == float("inf") else f"{x:.{digits}f}"
    return f"{value:.{digits}f} (95% CI {bound(result.ci_low)}–{bound(result.ci_high)})"


def rate_cell(group: GroupRate) -> str:
    """A table cell for people: "46% (30–62%) · 12 of 26", with "⚠" when the
    group is too small to report (n < 11); "no patients" when n = 0."""
    if group.n == 0:
        return "no patients"
    text = f"{percent(group.rate)}"
    if group.ci_low is not None and group.ci_high is not None:
        text += f" ({100 * group.ci_low:.0f}–{100 * group.ci_high:.0f}%)"
    text += f" · {count(group.responders)} of {count(group.n)}"
    return text + (" ⚠" if group.too_few else "")
