"""The shared filters and outcome settings a user chose (:class:`Chosen`),
and their place in the URL's query parameters, so a view can be shared as a
link and survives a reload (``?site=Denver&tp=6m``).

The URL is read once per session (or data version) by the sidebar
(``ui/sidebar.py``) and written back on every run (:func:`write_url`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import streamlit as st

from analysis.core import definitions
from analysis.metrics import outcomes
from analysis.core.filters import Filters
from ui import pages

#: Each setting's query parameter (sites, conditions and routes repeat).
PARAM = {"sites": "site", "conditions": "condition", "routes": "route",
         "from": "from", "to": "to", "timepoint": "tp", "definition": "def",
         "population": "pop", "ci": "ci"}
DEFAULTS = {"timepoint": "3m", "definition": "pain30", "population": "itt", "ci": "wilson"}
ALLOWED = {"timepoint": definitions.TIMEPOINTS, "definition": definitions.DEFINITIONS,
           "population": definitions.POPULATIONS, "ci": definitions.CI_METHODS}


@dataclass(frozen=True)
class Chosen:
    """The shared filters and outcome settings the user chose."""
    sites: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    quarters: tuple[str, str] | None = None     # None: every cohort
    timepoint: str = "3m"
    definition: str = "pain30"
    population: str = "itt"
    ci: str = "wilson"

    @classmethod
    def from_url(cls, params, options: outcomes.FilterOptions) -> "Chosen":
        quarters = options.quarters
        first, last = params.get(PARAM["from"]), params.get(PARAM["to"])
        chosen_range = None
        if quarters and (first in quarters or last in quarters):
            chosen_range = (first if first in quarters else quarters[0],
                            last if last in quarters else quarters[-1])
        return cls(
            sites=tuple(params.get_all(PARAM["sites"])),
            conditions=tuple(params.get_all(PARAM["conditions"])),
            routes=tuple(params.get_all(PARAM["routes"])),
            quarters=chosen_range,
            **{name: params.get(PARAM[name]) or default
               for name, default in DEFAULTS.items()},
        ).valid(options)

    def valid(self, options: outcomes.FilterOptions) -> "Chosen":
        """Only values the data has (the options change when the data does)."""
        quarters = options.quarters
        chosen_range = self.quarters
        if chosen_range is not None:
            first, last = chosen_range
            if first not in quarters or last not in quarters:
                chosen_range = None
            elif quarters.index(first) > quarters.index(last):
                chosen_range = (last, first)
        if chosen_range is not None and chosen_range == (quarters[0], quarters[-1]):
            chosen_range = None
        return dataclasses.replace(
            self,
            sites=tuple(v for v in self.sites if v in options.sites),
            conditions=tuple(v for v in self.conditions if v in options.conditions),
            routes=tuple(v for v in self.routes if v in options.routes),
            quarters=chosen_range,
            **{name: getattr(self, name) if getattr(self, name) in ALLOWED[name] else default
               for name, default in DEFAULTS.items()})

    def filters(self, controls=pages.ALL_CONTROLS) -> Filters:
        """The patient filters of the controls that act on a page."""
        patients = "patients" in controls
        quarters = self.quarters if "cohort" in controls else None
        return Filters.from_quarters(
            quarters[0] if quarters else None, quarters[1] if quarters else None,
            sites=self.sites if patients else (), conditions=self.conditions if patients else (),
            routes=self.routes if patients else ())

    def url(self) -> dict[str, Any]:
        wanted: dict[str, Any] = {}
        for name in ("sites", "conditions", "routes"):
            if getattr(self, name):
                wanted[PARAM[name]] = list(getattr(self, name))
        if self.quarters:
            wanted[PARAM["from"]], wanted[PARAM["to"]] = self.quarters
        for name, default in DEFAULTS.items():
            if getattr(self, name) != default:
                wanted[PARAM[name]] = getattr(self, name)
        return wanted


def write_url(chosen: Chosen) -> None:
    """The chosen view in the URL: every control's value, those a page does
    not draw included, so a reload or a copied link gives the same view."""
    wanted = chosen.url()
    # Only the shared filters' own keys are managed; others (a page's
    # ?patient=...) are kept.
    owned = set(PARAM.values())
    for key in list(st.query_params.keys()):
        if key in owned and key not in wanted:
            del st.query_params[key]
    for key, value in wanted.items():
        current = st.query_params.get_all(key) if isinstance(value, list) else st.query_params.get(key)
        if current != value:
            st.query_params[key] = value
