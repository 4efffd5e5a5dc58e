"""The marketing claim check: what the data let the clinic say (issue 5).

The engine's :func:`analysis.metrics.outcomes.claim_check` gives the verdicts; this
module turns them into words and into the tables of the Claim check page and
of the substantiation memo (:mod:`analysis.reports.memo`):

* :func:`statement` / :func:`statements`: one sentence per reading
  (timepoint × definition × population): what the data support, or why the
  wording is not supported and what the data show instead, each with its
  *defensible figure* (SPEC §4): the one-sided 95% exact lower bound L and
  the strongest wording it supports, "At least L% of the N patients who
  reached three months reported at least 30% less pain".  Pure functions.
* :func:`strongest`: the readings with the highest L, what "What you can
  say" leads with.
* :func:`claim_report`: everything the page and the memo show for one
  reading, computed once, for one :class:`analysis.core.audience.Audience`.  For
  the external audience (marketing, the memo) it is the whole program
  whatever the filters, and every count of every reading (the sensitivity
  grid, each reading's breakdowns by condition and by site, each reading's
  patient flow) is registered in one :class:`analysis.core.disclosure.Tables`
  (:func:`external_publication`) with the sums an outsider knows: groups to
  their total, n = responders + non-responders, ITT n = completers n + the
  patients without a follow-up, a pain or opioid definition's n = the
  claim's n + the patients with only that baseline, the responders of a
  stricter definition among a looser one's, the patients due at a later
  timepoint among those due at an earlier one, the flow's steps to the
  treated patients.  A reading whose n or responders are withheld is "too
  few to tell" (never a verdict, a rate or a bound: a verdict against a
  chosen target would give the bound away); a withheld count reads "too few
  to report".  Internal audiences see every count, readings of 1–10
  patients flagged ``too_few``.
* :func:`memo_data`: the memo's content as plain text tables.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import pandas as pd

from analysis.core import definitions, disclosure, stats
from analysis.metrics import outcomes
from analysis.core.audience import SMALL_CELL, SUPPRESSED, Audience
from analysis.core.audience import parse as parse_audience
from analysis.core.formatting import count, long_date, month_year, p_value, percent, rate_with_ci
from analysis.metrics.outcomes import SensitivityCell, optional_date
from analysis.core.filters import Filters
from analysis.storage.store import Snapshot

CLAIM_AS_PUBLISHED = ("over 70% of patients have meaningful relief and can significantly "
                      "decrease their use of opioid medications.")
DEFAULT_TARGET = 0.70
# SPEC §4: for the external audience a reading of 1-10 patients is "too few
# to tell", never a verdict (this module speaks to the external audience).
TOO_FEW = "too few to tell"
# SUPPRESSED ("too few to report"): a withheld group or count (analysis.core.audience)
OPTIMISTIC = "optimistic (completers only)"

VERDICT_LABELS = {"supported": "Supported", "contradicted": "Contradicted",
                  "inconclusive": "Inconclusive", "no data": "No data",
                  TOO_FEW: "Too few to tell"}
# The verdicts that carry a colour; "no data" and "too few to tell" are grey.
VERDICTS = ("supported", "inconclusive", "contradicted")


def external_verdict(verdict: str, n: int) -> str:
    """The verdict shown outside the clinical team: "too few to tell" for
    1-10 patients, whatever the test says (SPEC §4)."""
    return TOO_FEW if 0 < n < SMALL_CELL else verdict

# "three months" / "three-month"
TIMEPOINT_WORDS = {
    "4w": ("four weeks", "four-week"),
    "3m": ("three months", "three-month"),
    "6m": ("six months", "six-month"),
    "12m": ("twelve months", "twelve-month"),
}


@dataclass(frozen=True)
class Phrase:
    past: str       # what a responder did: "reported at least 30% less pain"
    present: str    # the same as a claim: "report at least 30% less pain"
    opioids: bool   # the denominator is patients taking opioids when treatment began


PHRASES = {
    "pain30": Phrase("reported at least 30% less pain", "report at least 30% less pain", False),
    "pain50": Phrase("reported at least 50% less pain", "report at least 50% less pain", False),
    "pain2pt": Phrase("reported pain at least 2 points lower on a 0–10 scale",
                      "report pain at least 2 points lower on a 0–10 scale", False),
    "mme50": Phrase("cut their daily opioid dose by at least half",
                    "cut their daily opioid dose by at least half", True),
    "mme_stop": Phrase("stopped opioids", "stop opioids", True),
    "claim": Phrase("reported at least 30% less pain and cut their daily opioid dose by at "
                    "least half",
                    "report at least 30% less pain and cut their daily opioid dose by at "
                    "least half", True),
}

# Why a treated patient is not in the denominator, in the clinic's words.
EXCLUSION_LABELS = {
    "no_baseline_pain": "No pain score at the start of treatment",
    "baseline_pain_zero": "Pain 0 at the start of treatment",
    "opioid_use_unknown": "Opioid use at the start of treatment not recorded",
    "not_on_opioids_at_baseline": "Not taking opioids at the start of treatment",
}


# --------------------------------------------------------------------------
# what a reader may see


class Shown:
    """What of the claim check a reader may see: every count (``tables``
    None: an internal reader), or what the external publication
    (:func:`external_publication`) leaves shown."""

    def __init__(self, tables: disclosure.Tables | None = None):
        self.tables = tables

    @property
    def external(self) -> bool:
        return self.tables is not None

    def key(self, key) -> bool:
        return self.tables is None or not self.tables.hidden(key)

    def n(self, timepoint, definition, population, dim="all", group="All") -> bool:
        return self.key(("n", timepoint, definition, population, dim, group))

    def reading(self, cell, dim="all", group="All") -> bool:
        """Its n and its responders (so its rate, bounds and verdict)."""
        key = (cell.timepoint, cell.definition, cell.population, dim, group)
        return self.key(("n", *key)) and self.key(("k", *key))

    def missing(self, timepoint, definition) -> bool:
        """The patients who reached the timepoint without a follow-up."""
        return self.key(("missing", timepoint, definition, "all", "All"))


INTERNAL = Shown()


# --------------------------------------------------------------------------
# words


@dataclass(frozen=True)
class Reading:
    """One way of reading the claim: a timepoint, a definition, a population
    and the target rate the claim promises."""
    timepoint: str = "3m"
    definition: str = "claim"
    population: str = "itt"
    target: float = DEFAULT_TARGET

    @property
    def key(self) -> tuple[str, str, str]:
        return self.timepoint, self.definition, self.population

    def describe(self) -> str:
        """"≥30% less pain and opioid dose cut by ≥50% (claim) at 3 months, ITT, against 70%"."""
        population = "ITT" if self.population == "itt" else OPTIMISTIC
        return (f"{definitions.DEFINITION_LABELS[self.definition]} ({self.definition}) at "
                f"{definitions.TIMEPOINT_LABELS[self.timepoint]}, {population}, against "
                f"{target_text(self.target)}")


LITERAL_READING = Reading()


def target_text(target: float) -> str:
    """0.7 -> "70%", 0.725 -> "72.5%"."""
    return f"{round(100 * float(target), 2):g}%"


def period_text(first: dt.date | None, last: dt.date | None) -> str:
    """"treated between January 2025 and June 2026" (or "treated in March 2026")."""
    if first is None or last is None:
        return "treated"
    if (first.year, first.month) == (last.year, last.month):
        return f"treated in {month_year(first)}"
    return f"treated between {month_year(first)} and {month_year(last)}"


def claim_wording(definition: str, timepoint: str, target: float) -> str:
    """The claim a reading tests: "over 70% of patients report at least 30%
    less pain at three months"."""
    phrase = PHRASES[definition]
    who = "patients taking opioids" if phrase.opioids else "patients"
    when = "by" if definition in ("mme50", "mme_stop") else "at"
    words = TIMEPOINT_WORDS[timepoint][0]
    return f"over {target_text(target)} of {who} {phrase.present} {when} {words}"


