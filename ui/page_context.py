"""What every page reads: the data source, its snapshot, the shared filters,
the outcome settings and the signed-in role.

``dashboard.py`` draws the shared sidebar (``ui/sidebar.py``), which keeps a
:class:`PageContext` in the session; a page asks for it with
``page_context.get(__file__)``, naming itself so that the role guard
(``ui/page_guard.py``) can stop a page the role may not open, and then only
calls ``analysis`` (through :meth:`PageContext.call`, cached) and draws.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from analysis.core import audience, definitions
from analysis.storage import store
from analysis.core.filters import Filters
from analysis.sources import DataSource
from ui import analysis_cache, direct_page_links, page_guard, pages

CONTEXT_KEY = "page_context"

#: The context of a page run off screen in this thread (:func:`off_screen`).
_warm = threading.local()


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
        return analysis_cache.data_key(self.snap)

    def call(self, function: Callable, *args, **kwargs) -> Any:
        """Run an ``analysis`` function on the snapshot, cached per data version."""
        return analysis_cache.call(self.snap, self.data_key, function, *args, **kwargs)

    @property
    def audience(self) -> audience.Audience:
        """Who this view is for: the one policy (analysis.core.audience) decides it
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
            parts.append(f"{definitions.DEFINITION_LABELS[self.definition]} ({self.definition})")
        if "timepoint" in self.controls:
            parts.append(f"at {definitions.TIMEPOINT_LABELS[self.timepoint]}")
        text = " ".join(parts)
        if "population" in self.controls:
            population = "ITT" if self.population == "itt" else "completers only"
            text = f"{text}, {population}" if text else population
        return text


def keep(context: PageContext) -> None:
    """This run's context, for the page ``dashboard.py`` hands over to."""
    st.session_state[CONTEXT_KEY] = context


@contextmanager
def off_screen(context: PageContext):
    """Pages run in this thread (with no session: ``ui.warm``) read
    ``context`` instead of a session's."""
    _warm.context = context
    try:
        yield context
    finally:
        _warm.context = None


def get(page_file: str | Path) -> PageContext:
    """The context of this run, for the page in ``page_file`` (a page passes
    its own ``__file__``); stops a page the signed-in role may not open, and a
    page run without the dashboard around it."""
    context = getattr(_warm, "context", None) or st.session_state.get(CONTEXT_KEY)
    if context is None:
        # Only dashboard.py (after sign-in) keeps a context.
        direct_page_links.send_to_dashboard()
    page_guard.stop_unless_allowed(page_file, context.role)
    return context
