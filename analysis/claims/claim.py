"""The marketing claim check behind the Claim check page and the memo
(issue 5): :func:`claim_report` computes everything one reading shows, once,
for one :class:`analysis.core.audience.Audience`, from the engine's
:func:`analysis.metrics.outcomes.claim_check`.

Its words are :mod:`analysis.claims.wording`'s, what outsiders may see of it
:mod:`analysis.claims.publication`'s (internal audiences see every count,
readings of 1–10 patients flagged ``too_few``), and the memo's content
:mod:`analysis.claims.substantiation`'s.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from analysis.core import stats
from analysis.metrics import outcomes
from analysis.core.audience import SMALL_CELL, SUPPRESSED, Audience
from analysis.core.audience import parse as parse_audience
from analysis.claims.publication import INTERNAL, Shown, external_publication
from analysis.claims.wording import (DEFAULT_TARGET, EXCLUSION_LABELS, OPTIMISTIC,
                                     TIMEPOINT_WORDS, TOO_FEW, Reading, Statement,
                                     at_least_text, method_text, rate_text, statement,
                                     statements, strongest, verdict_text)
from analysis.core.formatting import count, p_value, percent, rate_with_ci
from analysis.core.filters import Filters
from analysis.metrics.outcomes import SensitivityCell, optional_date
from analysis.storage.store import Snapshot


@dataclass(frozen=True)
class ClaimReport:
    """One reading's claim check, ready for its audience.

    ``test`` and ``excluded`` are the engine's raw results (kept so callers
    can check them against the CLI; never shown as they are); everything
    meant to be shown (the ``*_text`` methods, ``flow``, ``sensitivity``, the
    breakdowns and the statements) is already safe for ``audience``.
    """
    reading: Reading
    filters: Filters
    cutoff: dt.date | None
    test: stats.ClaimTest
    display: stats.Proportion            # Wilson two-sided, for display
    too_few: bool                        # external: withheld; internal: n < 11 (flagged)
    period: tuple[dt.date | None, dt.date | None]   # index dates of the denominator
    verdict_text: str
    test_text: str
    headline: Statement                  # the chosen reading's statement
    flow: pd.DataFrame                   # step, patients (None when withheld), shown, level
    flow_text: str
    sensitivity: pd.DataFrame            # one row per reading
    by_condition: pd.DataFrame           # breakdowns (withheld cells for outsiders)
    by_site: pd.DataFrame
    statements: list[Statement]
    treated: int
    excluded: dict = field(default_factory=dict)
    synthetic: bool = False              # invented data (the demo): the memo says so
    audience: Audience = Audience.EXTERNAL
    n_shown: bool = True                 # the chosen reading's n may be shown

    @property
    def external(self) -> bool:
        return self.audience.external

    @property
    def verdict(self) -> str:
        """The test's verdict; for outsiders "too few to tell" when withheld."""
        if self.external and self.too_few and self.test.n > 0:
            return TOO_FEW
        return self.test.verdict

    @property
    def hides_numbers(self) -> bool:
        return self.external and self.too_few

    @property
    def defensible(self) -> list[Statement]:
        """The readings with the highest defensible figure first."""
        return strongest(self.statements)

    def at_least_text(self) -> str:
        """The chosen reading's defensible figure: "at least 62%", or "–"."""
        figure = None if self.hides_numbers else at_least_text(self.test.lower_bound)
        return f"at least {figure}" if figure else "–"

    def rate_text(self) -> str:
        if self.test.n == 0:
            return "–"
        if self.hides_numbers:
            return SUPPRESSED if self.n_shown else TOO_FEW
        return rate_with_ci(self.display.rate, self.display.ci_low, self.display.ci_high)

    def rate_only_text(self) -> str:
        """"64%", "too few" or "–"."""
        if self.test.n == 0:
            return "–"
        return TOO_FEW if self.hides_numbers else percent(self.display.rate)

    def ci_text(self) -> str:
        """The two-sided Wilson 95% CI alone: "60–68%"."""
        if self.test.n == 0 or self.hides_numbers:
            return "–"
        return f"{100 * self.display.ci_low:.0f}–{100 * self.display.ci_high:.0f}%"

    def n_text(self) -> str:
        if self.external and not self.n_shown:
            return SUPPRESSED
        return count(self.test.n)

    def bounds_text(self) -> str:
        if self.hides_numbers or self.test.n == 0:
            return "–"
        return f"{percent(self.test.lower_bound)} to {percent(self.test.upper_bound)}"

    def p_text(self) -> str:
        return "–" if self.hides_numbers or self.test.n == 0 else p_value(self.test.p_value)


