"""A page's file opened directly, without the dashboard around it.

Streamlit runs a ``pages/`` file on its own when a fresh server's first
visitor opens its URL: its multipage "v1" mode, until ``dashboard.py``'s
``st.navigation`` has run once in the process.  Such a run has no sign-in
and no page context.  This module switches that mode off (a Streamlit
internal, ``PagesManager.uses_pages_directory``) and runs again, through
``dashboard.py`` and its sign-in; failing that, it shows the way in.
"""

from __future__ import annotations

from typing import NoReturn

import streamlit as st
try:  # Streamlit internals; without them the fallback link still works
    from streamlit.runtime.pages_manager import PagesManager
except ImportError:  # pragma: no cover
    PagesManager = None

#: Set in the session once a rerun through the dashboard was asked for, so a
#: second direct run shows the link instead of rerunning forever.
REROUTED_KEY = "_rerouted"


def send_to_dashboard() -> NoReturn:
    """Rerun through ``dashboard.py`` (once per session), else stop with a
    link to it."""
    if PagesManager is not None and not st.session_state.get(REROUTED_KEY):
        st.session_state[REROUTED_KEY] = True
        PagesManager.uses_pages_directory = False
        st.rerun()
    st.warning("This link opens a page directly. Start from the dashboard, which signs "
               "you in and sets the filters.")
    st.markdown("[Open the dashboard](/)")
    st.stop()
