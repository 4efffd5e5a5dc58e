"""The shared sidebar: the filters and outcome settings that act on a page.

The chosen filters live in one place, ``st.session_state[FILTERS_KEY]``
(:class:`ui.filters_in_url.Chosen`), seeded from the URL once per session (or
data version) and written back to the URL on every run, so a view survives
navigation and reloads and a copied link reproduces it.  Each widget is drawn
with the chosen value as its default and its answer becomes the chosen value;
a page that does not use a control does not draw it (its value is kept, in
the session and the URL, for the pages that do).  No widget's state is ever
assigned by code: Streamlit reads a range slider as a range only from its
``value`` default, and the old cycle (state seeded and repaired by code, no
``value``) read the dragged range back as one quarter, which the repair then
reset to the full range: the cohort slider snapped back on release.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from analysis.core import audience, definitions
from analysis.metrics import outcomes
from analysis.storage import store
from analysis.sources import DataSource
from ui import analysis_cache, page_context, pages
from ui.filters_in_url import Chosen, write_url
from ui.page_context import PageContext

FILTERS_KEY = "shared_filters"
SEEDED_KEY = "shared_filters_seeded"

#: The widget key of each control (none is ever assigned by code).
_KEYS = {"sites": "f_sites", "conditions": "f_conditions", "routes": "f_routes",
         "quarters": "f_quarters", "timepoint": "f_timepoint", "definition": "f_definition",
         "population": "f_population", "ci": "f_ci"}


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


def draw(source: DataSource, snap: store.Snapshot, role: str = "clinical",
         user: str | None = None, page: pages.PageSpec | None = None) -> PageContext:
    """Draw the shared controls that act on ``page`` and keep (and return) the
    context every page reads.  The external audience gets none: it sees fixed
    tables over the whole program at the default settings, never an ad-hoc
    filter (two filter states could differ by one patient; SPEC §4)."""
    controls = pages.controls_for(page, audience.for_role(role))
    data_key = analysis_cache.data_key(snap)
    options = analysis_cache.call(snap, data_key, outcomes.filter_options)
    state = st.session_state
    chosen = state.get(FILTERS_KEY)
    if state.get(SEEDED_KEY) != data_key or not isinstance(chosen, Chosen):
        chosen = Chosen.from_url(st.query_params, options) if not isinstance(chosen, Chosen) \
            else chosen.valid(options)
        state[SEEDED_KEY] = data_key
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
            "Timepoint", definitions.TIMEPOINTS, **_widget("timepoint", chosen.timepoint),
            index=definitions.TIMEPOINTS.index(chosen.timepoint),
            format_func=definitions.TIMEPOINT_LABELS.get))
    if "definition" in controls:
        chosen = dataclasses.replace(chosen, definition=bar.selectbox(
            "Responder definition", definitions.DEFINITIONS, **_widget("definition", chosen.definition),
            index=definitions.DEFINITIONS.index(chosen.definition),
            format_func=lambda d: f"{d}: {definitions.DEFINITION_LABELS[d]}"))
    if "population" in controls:
        chosen = dataclasses.replace(chosen, population=bar.radio(
            "Population", definitions.POPULATIONS, **_widget("population", chosen.population),
            index=definitions.POPULATIONS.index(chosen.population),
            format_func=lambda p: {"itt": "ITT (default)", "completers": "Completers only"}[p],
            help="ITT counts a patient who reached the timepoint without a follow-up as a "
                 "non-responder; completers-only overstates a program."))
    if "ci" in controls:
        chosen = dataclasses.replace(chosen, ci=bar.radio(
            "Confidence interval", definitions.CI_METHODS, **_widget("ci", chosen.ci), horizontal=True,
            index=definitions.CI_METHODS.index(chosen.ci),
            format_func={"wilson": "Wilson", "exact": "Clopper–Pearson"}.get))
    chosen = chosen.valid(options)
    state[FILTERS_KEY] = chosen
    write_url(chosen)
    context = PageContext(source, snap, chosen.filters(controls), chosen.timepoint,
                          chosen.definition, chosen.population, chosen.ci, role=role, user=user,
                          controls=controls)
    page_context.keep(context)
    return context