def denominator_clause(definition: str, timepoint: str, population: str) -> str:
    """"who reached three months" / "who were taking opioids when treatment
    began and had a three-month follow-up"."""
    words, adjective = TIMEPOINT_WORDS[timepoint]
    reached = f"reached {words}" if population == "itt" else f"had a {adjective} follow-up"
    if PHRASES[definition].opioids:
        return f"who were taking opioids when treatment began and {reached}"
    return f"who {reached}"


def _wilson(responders: int, n: int) -> stats.Proportion:
    return stats.proportion(responders, n, "wilson")


def rate_text(responders: int, n: int) -> str:
    """"64% (95% CI 60–68%)" (two-sided Wilson), "–" without patients."""
    p = _wilson(responders, n)
    return rate_with_ci(p.rate, p.ci_low, p.ci_high)


def at_least_text(lower_bound: float | None) -> str | None:
    """The defensible figure rounded *down*, so the wording stays inside the
    bound: 0.6234 -> "62%", 0.0047 -> "0.4%"; None when the bound is 0 (or
    missing): nothing above 0 can be stated."""
    if lower_bound is None or lower_bound <= 0:
        return None
    for digits in (0, 1, 2):
        scale = 10 ** digits
        value = math.floor(100 * lower_bound * scale + 1e-9) / scale
        if value > 0:
            return f"{value:.{digits}f}%"
    return None