def denominator_periods(snap: Snapshot, filters: Filters = Filters()
                        ) -> dict[tuple[str, str, str], tuple[dt.date | None, dt.date | None]]:
    """First and last index date of the patients in each reading's denominator."""
    where, params = filters.sql()
    frame = snap.query(f"""
        WITH selected AS (SELECT * FROM patient_outcomes WHERE {where})
        SELECT 'itt' AS population, timepoint, definition,
               min(index_date) AS first_index, max(index_date) AS last_index
        FROM selected WHERE in_itt
        GROUP BY timepoint, definition
        UNION ALL
        SELECT 'completers', timepoint, definition, min(index_date), max(index_date)
        FROM selected WHERE in_completers
        GROUP BY timepoint, definition
    """, params)
    return {(r.timepoint, r.definition, r.population):
            (optional_date(r.first_index), optional_date(r.last_index))
            for r in frame.itertuples()}


def sensitivity_frame(cells: list[SensitivityCell], shown: Shown = INTERNAL) -> pd.DataFrame:
    """The sensitivity grid as rows.  Internal: every n, rate and verdict,
    ``too_few`` flags n < 11.  External: a reading whose n or responders are
    withheld is "too few to tell" (``too_few``), with no rate, bound or
    verdict, and its n only if the n itself is shown."""
    rows = []
    for c in cells:
        if shown.external:
            too_few = c.n > 0 and not shown.reading(c)
            n_shown = shown.n(c.timepoint, c.definition, c.population)
            verdict = TOO_FEW if too_few else c.verdict
        else:
            too_few = 0 < c.n < SMALL_CELL
            n_shown = True
            verdict = c.verdict
        hide = shown.external and too_few
        rows.append({
            "timepoint": c.timepoint, "definition": c.definition, "population": c.population,
            "n": c.n if n_shown else None,
            "rate": None if hide else c.rate,
            "verdict": verdict,
            "too_few": too_few,
            "lower_bound": None if hide else c.lower_bound,
            "at_least_text": (TOO_FEW if hide else
                              "–" if c.n == 0 else f"≥{at_least_text(c.lower_bound) or '0%'}"),
            "rate_text": TOO_FEW if hide else ("–" if c.n == 0 else percent(c.rate)),
            "rate_ci_text": TOO_FEW if hide else rate_text(c.responders, c.n),
            "bounds_text": "–" if hide or c.n == 0 else
            f"{percent(c.lower_bound)} to {percent(c.upper_bound)}",
            "patients_text": count(c.n) if n_shown else SUPPRESSED,
            "population_label": "ITT" if c.population == "itt" else OPTIMISTIC,
        })
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["n"] = frame["n"].astype("Int64")   # <NA> where withheld
    return frame


