"""The role guard: a page the user's role may not open stops before it draws.

The navigation (``dashboard.py``) already leaves such pages out, so a browser
gets "page not found"; this second check guards a page run some other way
(a stale link, Streamlit's direct-file mode, a test harness).  It goes by the
page's own file, which the page passes when it asks for its context
(``page_context.get(__file__)``), and the role of the signed-in session.  A
file that is not one of the dashboard's pages (``ui.pages.PAGES``) is refused
for every role: the guard fails closed on what it cannot place.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.pages import PAGES, PageSpec

ROOT = Path(__file__).resolve().parent.parent

#: Each page's file, resolved, and what the page list says about it.
_PAGE_FILES = {(ROOT / spec.path).resolve(): spec for spec in PAGES}


def page_for(page_file: str | Path) -> PageSpec | None:
    """The dashboard's page whose file is ``page_file`` (None: not a page)."""
    return _PAGE_FILES.get((ROOT / page_file).resolve())


def refusal(page_file: str | Path, role: str) -> str | None:
    """Why ``role`` may not open the page in ``page_file`` (None: it may)."""
    spec = page_for(page_file)
    if spec is None:
        return ("This is not one of the dashboard's pages. Start from the dashboard, which "
                "lists the pages your role may open.")
    if role not in spec.roles:
        return f"The {spec.title} page is not available to the {role} role."
    return None


def stop_unless_allowed(page_file: str | Path, role: str) -> None:
    """Stop the page run (with the reason) unless ``role`` may open it."""
    why = refusal(page_file, role)
    if why is not None:
        st.warning(why)
        st.stop()
