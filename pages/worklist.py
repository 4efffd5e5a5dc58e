"""Follow-up worklist (clinical team): who needs a call."""

import streamlit as st

from analysis.core import definitions, formatting
from analysis.metrics import worklist
from ui import auth, grid, page_context, safe
from ui.grid import Column

ctx = page_context.get(__file__)
st.title("Follow-up worklist")

result = ctx.call(worklist.worklist, ctx.filters, ctx.audience)
tables = result.tables()
counts = result.counts()

st.caption(
    f"Patients in view ({safe.text(ctx.filters.describe())}) as of the data cutoff "
    f"{formatting.long_date(result.cutoff)}, the latest visit in the data. **Follow-up due**: "
    f"the window of a timepoint has begun and is not over at the cutoff, and no pain score is "
    f"in it yet. **Missed**: the window is over without a pain score; under ITT these patients "
    f"count as non-responders (when their baseline pain is above 0). **Stopped in induction**: "
    f"did not complete induction, that is {definitions.INDUCTION_TEXT}; no visit since their last "
    f"infusion, at least {worklist.STOPPED_AFTER_DAYS} days ago. Click a column header to "
    f"sort; the sidebar's filters (sites, conditions, routes, cohort) narrow every list.")

columns = st.columns(5)
for column, timepoint in zip(columns, worklist.TIMEPOINTS):
    column.metric(f"Due at {definitions.TIMEPOINT_LABELS[timepoint]}",
                  formatting.count(counts[timepoint]),
                  help="Window open at the cutoff, no pain score in it yet.")
columns[3].metric("Missed follow-ups", formatting.count(counts["missed"]),
                  help="Patient-timepoints whose window closed without a pain score.")
columns[4].metric("Stopped in induction", formatting.count(counts["stopped_in_induction"]))

# Each list's columns on screen, every one visible at 1280 px (ui.grid): short
# headers, the long name on hover.  The downloads keep every column (window
# opened, last visit) under their full names.
PATIENT = {"Patient": Column(68), "Site": Column(118), "Provider": Column(70),
           "Condition": Column(144)}
DAYS_SINCE = Column(80, "Days since", "Days since the patient's last visit, at the cutoff.",
                    kind="number")
SHOWN = {
    "Follow-up due": {**PATIENT, "Timepoint": Column(80),
                      "Window closes": Column(84, "Closes", "Last day of the window.",
                                             kind="date"),
                      "Days left": Column(72, help="Days left before the window closes.",
                                          kind="number"),
                      "Last visit": Column(82, kind="date"), "Days since last visit": DAYS_SINCE},
    "Missed follow-up": {**PATIENT, "Timepoint": Column(80),
                         "Window closed": Column(84, "Closed", "Last day of the window.",
                                                kind="date"),
                         "Days since last visit": DAYS_SINCE,
                         "Non-responder under ITT": Column(
                             104, "Non-responder",
                             "Counted as a non-responder under ITT (baseline pain above 0).",
                             kind="checkbox")},
    "Stopped in induction": {**PATIENT, "First infusion": Column(96, kind="date"),
                             "Infusions in induction": Column(
                                 76, "Infusions", "Infusions in induction.", kind="number"),
                             "Last visit": Column(86, kind="date"),
                             "Days since last visit": DAYS_SINCE},
}

LISTS = (
    ("Follow-up due", "No patient has an open window without a pain score.",
     "Most urgent first: fewest days left before the window closes."),
    ("Missed follow-up", "No window closed without a pain score.",
     "Most recently closed windows first. A patient may be listed at several timepoints."),
    ("Stopped in induction", "Nobody stopped during induction.",
     "Most recent stops first: the likeliest to come back."),
)
SHOWN_NOTE = {name: "" if not hidden else
              f"The download also has {' and '.join(hidden).lower()}."
              for name, hidden in ((name, [c for c in table.columns if c not in SHOWN[name]])
                                   for name, table in tables.items())}
for tab, (name, empty, order) in zip(st.tabs([name for name, _, _ in LISTS]), LISTS):
    with tab:
        if tables[name].empty:
            st.info(empty)
        else:
            grid.table(tables[name], SHOWN[name])
            st.caption(order + " " + SHOWN_NOTE[name])

left, right = st.columns(2)
with left:   # audited downloads, each file built only when clicked
    auth.download_button(ctx.source, "Download the worklist (XLSX)", result.xlsx_bytes,
                         "follow_up_worklist.xlsx",
                         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         what="follow-up worklist")
with right:
    auth.download_button(ctx.source, "Download follow-up due (CSV)",
                         lambda: result.csv_bytes("Follow-up due"), "follow_up_due.csv",
                         "text/csv",
                         what="follow-up worklist")