def breakdown(snap: Snapshot, reading: Reading, filters: Filters = Filters(),
              group_by: str = "condition", shown: Shown = INTERNAL) -> pd.DataFrame:
    """The chosen reading by condition or site.

    Columns: group, n, rate, ci_low, ci_high, verdict (against the target),
    suppressed (withheld, external), too_few (n < 11), is_total, and the
    texts shown (``patients``, ``rate_text``).  Groups with no patient in the
    denominator are left out.  For the external audience a group's n and
    rate are withheld as the publication decides (:func:`external_publication`).
    """
    grid = outcomes.responder_grid(snap, filters, "wilson", group_by)
    cell = grid[(grid.timepoint == reading.timepoint) & (grid.definition == reading.definition)
                & (grid.population == reading.population)]
    cell = cell[(cell.n > 0) | (cell.group == "All")].copy()
    cell["verdict"] = [stats.claim_test(int(k), int(n), reading.target).verdict
                       for k, n in zip(cell.responders, cell.n)]
    cell = cell[["group", "n", "responders", "rate", "ci_low", "ci_high", "verdict"]]
    cell["is_total"] = cell["group"] == "All"
    key = (reading.timepoint, reading.definition, reading.population)
    dims = ["all" if g == "All" else group_by for g in cell.group]
    n_hidden = [not shown.key(("n", *key, d, g)) for d, g in zip(dims, cell.group)]
    k_hidden = [not shown.key(("k", *key, d, g)) for d, g in zip(dims, cell.group)]
    cell["suppressed"] = [a or b for a, b in zip(n_hidden, k_hidden)]
    cell["too_few"] = [0 < int(n) < SMALL_CELL for n in cell.n]
    total_name = {"condition": "All conditions", "site": "All sites"}.get(group_by, "All")
    cell["group"] = cell["group"].where(~cell["is_total"], total_name)
    cell["patients"] = [SUPPRESSED if h else count(n) for h, n in zip(n_hidden, cell.n)]
    cell["rate_text"] = [SUPPRESSED if s else rate_with_ci(r, lo, hi) for s, r, lo, hi in
                         zip(cell.suppressed, cell.rate, cell.ci_low, cell.ci_high)]
    cell = cell.astype({"n": object, "rate": object, "ci_low": object, "ci_high": object,
                        "verdict": object})
    for column in ("rate", "ci_low", "ci_high", "verdict"):
        cell[column] = [None if s else v for s, v in zip(cell.suppressed, cell[column])]
    cell["n"] = [None if h else int(n) for h, n in zip(n_hidden, cell.n)]
    cell = cell.drop(columns=["responders"])
    return pd.concat([cell[~cell.is_total].sort_values(["suppressed", "group"]),
                      cell[cell.is_total]], ignore_index=True)


def flow_key(key: str, reading: Reading):
    """The publication's key of one count of a reading's patient flow."""
    tp, d = reading.timepoint, reading.definition
    if key == "treated":
        return ("treated",)
    if key in ("counted", "counted_total"):
        return ("n", tp, d, reading.population, "all", "All")
    if key == "with_follow_up":
        return ("n", tp, d, "completers", "all", "All")
    if key in ("without_follow_up", "missing_follow_up"):
        return ("missing", tp, d, "all", "All")
    if key == "not_yet_due":
        return ("not_yet_due", tp, d)
    return ("excluded", key, tp, d)


def who_is_counted(excluded: dict, n: int, reading: Reading, shown: Shown = INTERNAL
                   ) -> pd.DataFrame:
    """Who one reading counts (the memo's "Who is counted"; the program's
    CONSORT flow is :func:`analysis.metrics.patient_flow.patient_flow`): treated patients →
    reasons left out → counted (and, in ITT, counted with and without a
    follow-up); for outsiders each count withheld as the publication decides.

    Columns: step, patients (None when withheld), suppressed, shown (text),
    level (0 total, 1 left out / counted, 2 within the counted), key.
    """
    words, adjective = TIMEPOINT_WORDS[reading.timepoint]
    members = []
    for key, label in EXCLUSION_LABELS.items():
        members.append((key, label, int(excluded.get(key, 0))))
    members.append(("not_yet_due", f"Not yet due (the {adjective} window had not closed by "
                                   f"the data cutoff)", int(excluded.get("not_yet_due", 0))))
    if reading.population == "completers":
        members.append(("missing_follow_up",
                        f"Reached {words} without a follow-up (left out: completers only)",
                        int(excluded.get("missing_follow_up", 0))))
    members = [m for m in members if m[2] > 0]
    treated = int(excluded.get("treated", 0))
    rows = ([("treated", "Treated patients", treated, 0)]
            + [(k, label, v, 1) for k, label, v in members]
            + [("counted", "Counted in the rate", n, 1)])
    if reading.population == "itt":
        missing = int(excluded.get("missing_follow_up_counted_as_non_responder", 0))
        rows.append(("with_follow_up", f"with a {adjective} follow-up", n - missing, 2))
        if missing:
            rows.append(("without_follow_up",
                         f"without a {adjective} follow-up (counted as not improved)", missing, 2))
    flow = pd.DataFrame(rows, columns=["key", "step", "patients", "level"])
    flow["suppressed"] = [not shown.key(flow_key(k, reading)) for k in flow.key]
    flow["patients"] = pd.Series([None if s else int(v) for s, v in
                                  zip(flow.suppressed, flow.patients)], dtype=object)
    flow["shown"] = [SUPPRESSED if s else count(v) for s, v in zip(flow.suppressed, flow.patients)]
    return flow[["key", "step", "patients", "suppressed", "shown", "level"]]


