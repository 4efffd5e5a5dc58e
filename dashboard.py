"""Entry point: ``streamlit run dashboard.py``.

Chooses the data source (the clinic's database, or the bundled synthetic
demo, never mixed), signs the user in (clinic data only), draws the shared
filters and hands over to a page the user's role may see.  Pages live in
``pages/``; the numbers come from ``analysis``.
"""

from __future__ import annotations

import streamlit as st

from analysis.storage import db, store
from analysis.sources import default_source, demo_source
from ui import auth, pages, sidebar, status_line, theme, visitors, warm

db.private_files()  # databases, audit logs, uploads: the owner's only
st.set_page_config(page_title="Ketamine pain outcomes", page_icon=":material/monitoring:",
                   layout="wide")
theme.page_style()   # metric and widget labels wrap instead of being cut


source = default_source()
session = auth.current(source)  # clinic data: the sign-in form until signed in

sections: dict[str, list] = {}
# By title: a role's first page is its default, reached at "/" whatever its own
# address, so the address does not always name the page (marketing's Claim
# check drew every control there).
specs = {}
for spec in pages.pages_for(session.role):
    page = st.Page(spec.path, title=spec.title, icon=spec.icon, default=spec.default)
    specs[spec.title] = spec
    sections.setdefault(spec.section, []).append(page)
navigation = st.navigation(sections, expanded=True)
# Every widget is drawn after st.navigation (auth.account_controls says why).
auth.account_controls(source, session)
# The demo switch is drawn for a signed-in user only: nobody reaches the demo
# (or anything else) through a clinic's dashboard without signing in, and a
# signed-in user keeps their own role there (the demo is read-only).
if session.method != "demo" and st.sidebar.toggle(
        "Show the demo clinic instead", key="show_demo",
        help="Synthetic data in its own database; never mixed with the clinic's."):
    source = demo_source()

if source.is_demo:
    st.info("**Demo clinic: synthetic data.** No real patient is shown. Load a clinic's exports "
            "on the Data page or with `.venv/bin/python -m analysis ingest`.",
            icon=":material/science:")
# A new data version is built in the background, and its pages computed
# (ui.warm); until it is ready this session keeps the previous snapshot, and
# says so.
warm.register()
# The page is drawn as a visitor's run: warming done in the background
# after new data is served waits meanwhile (ui.visitors).
with visitors.page_run():
    snap = store.snapshot(source.path, warm=True, background=True)
    # Files leave only through the pages' own download buttons: they write an audit
    # row on a clinic's data and the synthetic mark on the demo's; a grid's own
    # "Download as CSV" could do neither.
    theme.no_grid_downloads()
    if store.building(source.path):
        st.info("New data has arrived and is being prepared. This view still shows the data as it "
                "was before; your next click shows the new data once it is ready.",
                icon=":material/hourglass_top:")
    page_context = sidebar.draw(source, snap, role=session.role, user=session.user,
                                page=specs.get(navigation.title))
    status_line.draw(page_context)
    auth.log_page_view(source, session, navigation.title, page_context.filters.describe(),
                       page_context.setting_text)
    navigation.run()
