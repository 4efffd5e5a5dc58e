"""Chart points a page may draw, and what it was left without (issue 14, 19).

A point (a week's median, a month's share, a timepoint's rate) is drawn only
from at least :data:`analysis.core.audience.SMALL_CELL` patients: from fewer it is
noise (a month with two patients jumps from 0% to 100%) and, for anyone
outside the clinical team, a small cell.  The builders in ``analysis`` apply
the rule with :func:`enough` and hand the page a :class:`Chart`: the points
already thinned, the sentence saying which were left out, or why there is no
chart at all.  A page draws the points and prints the notes; it never counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from analysis.core.audience import SMALL_CELL

#: The fewest patients (or visits) a chart point is drawn from.
MIN_PER_POINT = SMALL_CELL


def enough(n) -> bool:
    """Whether a point from ``n`` patients is drawn (False for a missing n)."""
    try:
        return n is not None and n == n and int(n) >= MIN_PER_POINT
    except (TypeError, ValueError):
        return False


def not_drawn_text(points: Iterable[str], counted: str = "patients") -> str:
    """"Not drawn, from fewer than 11 patients: weeks 3–5." ("" when none)."""
    points = [p for p in points if p]
    if not points:
        return ""
    return f"Not drawn, from fewer than {MIN_PER_POINT} {counted}: " + "; ".join(points) + "."


def nothing_text(what: str, counted: str = "patients") -> str:
    """Instead of an empty chart: what is missing, and why."""
    return (f"{what}: no point has {MIN_PER_POINT} or more {counted} with these filters, so "
            "there is nothing reliable to draw. Widen the filters in the sidebar.")


@dataclass(frozen=True)
class Chart:
    """What a page draws: ``points`` (a DataFrame, or whatever the builder
    says) with every point from too few already left out, ``not_drawn`` (the
    sentence naming them, "" when none) and ``nothing`` (why no chart is
    drawn at all, "" when one is)."""
    points: Any
    not_drawn: str = ""
    nothing: str = ""

    @property
    def drawn(self) -> bool:
        return not self.nothing


def ranges(numbers) -> str:
    """[1, 2, 3, 7, 9, 10] -> "1–3, 7, 9–10"."""
    numbers = sorted(int(n) for n in numbers)
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)


def month_list(months) -> str:
    """"April 2024, May 2024 and June 2025"."""
    names = [m.strftime("%B %Y") for m in months]
    if not names:
        return ""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
