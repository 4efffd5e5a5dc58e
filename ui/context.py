"""What every page needs: the data source, its snapshot, the shared filters.

``dashboard.py`` draws the shared sidebar once per run and stores a
:class:`PageContext` in the session; pages call :func:`get` and then only
call ``analysis`` and draw.  Filters live in the URL's query parameters so a
view can be shared as a link and survives a reload.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import streamlit as st
try:  # Streamlit internals; without them the fallback link still works
    from streamlit.runtime.pages_manager import PagesManager
except ImportError:  # pragma: no cover
    PagesManager = None

from analysis import audience, outcomes, store
from analysis.formatting import long_date
from analysis.outcomes import Filters
from analysis.sources import DataSource
from ui import pages, safe
from ui.pages import PAGES

ROOT = Path(__file__).resolve().parent.parent

CONTEXT_KEY = "page_context"

#: One DEBUG line per computed (not cached) ``analysis`` call, with its time:
#: ``python bench/bench_pages.py --profile`` prints them.
timing_log = logging.getLogger("outcomes.timing")


@dataclass
class PageContext:
    source: DataSource
    snap: store.Snapshot
    filters: Filters
    timepoint: str = "3m"
    definition: str = "pain30"
    population: str = "itt"
    ci: str = "wilson"
    role: str = "clinical"
    user: str | None = None
    controls: frozenset = pages.ALL_CONTROLS   # the shared controls that act on this page

    @property
    def data_key(self) -> tuple:
        return (str(self.source.path), self.snap.version)

    def call(self, function: Callable, *args, **kwargs) -> Any:
        """Run an ``analysis`` function on the snapshot, cached per data version."""
        name = f"{function.__module__}.{function.__qualname__}"
        return _cached_call(self.snap, self.data_key, function, name, args,
                            tuple(sorted(kwargs.items())))

    @property
    def audience(self) -> audience.Audience:
        """Who this view is for: the one policy (analysis.audience) decides it
        from the role, and every builder takes it."""
        return audience.for_role(self.role)

    @property
    def external(self) -> bool:
        """Views for people outside the clinical team suppress small cells."""
        return self.audience.external

    @property
    def setting_text(self) -> str:
        """The outcome settings in force on this page ("" when none acts)."""
        parts = []
        if "definition" in self.controls:
            parts.append(f"{outcomes.DEFINITION_LABELS[self.definition]} ({self.definition})")
        if "timepoint" in self.controls:
            parts.append(f"at {outcomes.TIMEPOINT_LABELS[self.timepoint]}")
        text = " ".join(parts)
        if "population" in self.controls:
            population = "ITT" if self.population == "itt" else "completers only"
            text = f"{text}, {population}" if text else population
        return text


@st.cache_data(show_spinner=False, max_entries=512)
def _cached_call(_snap, data_key, _function, function_name, args, kwargs):
    """Cached per data version, function name and arguments (the snapshot
    and the function object itself are identified by those)."""
    start = time.perf_counter()
    result = _function(_snap, *args, **dict(kwargs))
    timing_log.debug("%.3f s  %s", time.perf_counter() - start, function_name)
    return result


_PAGE_FILES = [(spec, (ROOT / spec.path).resolve()) for spec in PAGES]


def get() -> PageContext:
    """The context of this run; stops a page the user's role may not open.

    The navigation already leaves such pages out; this second check guards a
    page that is run some other way (a stale link, a test harness).
    """
    context = st.session_state.get(CONTEXT_KEY)
    if context is None:
        # Only dashboard.py (after sign-in) sets the context.  Streamlit runs
        # a pages/ file directly when a fresh server's first visitor opens its
        # URL (its multipage "v1" mode, until dashboard.py's st.navigation has
        # run once in the process).  Switch that mode off and run again,
        # through dashboard.py and its sign-in; failing that, show the way in.
        if PagesManager is not None and not st.session_state.get("_rerouted"):
            st.session_state["_rerouted"] = True
            PagesManager.uses_pages_directory = False
            st.rerun()
        st.warning("This link opens a page directly. Start from the dashboard, which signs "
                   "you in and sets the filters.")
        st.markdown("[Open the dashboard](/)")
        st.stop()
    # The calling page's file (sys._getframe, not inspect.stack(), which
    # reads the source of every frame on the stack).
    caller = Path(sys._getframe(1).f_code.co_filename).resolve()
    for spec, path in _PAGE_FILES:
        if path == caller and context.role not in spec.roles:
            st.warning(f"The {spec.title} page is not available to the {context.role} role.")
            st.stop()
    return context


# --------------------------------------------------------------------------
# shared sidebar
#
# The chosen filters live in one place, ``st.session_state[FILTERS_KEY]``
# (:class:`Chosen`), seeded from the URL once per session (or data version)
# and written back to the URL on every run, so a view survives navigation and
# reloads and a copied link reproduces it.  Each widget is drawn with the
# chosen value as its default and its answer becomes the chosen value; a page
# that does not use a control does not draw it (its value is kept, in the
# session and the URL, for the pages that do).  No widget's state is ever
# assigned by code: Streamlit reads a range slider as a range only from its
# ``value`` default, and the old cycle (state seeded and repaired by code, no
# ``value``) read the dragged range back as one quarter, which the repair then
# reset to the full range: the cohort slider snapped back on release.

FILTERS_KEY = "shared_filters"
SEEDED_KEY = "shared_filters_seeded"

_PARAM = {"sites": "site", "conditions": "condition", "routes": "route",
          "from": "from", "to": "to", "timepoint": "tp", "definition": "def",
          "population": "pop", "ci": "ci"}
_DEFAULTS = {"timepoint": "3m", "definition": "pain30", "population": "itt", "ci": "wilson"}
_ALLOWED = {"timepoint": outcomes.TIMEPOINTS, "definition": outcomes.DEFINITIONS,
            "population": outcomes.POPULATIONS, "ci": outcomes.CI_METHODS}
#: The widget key of each control (none is ever assigned by code).
_KEYS = {"sites": "f_sites", "conditions": "f_conditions", "routes": "f_routes",
         "quarters": "f_quarters", "timepoint": "f_timepoint", "definition": "f_definition",
         "population": "f_population", "ci": "f_ci"}


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
        first, last = params.get(_PARAM["from"]), params.get(_PARAM["to"])
        chosen_range = None
        if quarters and (first in quarters or last in quarters):
            chosen_range = (first if first in quarters else quarters[0],
                            last if last in quarters else quarters[-1])
        return cls(
            sites=tuple(params.get_all(_PARAM["sites"])),
            conditions=tuple(params.get_all(_PARAM["conditions"])),
            routes=tuple(params.get_all(_PARAM["routes"])),
            quarters=chosen_range,
            **{name: params.get(_PARAM[name]) or default
               for name, default in _DEFAULTS.items()},
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
            **{name: getattr(self, name) if getattr(self, name) in _ALLOWED[name] else default
               for name, default in _DEFAULTS.items()})

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
                wanted[_PARAM[name]] = list(getattr(self, name))
        if self.quarters:
            wanted[_PARAM["from"]], wanted[_PARAM["to"]] = self.quarters
        for name, default in _DEFAULTS.items():
            if getattr(self, name) != default:
                wanted[_PARAM[name]] = getattr(self, name)
        return wanted


def _as_chosen(value):
    return tuple(value) if isinstance(value, list) else value


def _take(name: str) -> None:
    """A widget's change callback (runs before the script): the user's new
    value becomes the chosen one."""
    state = st.session_state
    chosen = state.get(FILTERS_KEY)
    if isinstance(chosen, Chosen) and _KEYS[name] in state:
        state[FILTERS_KEY] = dataclasses.replace(chosen, **{name: _as_chosen(state[_KEYS[name]])})


def _widget(name: str, chosen_value) -> dict:
    """Forget a widget's own state when it disagrees with the chosen value
    (the data changed, or a link was opened in this session), so that it is
    drawn anew with the chosen value as its default; the keyword arguments
    that tie the widget to the chosen value."""
    key = _KEYS[name]
    state = st.session_state
    if key in state and _as_chosen(state[key]) != chosen_value:
        del state[key]
    return {"key": key, "on_change": _take, "args": (name,)}


def sidebar(source: DataSource, snap: store.Snapshot, role: str = "clinical",
            user: str | None = None, page: pages.PageSpec | None = None) -> PageContext:
    """Draw the shared controls that act on ``page`` and return the context
    every page reads.  The external audience gets none: it sees fixed tables
    over the whole program at the default settings, never an ad-hoc filter
    (two filter states could differ by one patient; SPEC §4)."""
    controls = pages.controls_for(page, audience.for_role(role))
    options = _cached_call(snap, (str(source.path), snap.version), outcomes.filter_options,
                           "analysis.outcomes.filter_options", (), ())
    state = st.session_state
    seed_key = (str(source.path), snap.version)
    chosen = state.get(FILTERS_KEY)
    if state.get(SEEDED_KEY) != seed_key or not isinstance(chosen, Chosen):
        chosen = Chosen.from_url(st.query_params, options) if not isinstance(chosen, Chosen) \
            else chosen.valid(options)
        state[SEEDED_KEY] = seed_key
    chosen = chosen.valid(options)
    if audience.for_role(role).external:
        chosen = Chosen()   # the fixed tables: not the URL's, not another session's
    bar = st.sidebar
    quarters = options.quarters or ["–"]

    if "patients" in controls or "cohort" in controls:
        bar.header("Filters")
    if "patients" in controls:
        for name, label, values, placeholder in (
                ("sites", "Sites", options.sites, "All sites"),
                ("conditions", "Conditions", options.conditions, "All conditions"),
                ("routes", "Routes", options.routes, "All routes")):
            picked = bar.multiselect(label, values, default=list(getattr(chosen, name)),
                                     placeholder=placeholder,
                                     **_widget(name, getattr(chosen, name)))
            chosen = dataclasses.replace(chosen, **{name: tuple(picked)})
    if "cohort" in controls and len(quarters) > 1:
        full = (quarters[0], quarters[-1])
        picked = bar.select_slider("Cohort (quarter of first infusion)", quarters,
                                   value=chosen.quarters or full,
                                   **_widget("quarters", chosen.quarters or full))
        chosen = dataclasses.replace(chosen, quarters=None if tuple(picked) == full
                                     else tuple(picked))
    outcome_controls = [c for c in ("timepoint", "definition", "population", "ci")
                        if c in controls]
    if outcome_controls:
        bar.header("Outcome")
    if "timepoint" in controls:
        chosen = dataclasses.replace(chosen, timepoint=bar.selectbox(
            "Timepoint", outcomes.TIMEPOINTS, **_widget("timepoint", chosen.timepoint),
            index=outcomes.TIMEPOINTS.index(chosen.timepoint),
            format_func=outcomes.TIMEPOINT_LABELS.get))
    if "definition" in controls:
        chosen = dataclasses.replace(chosen, definition=bar.selectbox(
            "Responder definition", outcomes.DEFINITIONS, **_widget("definition", chosen.definition),
            index=outcomes.DEFINITIONS.index(chosen.definition),
            format_func=lambda d: f"{d}: {outcomes.DEFINITION_LABELS[d]}"))
    if "population" in controls:
        chosen = dataclasses.replace(chosen, population=bar.radio(
            "Population", outcomes.POPULATIONS, **_widget("population", chosen.population),
            index=outcomes.POPULATIONS.index(chosen.population),
            format_func=lambda p: {"itt": "ITT (default)", "completers": "Completers only"}[p],
            help="ITT counts a patient who reached the timepoint without a follow-up as a "
                 "non-responder; completers-only overstates a program."))
    if "ci" in controls:
        chosen = dataclasses.replace(chosen, ci=bar.radio(
            "Confidence interval", outcomes.CI_METHODS, **_widget("ci", chosen.ci), horizontal=True,
            index=outcomes.CI_METHODS.index(chosen.ci),
            format_func={"wilson": "Wilson", "exact": "Clopper–Pearson"}.get))
    chosen = chosen.valid(options)
    state[FILTERS_KEY] = chosen
    _write_url(chosen)
    context = PageContext(source, snap, chosen.filters(controls), chosen.timepoint,
                          chosen.definition, chosen.population, chosen.ci, role=role, user=user,
                          controls=controls)
    state[CONTEXT_KEY] = context
    return context


def _write_url(chosen: Chosen) -> None:
    """The chosen view in the URL: every control's value, those a page does
    not draw included, so a reload or a copied link gives the same view."""
    wanted = chosen.url()
    # Only the shared filters' own keys are managed; others (a page's
    # ?patient=...) are kept.
    owned = set(_PARAM.values())
    for key in list(st.query_params.keys()):
        if key in owned and key not in wanted:
            del st.query_params[key]
    for key, value in wanted.items():
        current = st.query_params.get_all(key) if isinstance(value, list) else st.query_params.get(key)
        if current != value:
            st.query_params[key] = value


def status_line(context: PageContext) -> None:
    """The line on every page: cutoff, what is in view, the active definition."""
    cutoff = context.call(outcomes.cutoff)
    in_view = context.call(outcomes.in_view_text, context.filters, context.audience)
    setting = context.setting_text
    st.caption(
        f"**{safe.text(context.source.label)}** · data cutoff {long_date(cutoff)} · "
        f"{safe.text(in_view)}" + (f" · {setting}" if setting else ""))
