"""Patient flow: a CONSORT-style diagram from the first visit to responder."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.core import definitions, formatting
from analysis.metrics import patient_flow
from ui import page_context, safe, theme

ctx = page_context.get(__file__)
st.title("Patient flow")

flow = ctx.call(patient_flow.patient_flow, ctx.timepoint, ctx.definition, ctx.filters, ctx.audience)
timepoint_label = definitions.TIMEPOINT_LABELS[ctx.timepoint]
st.caption(
    f"Where patients leave the path from first visit to responder ({ctx.definition}: "
    f"{definitions.DEFINITION_LABELS[ctx.definition]}, at {timepoint_label}). "
    f"**Patients seen** = every patient with a visit in the data. **Completed induction** = "
    f"{definitions.INDUCTION_TEXT}. Each stage equals the next stage plus the patients who left "
    f"between them.")

if flow.stages[0].patients == 0:
    st.info("No patients match the filters. Widen the sites, conditions, routes or cohort in "
            "the sidebar.", icon=":material/filter_alt_off:")
    st.stop()

# The path ends with the patients who completed induction; the program's
# responder rate (Overview, Conditions, the report) also counts those who
# stopped early.  Both, side by side, before the diagram.
due, followed = flow.stage("due"), flow.stage("follow_up")
responders = flow.stage("responder")


def share(k: int, n: int) -> str:
    return formatting.percent(k / n if n else None)


def of(k: int, n: int) -> str:
    return f"{formatting.count(k)} of {formatting.count(n)} patients"


m1, m2, m3 = st.columns(3)
m1.metric(f"Responders, ITT (the program's rate, as on Overview)",
          share(flow.itt_responders, flow.itt_n))
m1.caption(of(flow.itt_responders, flow.itt_n) + f" due at {timepoint_label}")
m2.metric("… who completed induction (the path below)",
          share(responders.patients, due.patients))
m2.caption(of(responders.patients, due.patients))
m3.metric("… who stopped before completing induction",
          share(flow.stopped_early_responders, flow.stopped_early_due))
m3.caption(of(flow.stopped_early_responders, flow.stopped_early_due)
           + " (left the path at step 2, yet due and counted)")

# -- diagram ------------------------------------------------------------------

def consort(flow: patient_flow.PatientFlow) -> go.Figure:
    """Stage boxes down the left, the exits between two stages to the right."""
    stages = flow.stages
    gap = 2.0
    top = gap * (len(stages) - 1) + 1.0
    shapes, annotations = [], []   # set at once: add_shape/add_annotation copy the lists

    def box(x0, x1, y0, y1, fill, line):
        shapes.append(dict(type="rect", x0=x0, x1=x1, y0=y0, y1=y1, fillcolor=fill,
                           line=dict(color=line, width=1.5), layer="below"))

    def arrow(x, y, ax, ay):
        annotations.append(dict(x=x, y=y, ax=ax, ay=ay, xref="x", yref="y", axref="x",
                                ayref="y", text="", showarrow=True, arrowhead=2, arrowsize=1.2,
                                arrowwidth=1.5, arrowcolor=theme.NEUTRAL))

    for i, stage in enumerate(stages):
        y = top - 0.5 - gap * i
        responder = stage.key == "responder"
        box(0.3, 4.7, y - 0.42, y + 0.42, "#eaf5ee" if responder else "#eef4f9",
            theme.GOOD if responder else theme.PRIMARY)
        annotations.append(dict(x=2.5, y=y, showarrow=False, align="center",
                                text=safe.Markup(f"{stage.label}<br><b>"
                                                 f"{formatting.count(stage.patients)}</b>"),
                                font=dict(size=14, color="#222")))
        if i + 1 < len(stages):
            arrow(2.5, y - gap + 0.44, 2.5, y - 0.44)
        if stage.exits:
            lines = [f"{e.label}: <b>{formatting.count(e.patients)}</b>" for e in stage.exits]
            middle = y - gap / 2
            half = 0.16 * len(lines) + 0.12
            box(5.6, 9.9, middle - half, middle + half, "#f4f5f7", theme.NEUTRAL)
            annotations.append(dict(x=5.75, y=middle, xanchor="left", showarrow=False,
                                    align="left", text=safe.Markup("<br>".join(lines)),
                                    font=dict(size=13, color="#222")))
            arrow(5.58, middle, 2.5, middle)
    figure = go.Figure(layout=dict(shapes=shapes, annotations=annotations))
    figure.update_xaxes(visible=False, range=[0, 10], fixedrange=True)
    figure.update_yaxes(visible=False, range=[-0.1, top + 0.1], fixedrange=True)
    figure.update_layout(showlegend=False, margin=dict(l=10, r=10, t=60, b=10))
    return figure


st.plotly_chart(theme.styled(consort(flow), f"From first visit to responder at "
                                            f"{timepoint_label}", height=720),
                width="stretch", config={"displayModeBar": False})

# -- the same numbers as a table ----------------------------------------------


def text(value):
    return "" if value is None or value != value else formatting.count(value)


rows = [{
    "Step": int(r.step),
    "Stage": r.stage,
    "Patients": text(r.patients),
    "Left the flow": r.exit,
    "Patients who left": text(r.left),
} for r in flow.table().itertuples(index=False)]
# A static table (the code's own words and counts): it wraps, so 'Patients who
# left' is whole at 1280 px.
st.table(pd.DataFrame(rows), hide_index=True)

st.caption(
    f"Among patients who completed induction: {formatting.count(responders.patients)} of "
    f"{formatting.count(due.patients)} due patients respond "
    f"({formatting.percent(responders.patients / due.patients if due.patients else None)}, "
    f"ITT: no follow-up counts as non-responder); "
    f"{formatting.percent(responders.patients / followed.patients if followed.patients else None)}"
    f" of the {formatting.count(followed.patients)} with a follow-up (completers). "
    f"The program's responder rate ({share(flow.itt_responders, flow.itt_n)}, "
    f"{of(flow.itt_responders, flow.itt_n)}) also counts the "
    f"{formatting.count(flow.stopped_early_due)} patients who stopped before completing "
    f"induction but were due ({formatting.count(flow.stopped_early_responders)} of them "
    f"responders). Patients never treated have no route or first-infusion date: the cohort "
    f"filter applies to their first visit, and a route filter leaves them out.")