def defensible_text(cell: SensitivityCell, first: dt.date | None = None,
                    last: dt.date | None = None) -> str | None:
    """The strongest wording the data support for one reading (SPEC §4): "At
    least 23% of the 1,234 patients treated between January 2025 and June
    2026 who reached three months reported at least 30% less pain."  None
    for fewer than 11 patients or a lower bound of 0."""
    at_least = at_least_text(cell.lower_bound)
    if cell.n < SMALL_CELL or at_least is None:
        return None
    clause = denominator_clause(cell.definition, cell.timepoint, cell.population)
    return (f"At least {at_least} of the {count(cell.n)} patients {period_text(first, last)} "
            f"{clause} {PHRASES[cell.definition].past} (one-sided 95% lower bound; "
            f"observed {percent(cell.rate)}).")


@dataclass(frozen=True)
class Statement:
    timepoint: str
    definition: str
    population: str
    verdict: str
    n: int
    kind: str   # "supported" | "not supported" | "too few" | "no data" | "completers only"
    text: str
    lower_bound: float | None = None   # the defensible figure L (one-sided 95% exact)
    defensible: str | None = None      # "At least L% of the N patients ..." (n >= 11, L > 0)


def statement(cell: SensitivityCell, target: float, first: dt.date | None = None,
              last: dt.date | None = None, itt_cell: SensitivityCell | None = None,
              shown: Shown = INTERNAL) -> Statement:
    """What the data let the clinic say about one reading.

    ``first``/``last`` are the index dates of the patients in the
    denominator (the period).  A completers-only cell needs ``itt_cell`` (the
    same timepoint and definition in ITT) for its caveat.  ``shown``: what
    the reader may see (a withheld reading is "too few to tell", no number).
    """
    withheld = cell.n > 0 and not shown.reading(cell)
    tp_words = TIMEPOINT_WORDS[cell.timepoint][0]
    phrase = PHRASES[cell.definition]
    wording = claim_wording(cell.definition, cell.timepoint, target)
    quoted = f"“{wording[0].upper()}{wording[1:]}”"
    clause = denominator_clause(cell.definition, cell.timepoint, cell.population)

    def make(kind: str, text: str) -> Statement:
        stated = cell.n >= SMALL_CELL and not withheld
        return Statement(cell.timepoint, cell.definition, cell.population,
                         TOO_FEW if withheld else external_verdict(cell.verdict, cell.n),
                         cell.n, kind, text,
                         cell.lower_bound if stated else None,
                         defensible_text(cell, first, last) if stated else None)

    if cell.n == 0:
        who = "patient taking opioids" if phrase.opioids else "patient"
        return make("no data", f"{quoted} cannot be checked yet: no {who} has reached "
                               f"{tp_words}.")
    if withheld:
        return make("too few", f"{quoted} cannot be checked: too few patients {clause} to "
                               f"report.")
    if cell.n < SMALL_CELL:
        return make("too few", f"{quoted} cannot be checked: fewer than {SMALL_CELL} patients "
                               f"{clause}, too few to report.")
    of_the = (f"Of the {count(cell.n)} patients {period_text(first, last)} {clause}, "
              f"{rate_text(cell.responders, cell.n)} {phrase.past}.")
    if cell.verdict == "supported":
        text = of_the
        if cell.population == "completers":
            text = f"{of_the} {completers_caveat(cell, itt_cell, shown)}"
        return make("supported", text)
    if cell.verdict == "contradicted":
        why = f"the rate is clearly below {target_text(target)}"
    else:
        why = (f"too few patients to show that the rate is above {target_text(target)}"
               if cell.n < 100 else f"the rate is not clearly above {target_text(target)}")
    text = f"{quoted} is not supported ({why}). {of_the}"
    if cell.population == "completers":
        text = f"{text} {completers_caveat(cell, itt_cell, shown)}"
    return make("not supported", text)


