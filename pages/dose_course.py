"""Dose and course: response by induction infusions completed and by dose."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from analysis.core import audience, definitions, formatting
from analysis.metrics import treatment_course
from ui import page_context, theme

ctx = page_context.get(__file__)
st.title("Dose & course")

result = ctx.call(treatment_course.course, ctx.timepoint, ctx.definition, ctx.population,
                  ctx.filters, ctx.ci, ctx.audience)
ci_name = "Wilson" if ctx.ci == "wilson" else "Clopper–Pearson"

st.caption(f"Responder rate ({ctx.setting_text}) by the number of induction infusions "
           f"completed (treatment sessions on days 0–{definitions.INDUCTION_DAYS} after the first) "
           f"and by the mean ketamine dose per kg over them, with 95% {ci_name} intervals.")
st.warning(result.caveat, icon=":material/warning:")

if result.by_infusions["n"].sum() == 0:
    st.info("No patients match the filters at this timepoint.", icon=":material/filter_alt_off:")
    st.stop()

figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, shared_yaxes=True,
                       subplot_titles=("By induction infusions completed", "By dose per kg"))
for column, table, colour in ((1, result.by_infusions, theme.PRIMARY),
                              (2, result.by_dose, theme.ACCENT)):
    shown = table[table["n"] > 0]
    # A group of fewer than 11 patients keeps its place on the axis, with no
    # bar and no interval (a whisker from 0% to 66% for 2 patients said nothing).
    drawn = ~shown["too_few"].astype(bool)
    figure.add_trace(go.Bar(
        x=[f"{r.group} (n={formatting.count(r.n)})" + (", too few" if r.too_few else "")
           for r in shown.itertuples()],
        y=[rate if ok else None for rate, ok in zip(shown["rate"], drawn)],
        marker=dict(color=colour),
        error_y=dict(type="data", symmetric=False,
                     array=[h - r if ok else None
                            for h, r, ok in zip(shown["ci_high"], shown["rate"], drawn)],
                     arrayminus=[r - lo if ok else None
                                 for r, lo, ok in zip(shown["rate"], shown["ci_low"], drawn)],
                     color="#444", thickness=1.2),
        customdata=[[formatting.rate_with_ci(r.rate, r.ci_low, r.ci_high),
                     formatting.count(r.responders), formatting.count(r.n)]
                    for r in shown.itertuples()],
        hovertemplate="%{x}: %{customdata[0]}<br>%{customdata[1]} of %{customdata[2]} "
                      "patients<extra></extra>",
        showlegend=False), row=1, col=column)
figure.update_yaxes(range=[0, 1], tickformat=".0%", title="responder rate", row=1, col=1)
figure.update_layout(margin=dict(r=90, b=110))   # room for the last slanted label
st.plotly_chart(theme.styled(figure, f"{definitions.DEFINITION_LABELS[ctx.definition]} at "
                                     f"{definitions.TIMEPOINT_LABELS[ctx.timepoint]}", height=440),
                width="stretch")


def table_rows(table, name):
    return [{name: r.group, "Patients (n)": formatting.count(r.n),
             "Responders": formatting.count(r.responders), "Rate": formatting.percent(r.rate),
             f"95% CI ({ci_name})": formatting.percent_range(r.ci_low, r.ci_high),
             "Note": "too few" if r.too_few else ""} for r in table.itertuples()]


# Static tables: they wrap, so the interval and the note stay on screen at 1280 px.
left, right = st.columns(2)
left.table(pd.DataFrame(table_rows(result.by_infusions, "Induction infusions")), hide_index=True)
right.table(pd.DataFrame(table_rows(result.by_dose, "Dose per kg")), hide_index=True)
st.caption(f"'Too few': fewer than {audience.SMALL_CELL} patients, no bar drawn. Dose per kg: "
           f"each session's ketamine mg over the weight recorded at it (else the last weight "
           f"before it), averaged over the induction sessions.")