def flow_text(flow: pd.DataFrame, reading: Reading) -> str:
    """The flow table as one or two sentences (withheld counts stay hidden)."""
    rows = {r.key: r for r in flow.itertuples()}
    reasons = [r for r in flow.itertuples() if r.level == 1 and r.key != "counted"]
    treated, counted = rows["treated"], rows["counted"]
    words, adjective = TIMEPOINT_WORDS[reading.timepoint]
    if treated.suppressed:
        return "Too few treated patients to report who was counted."
    text = f"Of the {treated.shown} treated patients, "
    if counted.suppressed:
        text += f"{SUPPRESSED} are counted in the rate"
    else:
        text += f"{counted.shown} are counted in the rate"
    if reasons:
        left_out = ("" if counted.suppressed
                    else f"{count(int(treated.patients) - int(counted.patients))} ")
        text += (f" and {left_out}are left out: "
                 + "; ".join(f"{r.step[0].lower()}{r.step[1:]}: {r.shown}" for r in reasons))
    text += "."
    if reading.population == "itt" and not counted.suppressed:
        without = rows.get("without_follow_up")
        if without is None:
            text += f" Every patient counted had a {adjective} follow-up."
        else:
            text += (f" Patients counted who had no {adjective} follow-up count as not improved "
                     f"(ITT): {without.shown}.")
    return text


def claim_report(snap: Snapshot, target: float = DEFAULT_TARGET, timepoint: str = "3m",
                 definition: str = "claim", population: str = "itt",
                 filters: Filters = Filters(), include_completers: bool = False,
                 audience: Audience | str = Audience.EXTERNAL) -> ClaimReport:
    """Everything the Claim check page and the memo show for one reading,
    already safe for ``audience``.  The external audience (the default: the
    claim is meant for outsiders) gets the whole program whatever
    ``filters`` says, protected as one publication with every other reading
    (:func:`external_publication`)."""
    reader = parse_audience(audience)
    if reader.external:
        filters = Filters()
    shown = Shown(external_publication(snap)) if reader.external else INTERNAL
    check = outcomes.claim_check(snap, target, timepoint, definition, population, filters)
    reading = Reading(timepoint, definition, population, float(target))
    test = check.test
    periods = denominator_periods(snap, filters)
    period = periods.get(reading.key, (None, None))
    cells = {(c.timepoint, c.definition, c.population): c for c in check.sensitivity}
    chosen = cells[reading.key]
    itt = cells[(timepoint, definition, "itt")]
    headline = statement(chosen, target, *period,
                         itt_cell=itt if population == "completers" else None, shown=shown)
    flow = who_is_counted(check.excluded, test.n, reading, shown)
    withheld = test.n > 0 and not shown.reading(chosen)
    too_few = withheld if reader.external else 0 < test.n < SMALL_CELL
    return ClaimReport(
        reading=reading, filters=filters, cutoff=check.cutoff, test=test,
        display=stats.proportion(test.responders, test.n, "wilson"), too_few=too_few,
        period=(None, None) if withheld else period,
        verdict_text=verdict_text(test, reading, withheld if reader.external else False),
        test_text=method_text(test, not withheld and test.n > 0),
        headline=headline, flow=flow, flow_text=flow_text(flow, reading),
        sensitivity=sensitivity_frame(check.sensitivity, shown),
        by_condition=breakdown(snap, reading, filters, "condition", shown),
        by_site=breakdown(snap, reading, filters, "site", shown),
        statements=statements(check.sensitivity, target, periods, include_completers, shown),
        treated=int(check.excluded.get("treated", 0)), excluded=dict(check.excluded),
        synthetic=snap.synthetic, audience=reader,
        n_shown=shown.n(timepoint, definition, population))