def completers_caveat(cell: SensitivityCell, itt_cell: SensitivityCell | None,
                      shown: Shown = INTERNAL) -> str:
    """The explicit caveat every completers-only sentence carries."""
    base = ("Caveat: completers only, which overstates the program: it leaves out "
            "patients who reached {words} without a follow-up")
    words = TIMEPOINT_WORDS[cell.timepoint][0]
    if itt_cell is None:
        return base.format(words=words) + "."
    missing = itt_cell.n - cell.n
    if missing <= 0:
        return ("Caveat: completers only (here every patient who reached "
                f"{words} had a follow-up, so ITT gives the same rate).")
    if shown.external:
        left_out = (f"the {count(missing)} patients"
                    if shown.missing(cell.timepoint, cell.definition) else "the patients")
    else:
        left_out = (f"the {count(missing)} patients" if missing >= SMALL_CELL
                    else f"fewer than {SMALL_CELL} patients")
    text = (f"Caveat: completers only, which overstates the program: it leaves out {left_out} "
            f"who reached {words} without a follow-up")
    if itt_cell.n >= SMALL_CELL and shown.reading(itt_cell):
        text += (f"; counting them as not improved (ITT), the rate is "
                 f"{rate_text(itt_cell.responders, itt_cell.n)}")
    return text + "."


def completers_gap(itt_cell: SensitivityCell, completers_cell: SensitivityCell, target: float,
                   first: dt.date | None = None, last: dt.date | None = None,
                   shown: Shown = INTERNAL) -> Statement | None:
    """"Completers-only passes but ITT does not: …", or None when that is not the case."""
    if completers_cell.verdict != "supported" or itt_cell.verdict == "supported":
        return None
    if completers_cell.n < SMALL_CELL or itt_cell.n < SMALL_CELL:
        return None
    if not (shown.reading(itt_cell) and shown.reading(completers_cell)):
        return None
    words = TIMEPOINT_WORDS[itt_cell.timepoint][0]
    phrase = PHRASES[itt_cell.definition]
    missing = itt_cell.n - completers_cell.n
    if shown.external:
        missing_text = (f"the {count(missing)} who had no follow-up"
                        if shown.missing(itt_cell.timepoint, itt_cell.definition)
                        else "those who had no follow-up")
    else:
        missing_text = (f"the {count(missing)} who had no follow-up" if missing >= SMALL_CELL
                        else "those who had no follow-up")
    wording = claim_wording(itt_cell.definition, itt_cell.timepoint, target)
    text = (f"Completers-only passes but ITT does not: at {words}, "
            f"{rate_text(completers_cell.responders, completers_cell.n)} of the "
            f"{count(completers_cell.n)} patients "
            f"{denominator_clause(itt_cell.definition, itt_cell.timepoint, 'completers')} "
            f"{phrase.past}, but of all {count(itt_cell.n)} patients {period_text(first, last)} "
            f"{denominator_clause(itt_cell.definition, itt_cell.timepoint, 'itt')}, counting "
            f"{missing_text} as not improved, {rate_text(itt_cell.responders, itt_cell.n)} did. "
            f"“{wording[0].upper()}{wording[1:]}” is not supported.")
    return Statement(itt_cell.timepoint, itt_cell.definition, "itt", itt_cell.verdict,
                     itt_cell.n, "completers only", text)


def statements(sensitivity: list[SensitivityCell], target: float,
               periods: dict[tuple[str, str, str], tuple[dt.date | None, dt.date | None]]
               | None = None, include_completers: bool = False,
               shown: Shown = INTERNAL) -> list[Statement]:
    """One statement per reading (ITT; completers too when asked, each with
    its caveat), then every "completers-only passes but ITT does not"."""
    periods = periods or {}
    cells = {(c.timepoint, c.definition, c.population): c for c in sensitivity}
    out: list[Statement] = []
    gaps: list[Statement] = []
    for timepoint in definitions.TIMEPOINTS:
        for definition in definitions.DEFINITIONS:
            itt = cells.get((timepoint, definition, "itt"))
            completers = cells.get((timepoint, definition, "completers"))
            if itt is not None:
                out.append(statement(itt, target, *periods.get(_key(itt), (None, None)),
                                     shown=shown))
            if completers is not None and include_completers:
                out.append(statement(completers, target,
                                     *periods.get(_key(completers), (None, None)),
                                     itt_cell=itt, shown=shown))
            if itt is not None and completers is not None:
                gap = completers_gap(itt, completers, target,
                                     *periods.get(_key(itt), (None, None)), shown=shown)
                if gap:
                    gaps.append(gap)
    return out + gaps


