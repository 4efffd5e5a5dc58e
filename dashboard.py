"""Entry point: ``streamlit run dashboard.py``.

Chooses the data source (the clinic's database, or the bundled synthetic
demo, never mixed), draws the shared filters, and hands over to the page the
user picked.  Pages live in ``pages/``; the numbers come from ``analysis``.
"""

from __future__ import annotations

import streamlit as st

from analysis import store
from analysis.sources import default_source, demo_source
from ui import context, pages

st.set_page_config(page_title="Ketamine pain outcomes", page_icon=":material/monitoring:",
                   layout="wide")


def choose_source():
    source = default_source()
    if not source.is_demo:
        show_demo = st.sidebar.toggle("Show the demo clinic instead", key="show_demo",
                                      help="Synthetic data; never mixed with the clinic's.")
        if show_demo:
            source = demo_source()
    return source


source = choose_source()
snap = store.snapshot(source.path)
role = "clinical"
specs = pages.pages_for(role)
sections: dict[str, list] = {}
for spec in specs:
    sections.setdefault(spec.section, []).append(
        st.Page(spec.path, title=spec.title, icon=spec.icon, default=spec.default))
navigation = st.navigation(sections)

if source.is_demo:
    st.info("**Demo clinic: synthetic data.** No real patient is shown. Load a clinic's exports "
            "on the Data page or with `python -m analysis ingest`.", icon=":material/science:")
page_context = context.sidebar(source, snap, role=role)
context.status_line(page_context)
navigation.run()
