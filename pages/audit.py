"""Audit log (clinical role): sign-ins, page views, downloads, reports, ingests."""

import datetime as dt

import streamlit as st

from analysis.access import audit
from analysis.core.formatting import csv_bytes
from ui import auth, page_context

ctx = page_context.get(__file__)
st.title("Audit log")
if ctx.role != "clinical":
    st.warning("The audit log is for the clinical team only.")
    st.stop()
if ctx.source.is_demo:
    st.info("The demo clinic writes no audit rows, by design: nobody signs in to it and nothing "
            "viewed there is logged. A clinic's own data keeps its audit log here (with the demo "
            "switched off).")
    st.stop()

st.caption("Every sign-in (and failed attempt), page view, filter change, download, report and "
           "ingest, newest first. Each row carries a keyed MAC chained to the row before, and the "
           "last one is also kept outside the database: an edited, removed or recomputed row, or "
           "a deleted log, shows below (`.venv/bin/python -m analysis audit verify` checks the "
           "same).")
left, middle, right = st.columns(3)
days = left.number_input("Days to show", min_value=1, max_value=3650, value=30, step=1)
actions = middle.multiselect("Actions", audit.ACTIONS, placeholder="All actions")
user = right.text_input("User", placeholder="All users")

rows = audit.read(ctx.source.path, since=dt.datetime.now() - dt.timedelta(days=int(days)),
                  actions=tuple(actions), user=user.strip() or None)
chain = audit.verify(ctx.source.path)
if audit.queued():
    st.warning(f"{audit.queued():,} page view(s) are waiting to be written to the audit log "
               "(its file could not be written just now); they are retried and are not lost "
               "while the dashboard runs.", icon=":material/hourglass_top:")
if chain.intact:
    st.success(f"Audit log {chain.verdict}: all {chain.rows:,} rows checked.",
               icon=":material/verified:")
else:
    st.error(f"Audit log {chain.verdict}", icon=":material/gpp_bad:")

if rows.empty:
    st.info("No audit rows match.")
else:
    shown = rows[["seq", "logged_at", "user_name", "role", "action", "detail"]].rename(columns={
        "seq": "#", "logged_at": "when", "user_name": "user", "detail": "details"})
    st.dataframe(shown, hide_index=True, width="stretch")
    auth.download_button(ctx.source, "Download as CSV",
                         csv_bytes(shown, synthetic=ctx.snap.synthetic),
                         "audit_log.csv", "text/csv", what="audit log")