def strongest(statements_: list[Statement], limit: int | None = None) -> list[Statement]:
    """The ITT readings with a defensible figure, highest lower bound L first
    (ties: the clinic's order of timepoints and definitions).  Completers-only
    readings are left out: they overstate the program."""
    order = {(t, d): i for i, (t, d) in enumerate(
        (t, d) for t in definitions.TIMEPOINTS for d in definitions.DEFINITIONS)}
    usable = [s for s in statements_ if s.population == "itt" and s.defensible
              and s.kind != "completers only"]
    usable.sort(key=lambda s: (-s.lower_bound, order[(s.timepoint, s.definition)]))
    return usable if limit is None else usable[:limit]


def _key(cell: SensitivityCell) -> tuple[str, str, str]:
    return cell.timepoint, cell.definition, cell.population


def verdict_text(test: stats.ClaimTest, reading: Reading, withheld: bool | None = None) -> str:
    """Why the verdict is what it is, in plain English (the verdict's label,
    ``VERDICT_LABELS[test.verdict]``, goes beside it).  ``withheld``: the
    external reader may not see this reading's counts (None: decided by n,
    fewer than 11 is too few)."""
    wording = claim_wording(reading.definition, reading.timepoint, reading.target)
    target = target_text(reading.target)
    if test.verdict == "no data":
        return f"No patient counts under this reading yet, so “{wording}” cannot be checked."
    if withheld:
        return (f"Too few patients count under this reading to report a rate, so “{wording}” "
                f"cannot be stated.")
    if withheld is None and test.n < SMALL_CELL:
        return (f"Fewer than {SMALL_CELL} patients count under this reading: too few to report "
                f"a rate, so “{wording}” cannot be stated.")
    flag = (f"Only {count(test.n)} patients count under this reading: too few to report "
            f"outside the clinical team. " if test.n < SMALL_CELL else "")
    if test.verdict == "supported":
        return (f"{flag}The data support “{wording}”: even the one-sided 95% lower bound of the "
                f"rate, {percent(test.lower_bound)}, is above {target}.")
    if test.verdict == "contradicted":
        return (f"{flag}The data contradict “{wording}”: even the one-sided 95% upper bound of "
                f"the rate, {percent(test.upper_bound)}, is below {target}.")
    return (f"{flag}The data can neither confirm nor rule out “{wording}”: the one-sided 95% "
            f"bounds, {percent(test.lower_bound)} to {percent(test.upper_bound)}, include "
            f"{target}.")


def method_text(test: stats.ClaimTest, numbers: bool | None = None) -> str:
    """How the verdict is reached; with the test's numbers when ``numbers``
    (None: when n is 11 or more)."""
    target = target_text(test.target)
    text = (f"One-sided exact binomial test against {target} (alternative: the true rate is "
            f"above {target})")
    if numbers if numbers is not None else test.n >= SMALL_CELL:
        text += (f": p = {p_value(test.p_value)}; one-sided 95% exact bounds "
                 f"{percent(test.lower_bound)} (lower) and {percent(test.upper_bound)} (upper)")
    return (text + f". Supported when the lower bound is above {target}, contradicted when the "
            f"upper bound is below {target}, inconclusive otherwise. The 95% CI beside the rate "
            f"is the two-sided Wilson interval.")


# --------------------------------------------------------------------------
# the report behind the page and the memo


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
        display=_wilson(test.responders, test.n), too_few=too_few,
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


# --------------------------------------------------------------------------
# the external publication: every reading, protected as one


#: Definitions whose responders are among another's (looser, stricter).
NESTED_RESPONDERS = (("pain30", "pain50"), ("mme50", "mme_stop"), ("pain30", "claim"),
                     ("mme50", "claim"))
#: Definitions that count the same patients (the same baselines needed).
SAME_PATIENTS = (("pain30", "pain50"), ("pain30", "pain2pt"), ("mme50", "mme_stop"))


