"""What every page needs: the data source, its snapshot, the shared filters.

``dashboard.py`` draws the shared sidebar once per run and stores a
:class:`PageContext` in the session; pages call :func:`get` and then only
call ``analysis`` and draw.  Filters live in the URL's query parameters so a
view can be shared as a link and survives a reload.
"""

from __future__ import annotations

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

from analysis import outcomes, store
from analysis.formatting import long_date
from analysis.outcomes import Filters
from analysis.sources import DataSource
from ui import safe
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

    @property
    def data_key(self) -> tuple:
        return (str(self.source.path), self.snap.version)

    def call(self, function: Callable, *args, **kwargs) -> Any:
        """Run an ``analysis`` function on the snapshot, cached per data version."""
        name = f"{function.__module__}.{function.__qualname__}"
        return _cached_call(self.snap, self.data_key, function, name, args,
                            tuple(sorted(kwargs.items())))

    @property
    def external(self) -> bool:
        """Views for people outside the clinical team suppress small cells."""
        return self.role == "marketing"

    @property
    def setting_text(self) -> str:
        return (f"{outcomes.DEFINITION_LABELS[self.definition]} ({self.definition}) at "
                f"{outcomes.TIMEPOINT_LABELS[self.timepoint]}, "
                f"{'ITT' if self.population == 'itt' else 'completers only'}")


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


_PARAM = {"sites": "site", "conditions": "condition", "routes": "route",
          "from": "from", "to": "to", "timepoint": "tp", "definition": "def",
          "population": "pop", "ci": "ci"}


def _seed_from_url(options: outcomes.FilterOptions) -> None:
    """Set widget state from the URL once per session (or when the data changes)."""
    params = st.query_params
    state = st.session_state
    state["f_sites"] = [s for s in params.get_all(_PARAM["sites"]) if s in options.sites]
    state["f_conditions"] = [c for c in params.get_all(_PARAM["conditions"])
                             if c in options.conditions]
    state["f_routes"] = [r for r in params.get_all(_PARAM["routes"]) if r in options.routes]
    quarters = options.quarters or ["–"]
    first = params.get(_PARAM["from"])
    last = params.get(_PARAM["to"])
    state["f_quarters"] = (first if first in quarters else quarters[0],
                           last if last in quarters else quarters[-1])
    state["f_timepoint"] = _choice(params.get(_PARAM["timepoint"]), outcomes.TIMEPOINTS, "3m")
    state["f_definition"] = _choice(params.get(_PARAM["definition"]), outcomes.DEFINITIONS,
                                    "pain30")
    state["f_population"] = _choice(params.get(_PARAM["population"]), outcomes.POPULATIONS, "itt")
    state["f_ci"] = _choice(params.get(_PARAM["ci"]), outcomes.CI_METHODS, "wilson")


def _repair_state(options: outcomes.FilterOptions) -> None:
    """Keep widget state valid: a page switch can drop or reshape a value
    (the cohort slider came back as a single quarter), and the options change
    when the data does."""
    state = st.session_state
    quarters = options.quarters or ["–"]
    value = state.get("f_quarters")
    if not (isinstance(value, (tuple, list)) and len(value) == 2
            and all(q in quarters for q in value)):
        state["f_quarters"] = (quarters[0], quarters[-1])
    for key, allowed in (("f_sites", options.sites), ("f_conditions", options.conditions),
                         ("f_routes", options.routes)):
        state[key] = [v for v in state.get(key) or [] if v in allowed]
    for key, allowed, default in (("f_timepoint", outcomes.TIMEPOINTS, "3m"),
                                  ("f_definition", outcomes.DEFINITIONS, "pain30"),
                                  ("f_population", outcomes.POPULATIONS, "itt"),
                                  ("f_ci", outcomes.CI_METHODS, "wilson")):
        if state.get(key) not in allowed:
            state[key] = default


def _choice(value, allowed, default):
    return value if value in allowed else default


def sidebar(source: DataSource, snap: store.Snapshot, role: str = "clinical",
            user: str | None = None) -> PageContext:
    """Draw the shared filters and return the context every page reads."""
    options = _cached_call(snap, (str(source.path), snap.version), outcomes.filter_options,
                           "analysis.outcomes.filter_options", (), ())
    seed_key = (str(source.path), snap.version)
    if st.session_state.get("f_seeded") != seed_key:
        _seed_from_url(options)
        st.session_state["f_seeded"] = seed_key
    _repair_state(options)
    bar = st.sidebar
    bar.header("Filters")
    sites = bar.multiselect("Sites", options.sites, key="f_sites", placeholder="All sites")
    conditions = bar.multiselect("Conditions", options.conditions, key="f_conditions",
                                 placeholder="All conditions")
    routes = bar.multiselect("Routes", options.routes, key="f_routes", placeholder="All routes")
    quarters = options.quarters or ["–"]
    if len(quarters) > 1:
        first, last = bar.select_slider("Cohort (quarter of first infusion)", quarters,
                                        key="f_quarters")
    else:
        first = last = quarters[0]
    bar.header("Outcome")
    timepoint = bar.selectbox("Timepoint", outcomes.TIMEPOINTS, key="f_timepoint",
                              format_func=outcomes.TIMEPOINT_LABELS.get)
    definition = bar.selectbox("Responder definition", outcomes.DEFINITIONS, key="f_definition",
                               format_func=lambda d: f"{d}: {outcomes.DEFINITION_LABELS[d]}")
    population = bar.radio("Population", outcomes.POPULATIONS, key="f_population",
                           format_func=lambda p: {"itt": "ITT (default)",
                                                  "completers": "Completers only"}[p],
                           help="ITT counts a patient who reached the timepoint without a "
                                "follow-up as a non-responder; completers-only overstates "
                                "a program.")
    ci = bar.radio("Confidence interval", outcomes.CI_METHODS, key="f_ci", horizontal=True,
                   format_func={"wilson": "Wilson", "exact": "Clopper–Pearson"}.get)

    full_range = options.quarters and (first, last) == (quarters[0], quarters[-1])
    filters = Filters.from_quarters(
        None if full_range or first == "–" else first,
        None if full_range or last == "–" else last,
        sites=tuple(sites), conditions=tuple(conditions), routes=tuple(routes))
    _write_url(sites, conditions, routes, None if full_range else (first, last),
               timepoint, definition, population, ci)
    context = PageContext(source, snap, filters, timepoint, definition, population, ci,
                          role=role, user=user)
    st.session_state[CONTEXT_KEY] = context
    return context


def _write_url(sites, conditions, routes, quarter_range, timepoint, definition, population, ci):
    wanted: dict[str, Any] = {}
    if sites:
        wanted[_PARAM["sites"]] = list(sites)
    if conditions:
        wanted[_PARAM["conditions"]] = list(conditions)
    if routes:
        wanted[_PARAM["routes"]] = list(routes)
    if quarter_range:
        wanted[_PARAM["from"]], wanted[_PARAM["to"]] = quarter_range
    for key, value, default in (("timepoint", timepoint, "3m"), ("definition", definition, "pain30"),
                                ("population", population, "itt"), ("ci", ci, "wilson")):
        if value != default:
            wanted[_PARAM[key]] = value
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
    scope = context.call(outcomes.scope, context.filters)
    st.caption(
        f"**{safe.text(context.source.label)}** · data cutoff {long_date(scope.cutoff)} · "
        f"{scope.text()} in view ({safe.text(context.filters.describe())}) · "
        f"{context.setting_text}")
