"""The claim check's words: what the data let the clinic say about each
reading of the marketing claim (issue 5, SPEC §4).

* :func:`statement` / :func:`statements`: one sentence per reading
  (timepoint × definition × population): what the data support, or why the
  wording is not supported and what the data show instead, each with its
  *defensible figure*: the one-sided 95% exact lower bound L and the
  strongest wording it supports, "At least L% of the N patients who reached
  three months reported at least 30% less pain".  Pure functions.
* :func:`strongest`: the readings with the highest L, what "What you can
  say" leads with.
* :func:`verdict_text`, :func:`method_text`: why a verdict is what it is,
  and how it is reached.

What a reader may see (``shown``) is :mod:`analysis.claims.publication`'s.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from analysis.core import definitions, stats
from analysis.core.audience import SMALL_CELL
from analysis.claims.publication import INTERNAL, Shown
from analysis.core.formatting import count, month_year, p_value, percent, rate_with_ci
from analysis.metrics.outcomes import SensitivityCell

CLAIM_AS_PUBLISHED = ("over 70% of patients have meaningful relief and can significantly "
                      "decrease their use of opioid medications.")


DEFAULT_TARGET = 0.70


# SPEC §4: for the external audience a reading of 1-10 patients is "too few
# to tell", never a verdict (this module speaks to the external audience).
TOO_FEW = "too few to tell"


# SUPPRESSED ("too few to report"): a withheld group or count (analysis.audience)
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
EXCLUSION_LABELS = dict(zip(definitions.BASELINE_EXCLUSIONS, (
    "No pain score at the start of treatment",
    "Pain 0 at the start of treatment",
    "Opioid use at the start of treatment not recorded",
    "Not taking opioids at the start of treatment",
)))


# --------------------------------------------------------------------------
# readings and their wording


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