def external_publication(snap: Snapshot) -> disclosure.Tables:
    """Every count the external claim check and memo can show, for every
    reading, with the sums an outsider knows, protected as one publication
    (computed once per data version)."""
    return snap.memo("claim_publication", lambda: _publication(snap))


_PUBLISHED: dict = {}   # (database, data version) -> Tables, for other snapshots of the same data


def _publication(snap: Snapshot) -> disclosure.Tables:
    try:
        key = (str(snap.db_path), snap.version)
        hash(key)
    except TypeError:
        key = None
    if key in _PUBLISHED:
        return _PUBLISHED[key]
    tables = _build_publication(snap)
    if key is not None:
        while len(_PUBLISHED) >= 4:
            _PUBLISHED.pop(next(iter(_PUBLISHED)))
        _PUBLISHED[key] = tables
    return tables


def _build_publication(snap: Snapshot) -> disclosure.Tables:
    tables = disclosure.Tables()
    values = tables.values

    def rest(total, parts, key) -> None:
        value = values[total] - sum(values[p] for p in parts)
        if value >= 0:
            if key not in values:
                tables.cell(key, value, published=False)
            if values[key] == value:
                tables.add_sum(total, [*parts, key])

    def same(a, b) -> None:
        if a in values and b in values and values[a] == values[b]:
            tables.add_sum(a, [b])

    readings = [(t, d, p) for t in definitions.TIMEPOINTS for d in definitions.DEFINITIONS
                for p in definitions.POPULATIONS]
    for group_by in ("condition", "site"):
        counts = outcomes.counts_by_condition(snap, Filters(), group_by)
        found = {(r.timepoint, r.definition, r.population, r.group): (int(r.n), int(r.responders))
                 for r in counts.itertuples()}
        groups = sorted({g for *_, g in found} - {"All"}) + ["All"]
        for group in groups:
            dim = "all" if group == "All" else group_by
            for reading in readings:
                if dim != "all" and reading[2] != "itt":
                    continue        # completers-only is not broken down for outsiders
                n, k = found.get((*reading, group), (0, 0))
                n_key, k_key = ("n", *reading, dim, group), ("k", *reading, dim, group)
                tables.cell(n_key, n)
                tables.cell(k_key, k)
                rest(n_key, [k_key], ("not responders", *reading, dim, group))
            for t in definitions.TIMEPOINTS:
                for d in definitions.DEFINITIONS:
                    if dim == "all":
                        rest(("n", t, d, "itt", dim, group),
                             [("n", t, d, "completers", dim, group)], ("missing", t, d, dim, group))
                        same(("k", t, d, "itt", dim, group), ("k", t, d, "completers", dim, group))
                for p in (definitions.POPULATIONS if dim == "all" else ("itt",)):
                    for a, b in SAME_PATIENTS:
                        same(("n", t, a, p, dim, group), ("n", t, b, p, dim, group))
                    for wider in ("pain30", "mme50"):   # the claim needs both baselines
                        rest(("n", t, wider, p, dim, group), [("n", t, "claim", p, dim, group)],
                             ("one baseline", t, wider, p, dim, group))
                    for wider, narrower in NESTED_RESPONDERS:
                        rest(("k", t, wider, p, dim, group), [("k", t, narrower, p, dim, group)],
                             ("responders beyond", t, wider, narrower, p, dim, group))
            for d in definitions.DEFINITIONS:   # due later is due earlier (ITT)
                for earlier, later in zip(definitions.TIMEPOINTS, definitions.TIMEPOINTS[1:]):
                    rest(("n", earlier, d, "itt", dim, group), [("n", later, d, "itt", dim, group)],
                         ("due between", earlier, later, d, dim, group))
        for reading in (r for r in readings if r[2] == "itt"):
            for measure in ("n", "k"):
                tables.add_sum((measure, *reading, "all", "All"),
                               [(measure, *reading, group_by, g) for g in groups if g != "All"])
    # the patient flow of every reading (the whole program)
    flows = outcomes.exclusion_counts(snap)
    treated = None
    for (t, d), row in flows.items():
        if treated is None:
            treated = tables.cell(("treated",), row["treated"])
        parts = []
        for reason in (*EXCLUSION_LABELS, "not_yet_due"):
            key = ("not_yet_due", t, d) if reason == "not_yet_due" else ("excluded", reason, t, d)
            tables.cell(key, row[reason])
            parts.append(key)
        rest(treated, [*parts, ("n", t, d, "itt", "all", "All")], ("flow rest", t, d))
        missing = ("missing", t, d, "all", "All")    # shown in the flow
        if missing in values:
            tables.cell(missing, values[missing])
        for earlier in definitions.TIMEPOINTS[:definitions.TIMEPOINTS.index(t)]:
            for reason in EXCLUSION_LABELS:
                same(("excluded", reason, t, d), ("excluded", reason, earlier, d))
    # What the claim check answers first: the claim's own n and responders over
    # the whole program at each timepoint, and the treated patients; a
    # complement is taken from the breakdowns and the other definitions before
    # these (mme50's n 916 beside the claim's 907 would give away the 9 with one
    # baseline: mme50's n is withheld, not the claim's).
    tables.headline = {key for key in values
                       if key[0] == "treated" or (key[0] in ("n", "k") and key[2] == "claim"
                                                  and key[-2:] == ("all", "All"))}
    tables.protect()
    return tables


