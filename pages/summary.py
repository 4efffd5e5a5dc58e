"""Program summary (issue 19): one page of plain results for the medical
director, for a quarter: patients treated, the headline outcomes with their
denominators and intervals, what changed since the quarter before, safety and
the follow-up backlog; the same page as a one-page PDF."""

import pandas as pd
import streamlit as st

from analysis.core import formatting
from analysis.reports import summary
from analysis.reports.quarterly.report import NoDataError
from ui import auth, page_context, quarters, safe

ctx = page_context.get(__file__)
st.title("Program summary")

left, right = st.columns([1, 2], vertical_alignment="bottom")
quarter = quarters.pick(ctx, left, "summary_quarter")
try:
    result = ctx.call(summary.build_summary, quarter, ctx.filters)
except NoDataError as error:
    st.info(f"Nothing to summarise: {safe.text(error)}. Choose another quarter or widen the "
            "sites, conditions or routes in the sidebar.", icon=":material/filter_alt_off:")
    st.stop()

with right:
    auth.download_button(ctx.source, "Download the page (PDF)",
                         lambda: summary.RENDERERS["pdf"](result),
                         summary.file_name(result, "pdf"), summary.MIME_TYPES["pdf"],
                         what=f"program summary {result.quarter}",
                         icon=":material/picture_as_pdf:", key="summary_pdf")

st.caption(f"{safe.text(result.subtitle())} · the quarter sets the period, so the sidebar's "
           "cohort range and outcome settings do not apply (sites, conditions and routes do).")

def tiles(activity: dict) -> dict[str, int]:
    return {"Patients treated": activity["patients_treated"],
            "Treatment sessions": activity["infusions"] + activity["boosters"],
            "New patients": activity["new_patients"]}


now = tiles(result.activity)
before = tiles(result.previous_activity) if result.previous_activity else None
columns = st.columns(4)
for column, (label, value) in zip(columns, now.items()):
    delta = None if before is None else formatting.signed(value - before[label], 0)
    column.container(border=True).metric(
        label, formatting.count(value), delta, delta_color="gray",
        delta_description=f"vs {result.previous_quarter}" if delta else None)
columns[3].container(border=True).metric(
    "Follow-ups due now", formatting.count(result.backlog.open_total),
    help="Patients whose 3-, 6- or 12-month window is open at the data cutoff with no pain "
         "score recorded yet.")

st.markdown(f"**{safe.text(result.treated_text())}** {safe.text(result.treated_change_text())}")

st.subheader("Results that came due this quarter")
# A static table: its text wraps to the page (no cell is cut at 1280 px).
# Every cell is the code's own words and numbers, escaped as markdown text.
st.table(pd.DataFrame(
    [{"Outcome": safe.text(h.label), result.quarter: safe.text(h.result_text()),
      result.previous_quarter: safe.text(h.previous_text()),
      "Change": safe.text(h.change.short_words())}
     for h in result.headlines]), hide_index=True)

left, right = st.columns(2)
with left:
    st.subheader(f"What changed since {result.previous_quarter}")
    st.markdown("\n".join(f"- {safe.text(line)}" for line in result.changes()))
    st.subheader("Follow-up backlog")
    st.markdown("\n".join(f"- {safe.text(line)}" for line in result.backlog_text()))
with right:
    st.subheader("Safety")
    st.markdown("\n".join(f"- {safe.text(line.label)}: {safe.text(line.result_text())}."
                          for line in result.safety))

with st.expander("How this is computed"):
    st.markdown("\n".join(f"- {safe.text(note)}" for note in result.notes))
