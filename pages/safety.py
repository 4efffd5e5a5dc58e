"""Safety: adverse events, blood pressure and oxygen saturation per 100
treatment sessions (infusion visits and boosters)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.metrics import adverse_events, safety
from analysis.core import words
from analysis.core.formatting import count
from ui import page_context, safe, theme

ctx = page_context.get(__file__)
reader = ctx.audience

st.title("Safety")
st.caption(
    "Per 100 treatment sessions: every infusion visit and booster of the patients in view, all "
    "routes. Adverse events count by category (nausea, dissociation or emergence reaction, ...; "
    "text the clinic's table does not name is \"other\"); a session listing several "
    "(\"nausea; headache\") counts once for each. Blood pressure and SpO2 rates are per 100 "
    "sessions that recorded them. The "
    "quarterly report's safety table is this same computation for one quarter. "
    "95% Wilson intervals" + (" (Clopper–Pearson chosen)" if ctx.ci == "exact" else "")
    + ". Timepoint, responder definition and population do not apply to this page.")

try:
    summary = ctx.call(safety.safety_summary, ctx.filters, ctx.ci)
except adverse_events.CategoriesFileError as problem:   # the clinic's own table
    st.error(f"The clinic's adverse-event categories cannot be read: {safe.text(problem)}")
    st.stop()
if summary.sessions == 0:
    st.info("No treatment sessions for the patients matching these filters. Widen the filters "
            "in the sidebar.")
    st.stop()


def value_text(rate) -> str:
    return "–" if rate.n == 0 else f"{rate.per_100:.1f}"


# -- headline ------------------------------------------------------------------

any_ae = summary.rate("any_adverse_event")
sbp = summary.rate("sbp_180")
spo2 = summary.rate("spo2_below_90")
c1, c2, c3, c4 = st.columns(4)
c1.metric("Treatment sessions in view", count(summary.sessions))
c1.caption(f"{count(summary.infusion_visits)} {words.INFUSION_VISITS} and "
           f"{count(summary.boosters)} {words.BOOSTERS} · {count(summary.patients)} patients")
for column, rate, label, denominator in (
        (c2, any_ae, "Any adverse event, per 100 sessions", "sessions"),
        (c3, sbp, "Systolic BP ≥ 180, per 100 sessions", "sessions with BP recorded"),
        (c4, spo2, "SpO2 below 90%, per 100 sessions", "sessions with SpO2 recorded")):
    column.metric(label, value_text(rate))
    if rate.n:
        column.caption(f"95% CI {rate.ci_low:.1f}–{rate.ci_high:.1f} · "
                       f"{count(rate.events)} of {count(rate.n)} {denominator}")

st.markdown(
    f"**Breathing.** The clinic says ketamine does not suppress breathing. In these data, SpO2 "
    f"fell below 90% during **{count(spo2.events)} of {count(spo2.n)}** sessions with SpO2 "
    f"recorded: {safety.per_100_text(spo2)}. "
    f"{count(summary.sessions - spo2.n)} sessions have no SpO2 recorded.")

# -- adverse events by type --------------------------------------------------------

st.subheader("Adverse events by category")
types = summary.table("overall", kind="adverse_event")
if types.empty:
    st.info("No adverse event is recorded for these sessions.")
else:
    ordered = types.iloc[::-1]
    fig = go.Figure(go.Bar(
        x=ordered["per_100"], y=ordered["measure"], orientation="h", marker_color=theme.PRIMARY,
        error_x=dict(type="data", array=ordered["ci_high"] - ordered["per_100"],
                     arrayminus=ordered["per_100"] - ordered["ci_low"], thickness=1.2),
        customdata=list(zip(ordered["events"], ordered["n"])),
        hovertemplate="%{y}: %{x:.1f} per 100 (%{customdata[0]} of %{customdata[1]})"
                      "<extra></extra>"))
    fig.update_xaxes(title=f"{words.capitalised(words.PER_100_SESSIONS)} (95% CI)",
                     rangemode="tozero")
    st.plotly_chart(theme.styled(fig, "Sessions with each adverse event category, per 100",
                                 height=120 + 36 * len(types)), width="stretch")
if reader.sees_free_text:
    with st.expander("Adverse-event text as exported (clinical team only)"):
        texts = ctx.call(adverse_events.texts, reader, ctx.filters)
        st.caption("Each text recorded on these sessions, the categories it counts under "
                   "(data/adverse_event_categories.csv, with the clinic's own rows) and the "
                   "sessions that recorded it. Text counted as \"other\" can be given a "
                   "category in the clinic's own table (see README). Analysts and every "
                   "report see the categories only.")
        st.dataframe(texts.rename(columns={"text": "Text as exported",
                                           "categories": "Counted as",
                                           "sessions": "Sessions"}),
                     hide_index=True, width="stretch")


COUNT_COLUMN = {"Sessions": st.column_config.NumberColumn(format="localized")}


def dimension_table(dimension: str, label: str) -> pd.DataFrame:
    rows = []
    for group in summary.groups(dimension):
        rows.append({
            label: safety.DOSE_BAND_LABELS.get(group, group) if dimension == "dose_band" else group,
            "Sessions": summary.rate("any_adverse_event", dimension, group).n,
            **{label: safety.per_100_cell(summary.rate(measure, dimension, group))
               for measure, label in (("any_adverse_event", "Any adverse event"),
                                      ("sbp_180", "Systolic BP ≥ 180"),
                                      ("spo2_below_90", "SpO2 below 90%"))},
        })
    return pd.DataFrame(rows)


def rate_bars(dimension: str, title: str, labels=None) -> go.Figure:
    rows = summary.table(dimension, kind="core")
    rows = rows[(rows.measure == "any_adverse_event") & (rows.n > 0)]
    names = [(labels or {}).get(g, g) for g in rows["group"]]
    fig = go.Figure(go.Bar(
        x=names, y=rows["per_100"], marker_color=theme.ACCENT,
        error_y=dict(type="data", array=rows["ci_high"] - rows["per_100"],
                     arrayminus=rows["per_100"] - rows["ci_low"], thickness=1.2),
        customdata=list(zip(rows["events"], rows["n"])),
        hovertemplate="%{x}: %{y:.1f} per 100 (%{customdata[0]} of %{customdata[1]})"
                      "<extra></extra>"))
    fig.update_yaxes(title="Any adverse event per 100 sessions", rangemode="tozero")
    return theme.styled(fig, title, height=340)


# -- by route and dose -----------------------------------------------------------

st.subheader("By route and ketamine dose")
left, right = st.columns(2)
left.plotly_chart(rate_bars("route", "By route"), width="stretch")
right.plotly_chart(rate_bars("dose_band", "By dose (mg/kg)"), width="stretch")
st.markdown("**By route** (recorded on the visit, else the patient's usual route)")
st.dataframe(dimension_table("route", "Route"), hide_index=True, width="stretch",
             column_config=COUNT_COLUMN)
st.markdown("**By ketamine dose** (mg per kg of body weight)")
st.dataframe(dimension_table("dose_band", "Dose"), hide_index=True, width="stretch",
             column_config=COUNT_COLUMN)
st.caption(
    "Each cell: per 100 treatment sessions (95% CI) · sessions with the event of those counted "
    "(for BP and SpO2, of those where it was recorded). ⚠ = fewer than 11 sessions: too few to "
    "report outside the clinical team. "
    f"Dose per kg uses the weight recorded at the session, else the patient's nearest recorded "
    f"weight ({count(summary.weight_from_nearest_visit)} sessions); "
    f"{count(summary.dose_unknown)} sessions have no dose or no weight at all (\"unknown\").")

with st.expander("Each adverse event category by route and dose"):
    for dimension, label in (("route", "Route"), ("dose_band", "Dose")):
        rows = summary.table(dimension, kind="adverse_event")
        if rows.empty:
            st.write("No adverse event recorded.")
            break
        rows = rows.assign(text=[safety.per_100_cell(r) for r in (
            summary.rate(m, dimension, g) for m, g in zip(rows["measure"], rows["group"]))])
        pivot = rows.pivot(index="measure", columns="group", values="text")
        pivot = pivot.reindex(index=summary.adverse_event_types, columns=summary.groups(dimension))
        if dimension == "dose_band":
            pivot.columns = [safety.DOSE_BAND_LABELS[c] for c in pivot.columns]
        pivot.index.name = "Adverse event category"
        st.markdown(f"**{label}**")
        st.dataframe(pivot, width="stretch")

# -- per quarter -------------------------------------------------------------------

st.subheader("Per quarter")
quarters = summary.table("quarter", kind="core")
fig = go.Figure()
colours = {"any_adverse_event": theme.PRIMARY, "sbp_180": theme.ACCENT,
           "spo2_below_90": theme.BAD}
bands = {"any_adverse_event": "rgba(31, 95, 139, 0.15)", "sbp_180": "rgba(224, 122, 31, 0.15)",
         "spo2_below_90": "rgba(192, 57, 43, 0.15)"}
for measure, label in safety.CORE_MEASURES.items():
    rows = quarters[(quarters.measure == measure) & (quarters.n > 0)]
    fig.add_trace(go.Scatter(x=rows["group"], y=rows["ci_high"], mode="lines", line_width=0,
                             showlegend=False, hoverinfo="skip", legendgroup=measure))
    fig.add_trace(go.Scatter(x=rows["group"], y=rows["ci_low"], mode="lines", line_width=0,
                             fill="tonexty", fillcolor=bands[measure], showlegend=False,
                             hoverinfo="skip", legendgroup=measure))
    fig.add_trace(go.Scatter(
        x=rows["group"], y=rows["per_100"], mode="lines+markers", name=label,
        line_color=colours[measure], legendgroup=measure,
        customdata=list(zip(rows["events"], rows["n"])),
        hovertemplate="%{x}: %{y:.1f} per 100 (%{customdata[0]} of %{customdata[1]})"
                      f"<extra>{label}</extra>"))
fig.update_yaxes(title="Per 100 treatment sessions (95% CI band)", rangemode="tozero")
fig.update_xaxes(title="Quarter of the visit", type="category")
st.plotly_chart(theme.styled(
    fig, "Safety events per 100 treatment sessions, by quarter", height=400), width="stretch")
st.dataframe(dimension_table("quarter", "Quarter"), hide_index=True, width="stretch",
             column_config=COUNT_COLUMN)
