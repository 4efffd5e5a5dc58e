"""The patient filters every page, report and CLI command shares, and the
calendar quarters they are cut by.

A :class:`Filters` narrows the patient-level models by site, condition,
route and first-infusion date; :meth:`Filters.sql` writes that as a WHERE
predicate of column names and ``$parameters`` only, never a user's value.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


@dataclass(frozen=True)
class Filters:
    """Patient-level filters shared by every page, report and CLI command."""
    sites: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    index_from: dt.date | None = None
    index_to: dt.date | None = None

    @classmethod
    def from_quarters(cls, first: str | None = None, last: str | None = None,
                      **kwargs) -> "Filters":
        return cls(index_from=quarter_bounds(first)[0] if first else None,
                   index_to=quarter_bounds(last)[1] if last else None, **kwargs)

    def sql(self, alias: str = "") -> tuple[str, dict]:
        """A WHERE predicate over a patient-level model, and its parameters."""
        prefix = f"{alias}." if alias else ""
        clauses, params = ["true"], {}
        for name, column in (("sites", "site"), ("conditions", "condition"), ("routes", "route")):
            values = getattr(self, name)
            if values:
                clauses.append(f"list_contains(${name}, {prefix}{column})")
                params[name] = list(values)
        if self.index_from:
            clauses.append(f"{prefix}index_date >= $index_from")
            params["index_from"] = self.index_from
        if self.index_to:
            clauses.append(f"{prefix}index_date <= $index_to")
            params["index_to"] = self.index_to
        return " AND ".join(clauses), params

    def describe(self) -> str:
        parts = []
        if self.sites:
            parts.append("sites: " + ", ".join(self.sites))
        if self.conditions:
            parts.append("conditions: " + ", ".join(self.conditions))
        if self.routes:
            parts.append("routes: " + ", ".join(self.routes))
        if self.index_from or self.index_to:
            parts.append(f"first infusion {self.index_from or '…'} to {self.index_to or '…'}")
        return "; ".join(parts) or "all patients"


def quarter_bounds(quarter: str) -> tuple[dt.date, dt.date]:
    """``"2026Q3"`` -> (2026-07-01, 2026-09-30).  ValueError when malformed."""
    match = _QUARTER.match(str(quarter).strip().upper())
    if not match:
        raise ValueError(f"not a quarter: {quarter!r} (expected e.g. 2026Q3)")
    year, number = int(match.group(1)), int(match.group(2))
    start = dt.date(year, 3 * number - 2, 1)
    end = (dt.date(year + 1, 1, 1) if number == 4 else dt.date(year, 3 * number + 1, 1)) \
        - dt.timedelta(days=1)
    return start, end


def quarter_of(day: dt.date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def previous_quarter(quarter: str, back: int = 1) -> str:
    start, _ = quarter_bounds(quarter)
    index = start.year * 4 + (start.month - 1) // 3 - back
    return f"{index // 4}Q{index % 4 + 1}"
