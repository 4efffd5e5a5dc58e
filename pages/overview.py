"""Overview: the program's headline numbers and how the last quarter compares."""

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from analysis.core import definitions, formatting
from analysis.metrics import pgic, program_overview
from ui import explain, page_context, theme

ctx = page_context.get(__file__)
st.title("Program overview")

view = ctx.call(program_overview.overview, ctx.filters, ctx.timepoint, ctx.definition, ctx.population,
                ctx.ci, ctx.source.pgic_best, ctx.audience)

if view.patients == 0:
    st.info("No patients match the filters: no treated patient is in view. Widen the sites, "
            "conditions, routes or cohort in the sidebar.", icon=":material/filter_alt_off:")
    st.stop()

timepoint_label = definitions.TIMEPOINT_LABELS[ctx.timepoint]
population_text = "ITT" if ctx.population == "itt" else "completers only"
ci_text = "Wilson" if ctx.ci == "wilson" else "Clopper–Pearson"


def tile(column, measure: program_overview.Measure, help_text: str) -> None:
    delta = measure.delta_text
    good = measure.delta_good
    box = column.container(border=True)
    box.metric(
        measure.label, measure.value_text, delta,
        delta_color="gray" if good is None else ("green" if good else "red"),
        delta_arrow=measure.delta_direction if delta else "off",
        delta_description=f"{view.quarter.name} vs {view.previous.name}" if delta else None,
        help=help_text)
    if measure.detail_text:
        box.caption(measure.detail_text)


st.subheader("Activity")
columns = st.columns(3)
tile(columns[0], view.measure("patients_treated"),
     "Patients with at least one infusion or booster. Change: patients whose first infusion "
     "fell in each quarter.")
tile(columns[1], view.measure("infusions"),
     "Infusion visits (the induction series). With the boosters, they are the treatment "
     "sessions. Change: infusion visits in each quarter.")
tile(columns[2], view.measure("boosters"),
     "Booster visits, after the induction series. Change: boosters given in each quarter.")

st.subheader(f"Outcomes at {timepoint_label}")
# What the scores say and what patients say, side by side; then the rest.
columns = st.columns(2)
tile(columns[0], view.measure("responder_rate"),
     f"{definitions.DEFINITION_LABELS[ctx.definition]}, {population_text}, 95% {ci_text} CI.")
tile(columns[1], view.measure("pgic_improved"),
     f"What patients say: a Patient Global Impression of Change of much or very much improved "
     f"({pgic.orientation_text(ctx.source.pgic_best)}), {population_text}; under ITT a patient "
     f"without a PGIC in the window counts as not improved. 95% {ci_text} CI.")
columns = st.columns(3)
tile(columns[0], view.measure("median_pain_change"),
     "Median of follow-up minus baseline pain (0–10) among patients with baseline pain above 0 "
     "who are due at this timepoint with its score; exact distribution-free 95% CI (order "
     "statistics); whether the change could be chance is read off the Wilcoxon signed-rank "
     "test (How this is computed). Negative = less pain.")
tile(columns[1], view.measure("mme50"),
     f"Baseline opioid users whose daily MME fell by at least half, {population_text}.")
tile(columns[2], view.measure("mme_stop"),
     f"Baseline opioid users at 0 MME/day at follow-up, {population_text}.")

quarter, previous = view.quarter, view.previous
st.caption(
    f"**Large numbers: everything in view** (all cohorts, up to the data cutoff "
    f"{formatting.long_date(view.cutoff)}). **Arrows: {quarter.label} compared with "
    f"{previous.label}**, the last complete quarter before the cutoff and the one before it. "
    f"Activity counts patients whose first infusion, and infusion visits and boosters, in each "
    f"quarter; outcomes count the patients whose result at {timepoint_label} came due in each "
    f"quarter (first infusion + {view.target_day} days). Outcome rates: {ctx.setting_text}; 95% "
    f"{ci_text} intervals.")

explain.how_computed(
    f"Rates: responders of the patients counted, {population_text}, with 95% {ci_text} "
    "intervals. Median pain change: exact distribution-free 95% interval for the median (order "
    "statistics).", *(m.statistics_text() for m in view.measures))

with st.expander(f"{quarter.name} and {previous.name} side by side", expanded=False):
    rows = []
    for measure in view.measures:
        rows.append({
            "measure": measure.label,
            quarter.name: measure.quarter_text("quarter"),
            previous.name: measure.quarter_text("previous"),
            "change": measure.delta_text or "–",
        })
    st.dataframe(rows, hide_index=True, width="stretch")

# -- activity per quarter ---------------------------------------------------

activity = view.activity
labels = [q if complete else f"{q} (to {formatting.long_date(view.cutoff)})"
          for q, complete in zip(activity["quarter"], activity["complete"])]
opacity = [1.0 if complete else 0.45 for complete in activity["complete"]]
figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                       subplot_titles=("Patients starting treatment", "Infusion visits"))
figure.add_trace(go.Bar(
    x=labels, y=activity["patients_starting"], marker=dict(color=theme.PRIMARY, opacity=opacity),
    name="Patients starting treatment",
    text=[formatting.count(v) for v in activity["patients_starting"]], textposition="outside",
    hovertemplate="%{x}: %{text} patients started<extra></extra>"), row=1, col=1)
figure.add_trace(go.Bar(
    x=labels, y=activity["infusions"], marker=dict(color=theme.ACCENT, opacity=opacity),
    name="Infusion visits", text=[formatting.count(v) for v in activity["infusions"]],
    textposition="outside", hovertemplate="%{x}: %{text} infusion visits<extra></extra>"),
    row=1, col=2)
figure.update_layout(showlegend=False, bargap=0.25)
figure.update_yaxes(rangemode="tozero", tickformat=",d")
figure.update_xaxes(tickangle=-45)
st.plotly_chart(theme.styled(figure, "Treatment activity per quarter", height=380),
                width="stretch")
if not activity["complete"].all():
    st.caption("The pale bar is the quarter still in progress at the data cutoff.")