# --------------------------------------------------------------------------
# the memo's content


@dataclass(frozen=True)
class MemoTable:
    title: str
    columns: list[str]
    rows: list[list[str]]
    verdicts: list[list[str | None]] | None = None   # per cell: colour it by this verdict
    note: str = ""


@dataclass(frozen=True)
class Memo:
    title: str
    claim: str
    reading: str
    verdict: str
    verdict_text: str
    facts: list[tuple[str, str]]          # label, value
    flow_text: str
    tables: list[MemoTable]
    defensible: list[str]                 # the strongest wording, highest lower bound first
    supported: list[str]
    not_supported: list[str]
    warnings: list[str]                   # completers-only passes but ITT does not
    fingerprint: str
    generated: str
    footnotes: list[str]
    synthetic: bool = False               # invented data: every page says so


def sensitivity_table(frame: pd.DataFrame) -> MemoTable:
    """Definitions down, timepoints × populations across, rate and verdict colour."""
    columns = ["Definition"]
    keys = []
    for population in definitions.POPULATIONS:
        for timepoint in definitions.TIMEPOINTS:
            label = "ITT" if population == "itt" else OPTIMISTIC
            columns.append(f"{definitions.TIMEPOINT_LABELS[timepoint]}, {label}")
            keys.append((timepoint, population))
    index = {(r.timepoint, r.definition, r.population): r for r in frame.itertuples()}
    rows, verdicts = [], []
    for definition in definitions.DEFINITIONS:
        row = [f"{definitions.DEFINITION_LABELS[definition]} ({definition})"]
        colours: list[str | None] = [None]
        for timepoint, population in keys:
            r = index[(timepoint, definition, population)]
            if r.too_few or r.n in (0, None):
                row.append(r.rate_text)
            else:
                row.append(f"{r.rate_text} of {count(r.n)} ({r.at_least_text})")
            colours.append(r.verdict if r.verdict in VERDICTS else None)
        rows.append(row)
        verdicts.append(colours)
    return MemoTable("Sensitivity: every reading of the claim", columns, rows, verdicts,
                     note=f"Each cell: responder rate of the patients counted (n) and, in "
                          f"brackets, the defensible figure (≥ the one-sided 95% exact lower "
                          f"bound: at least that share did it), coloured by its verdict. "
                          f"“{TOO_FEW}”: too few patients or responders to report, no "
                          f"verdict. "
                          f"Completers-only cells are {OPTIMISTIC}: they leave out patients "
                          f"who missed the follow-up.")


def breakdown_table(frame: pd.DataFrame, title: str, group_label: str,
                    target: float) -> MemoTable:
    rows, verdicts = [], []
    for r in frame.itertuples():
        verdict = "–" if r.suppressed or r.verdict is None else VERDICT_LABELS[r.verdict]
        rows.append([r.group, r.patients, r.rate_text, verdict])
        verdicts.append([None, None, None,
                         r.verdict if not r.suppressed and r.verdict in VERDICTS else None])
    return MemoTable(title, [group_label, "Patients", "Rate (95% CI)",
                             f"Against {target_text(target)}"], rows, verdicts,
                     note=f"“{SUPPRESSED}”: withheld, a count from 1 to {SMALL_CELL - 1} or one that would let "
                          f"such a count be worked out from the counts shown.")


