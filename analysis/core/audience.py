"""Who a result is for, and what that audience may see (SPEC §2, §4).

The one policy every result builder asks; pages never decide it.  A user's
role gives their audience (:func:`for_role`), and every builder that feeds a
page, a download, a report or a memo takes an :class:`Audience` and returns
results already made safe for it:

* ``clinical`` — the clinical team: everything, down to one patient, raw
  adverse-event text and raw condition labels included;
* ``analyst``  — internal aggregates without suppression and the data-quality
  tables, but no patient identifier and no free text anywhere;
* ``external`` — anyone outside the clinical team (marketing, the external
  report, the substantiation memo): the fixed tables only (whole program; by
  condition; by site; by quarter), never an ad-hoc filter, every count from 1
  to 10 suppressed with its complements so that none can be derived
  (:mod:`analysis.core.disclosure`), controlled categories only.

``SMALL_CELL`` is the one small-cell threshold of the product.
"""

from __future__ import annotations

from enum import Enum

SMALL_CELL = 11                     # groups and counts under 11 are "too few to report"
SUPPRESSED = "too few to report"    # what an external reader sees instead of a hidden count
TOO_FEW_TEXT = f"fewer than {SMALL_CELL}"


class Audience(str, Enum):
    CLINICAL = "clinical"
    ANALYST = "analyst"
    EXTERNAL = "external"

    def __str__(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        return AUDIENCE_LABELS[self]

    @property
    def external(self) -> bool:
        """Outside the clinical team: fixed tables, small cells suppressed."""
        return self is Audience.EXTERNAL

    @property
    def internal(self) -> bool:
        return not self.external

    @property
    def sees_patients(self) -> bool:
        """Patient identifiers, patient-level rows, raw text of a row."""
        return self is Audience.CLINICAL

    @property
    def sees_free_text(self) -> bool:
        """Adverse-event text and raw condition labels as exported."""
        return self is Audience.CLINICAL


AUDIENCE_LABELS = {
    Audience.CLINICAL: "Clinical team",
    Audience.ANALYST: "Internal (analysts)",
    Audience.EXTERNAL: "External (small cells hidden)",
}

#: The audience of each role's own view.
ROLE_AUDIENCE = {
    "clinical": Audience.CLINICAL,
    "analyst": Audience.ANALYST,
    "marketing": Audience.EXTERNAL,
}


def for_role(role: str) -> Audience:
    """The audience of a role; an unknown role gets the external view."""
    return ROLE_AUDIENCE.get(role, Audience.EXTERNAL)


def choices_for(role: str) -> tuple[Audience, ...]:
    """The audiences a role may produce a report or memo for: its own, and
    the external one (a report meant to leave the clinic)."""
    own = for_role(role)
    return (own,) if own.external else (own, Audience.EXTERNAL)


def parse(value: "Audience | str") -> Audience:
    """An :class:`Audience` from its name (``clinical``, ``analyst``,
    ``external``); ValueError naming the allowed values otherwise."""
    if isinstance(value, Audience):
        return value
    try:
        return Audience(str(value).strip().lower())
    except ValueError:
        raise ValueError(f"audience must be one of {', '.join(a.value for a in Audience)}, "
                         f"not {value!r}") from None


def too_few(n: int | None) -> bool:
    """A group too small to report a rate for (n < 11): flagged for internal
    readers, suppressed for external ones."""
    return n is not None and n < SMALL_CELL


def small(count: int | None) -> bool:
    """A count an external reader may never see or derive (1 to 10)."""
    return count is not None and 0 < count < SMALL_CELL
