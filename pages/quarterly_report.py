"""Quarterly report (issue 6): pick a quarter and an audience, read the
tables and charts, download the same report as HTML, XLSX or PDF."""

import streamlit as st

from analysis.core import audience as audiences
from analysis.core import formatting
from analysis.reports.quarterly.build import build_report
from analysis.reports.quarterly.charts import chart_titles, plotly_charts
from analysis.reports.quarterly.render.files import FORMATS, MIME_TYPES, RENDERERS, file_name
from analysis.reports.quarterly.report import NoDataError
from analysis.reports.quarterly.tables import display_frame, key_labels
from ui import auth, page_context, quarters, safe, theme

ctx = page_context.get(__file__)
st.title("Quarterly report")

left, right = st.columns([1, 2])
quarter = quarters.pick(ctx, left, "report_quarter")
choices = [a.value for a in audiences.choices_for(ctx.role)]
label = lambda value: audiences.parse(value).label
if len(choices) == 1:
    audience = audiences.parse(choices[0])
    right.radio("Audience", choices, horizontal=True, disabled=True,
                key="report_audience_forced", format_func=label,
                help="Your role sees the external version only: the whole program, whatever "
                     "the sidebar's filters.")
else:
    audience = audiences.parse(right.radio(
        "Audience", choices, horizontal=True, key="report_audience", format_func=label,
        help="External: the whole program whatever the filters; no count from 1 to 10, nor one "
             "that would reveal it, and no rate built on them; adverse events by category."))

try:
    quarterly = ctx.call(build_report, quarter, audience, ctx.filters)
except NoDataError as error:
    st.info(f"Nothing to report: {safe.text(error)}. Choose another quarter or widen the sites, "
            "conditions or routes in the sidebar.", icon=":material/filter_alt_off:")
    st.stop()

applies = ("the external report is the whole program: the sidebar's filters do not apply"
           if quarterly.external else
           "the report sets its own periods, so the sidebar's cohort range and outcome settings "
           "do not apply (sites, conditions and routes do)")
st.caption(
    f"{quarterly.period_text} · data cutoff {formatting.long_date(quarterly.cutoff)} · "
    f"{safe.text(quarterly.filters.describe())} · fingerprint `{quarterly.fingerprint[:12]}` · "
    f"{applies}.")

st.markdown("\n".join(f"- {line}" for line in quarterly.highlights()))

downloads = st.columns(len(FORMATS))
for column, fmt in zip(downloads, FORMATS):
    with column:  # audited download, the file built only when clicked
        auth.download_button(
            ctx.source, f"Download {fmt.upper()}", lambda fmt=fmt: RENDERERS[fmt](quarterly),
            file_name(quarterly, fmt), MIME_TYPES[fmt],
            what=f"quarterly report {quarterly.quarter} ({quarterly.audience.value}, {fmt})",
            icon=":material/download:", key=f"report_download_{fmt}", width="stretch")

charts = plotly_charts(quarterly)
titles = chart_titles(quarterly)
for spec, frame in quarterly.tables():
    st.subheader(spec.title)
    st.caption(spec.note)
    if spec.key in charts:
        height = 300 + 26 * len(frame) if spec.key == "safety" else 400
        st.plotly_chart(theme.styled(charts[spec.key], titles[spec.key], min(height, 520)),
                        key=f"report_chart_{spec.key}")
    shown = display_frame(spec, frame)
    key = key_labels(spec)   # the rest is in the downloads
    # A static table wraps, so every shown column is on screen at 1280 px (the
    # grid cut 'Change vs 2025Q3' and the shares); its cells are markdown, so
    # they are escaped (sites and events come from the export).
    st.table(safe.table_frame(shown[key]), hide_index=True)
    if len(key) < len(shown.columns):
        st.caption("Shown: the rate and its changes. The counts of each period ("
                   + ", ".join(c for c in shown.columns if c not in key)
                   + ") are in the downloads.")

with st.expander("Provenance: where these numbers come from"):
    st.dataframe(quarterly.provenance_frame().rename(columns={"item": "Item", "value": "Value"}),
                 hide_index=True)