def memo_data(report: ClaimReport, fingerprint: str,
              generated: dt.datetime | None = None) -> Memo:
    """The substantiation memo's content: only text fit for outsiders."""
    generated = generated or dt.datetime.now()
    reading = report.reading
    first, last = report.period
    filters = report.filters
    facts = [
        ("Claim as published", f"“{CLAIM_AS_PUBLISHED[0].upper()}{CLAIM_AS_PUBLISHED[1:]}”"),
        ("Reading tested", reading.describe()),
        ("Claim wording tested", claim_wording(reading.definition, reading.timepoint,
                                               reading.target)),
        ("Patients in view", filters.describe()),
        ("Data period", "first infusions " + (
            f"{month_year(first)} to {month_year(last)}" if first and last and not report.too_few
            else "–") + " (patients counted)"),
        ("Data cutoff", long_date(report.cutoff) + " (latest visit in the data)"),
        ("Patients counted (n)", report.n_text()),
        ("Responder rate (95% CI, Wilson)", report.rate_text()),
        ("One-sided 95% exact bounds", report.bounds_text()),
        ("Defensible figure (rounded down from the lower bound)", report.at_least_text()),
        ("Test", report.test_text),
        ("p-value (one-sided exact binomial)", report.p_text()),
    ]
    flow_rows = [[("    " * max(0, r.level - 1)) + r.step, r.shown]
                 for r in report.flow.itertuples()]
    tables = [
        MemoTable("Who is counted", ["Who", "Patients"], flow_rows,
                  note=f"“{SUPPRESSED}”: withheld, a count from 1 to {SMALL_CELL - 1} or one that would let "
                          f"such a count be worked out from the counts shown."),
        sensitivity_table(report.sensitivity),
        breakdown_table(report.by_condition, "By condition (this reading)", "Condition",
                        reading.target),
        breakdown_table(report.by_site, "By site (this reading)", "Site", reading.target),
    ]
    defensible = [s.defensible for s in report.defensible]
    supported = [s.text for s in report.statements if s.kind == "supported"]
    not_supported = [s.text for s in report.statements
                     if s.kind in ("not supported", "too few", "no data")]
    warnings = [s.text for s in report.statements if s.kind == "completers only"]
    footnotes = [
        "Definitions (SPEC §3): a responder’s pain fell by at least 30% (pain30) or 50% "
        "(pain50) or 2 points (pain2pt) from the last score in the 30 days before the first "
        "infusion; their daily opioid dose (morphine milligram equivalents) fell by at least "
        "half (mme50) or to zero (mme_stop) from the last dose in the 90 days before; claim = "
        "pain30 and mme50. Follow-up values come from the visit closest to the target day "
        "inside its window.",
        "ITT (intention to treat) counts every eligible patient whose follow-up window has "
        "closed; one without the follow-up counts as not improved. Completers-only counts only "
        "patients with the follow-up and overstates a program that loses patients. An early "
        "follow-up of a patient whose window is still open is provisional and not counted.",
        "Defensible figure: the one-sided 95% exact (Clopper–Pearson) lower bound L of a "
        "reading’s rate, rounded down. “At least L% of the N patients …” is the strongest "
        "wording the data support for that reading; readings of fewer than "
        f"{SMALL_CELL} patients are too few to tell.",
        f"Small cells: the memo covers the whole program, whatever filters were chosen; no "
        f"count from 1 to {SMALL_CELL - 1} is shown or can be worked out from the counts shown "
        "(totals, ITT and completers, one definition beside another: complementary "
        "suppression across every reading as one publication). No patient identifier or "
        "free text appears in this memo.",
        "Data fingerprint: SHA-256 of the visit records in a canonical order (ingest "
        "bookkeeping left out). The same data always give the same fingerprint.",
    ]
    return Memo(
        title="Claim substantiation memo", claim=CLAIM_AS_PUBLISHED, reading=reading.describe(),
        verdict=report.verdict, verdict_text=report.verdict_text, facts=facts,
        flow_text=report.flow_text, tables=tables, defensible=defensible, supported=supported,
        not_supported=not_supported, warnings=warnings, fingerprint=fingerprint,
        generated=f"{long_date(generated.date())}, {generated:%H:%M}", footnotes=footnotes,
        synthetic=report.synthetic)


