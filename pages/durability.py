"""Durability: time to the first booster and how long pain relief lasts
(Kaplan–Meier, pooled and by condition)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.metrics import charts, durability
from analysis.core.formatting import count
from ui import explain, page_context, safe, theme

ctx = page_context.get(__file__)

st.title("Durability")
st.caption(
    "How long patients go before their first booster, and how long pain relief lasts, in "
    "days. A patient still waiting at their last visit counts as waiting up to then, never as "
    "having had the event. Timepoint, responder definition and population do not apply to "
    "this page.")

booster = ctx.call(durability.durability, "booster", ctx.filters, ctx.audience)
response = ctx.call(durability.durability, "response", ctx.filters, ctx.audience)
if booster.pooled.n == 0:
    st.info("No treated patients match these filters. Widen the filters in the sidebar.")
    st.stop()

if st.session_state.get("durability_condition") not in booster.groups:
    st.session_state["durability_condition"] = durability.POOLED  # filters changed the options
group = st.selectbox("Condition", booster.groups, key="durability_condition",
                     help="Shown beside all conditions pooled.")

Y_TITLES = {"booster": "Still without a booster (%)", "response": "Still responding (%)"}
COLOURS = (theme.PRIMARY, theme.ACCENT)
BANDS = ("rgba(31, 95, 139, 0.16)", "rgba(224, 122, 31, 0.16)")


def curves_for(result) -> list:
    chosen = [result.pooled]
    if group != durability.POOLED and group in result.groups:
        chosen.append(result.get(group))
    return chosen


def km_figure(result, curves) -> go.Figure:
    fig = go.Figure()
    for curve, colour, band in zip(curves, COLOURS, BANDS):
        if curve.n == 0:
            continue
        km = curve.km
        # Drawn while at least charts.MIN_PER_POINT patients are followed.
        until = durability.drawn_until(km)
        stop = 0 if until is None else sum(1 for t in km.time if t <= until)
        if not stop:
            continue
        t = list(km.time[:stop])
        fig.add_trace(go.Scatter(x=t, y=100 * km.ci_high[:stop], mode="lines", line_shape="hv",
                                 line_width=0, showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=t, y=100 * km.ci_low[:stop], mode="lines", line_shape="hv",
                                 line_width=0, fill="tonexty", fillcolor=band,
                                 showlegend=False, hoverinfo="skip"))
        name = f"{curve.group} (n={curve.n})" + (" – too few" if curve.too_few else "")
        fig.add_trace(go.Scatter(
            x=t, y=100 * km.survival[:stop], mode="lines", line_shape="hv", name=name,
            line=dict(color=colour, width=2.2),
            customdata=list(km.at_risk[:stop]),
            hovertemplate="day %{x}: %{y:.0f}% (%{customdata} at risk)<extra>"
                          f"{curve.group}</extra>"))
    theme.reference_line(fig, y=50)
    fig.update_yaxes(title=Y_TITLES[result.curve], range=[0, 102], ticksuffix="%")
    fig.update_xaxes(title="Days", rangemode="tozero")
    fig = theme.styled(fig, result.label, height=420)
    fig.update_layout(legend=dict(traceorder="normal"))
    return fig


def at_risk_table(curves) -> pd.DataFrame:
    rows = {}
    for curve in curves:
        rows[curve.group] = {f"day {d}": curve.at_risk[d] for d in durability.AT_RISK_DAYS}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "Number at risk"
    return frame


def section(result, intro: str) -> None:
    st.subheader(result.label)
    st.caption(intro)
    curves = curves_for(result)
    if group != durability.POOLED and group not in result.groups:
        st.info(f"No {group} patient is on this curve with these filters.")
    if result.pooled.n == 0:
        st.info("No patient is on this curve with these filters.")
        return
    for curve in curves:
        st.markdown(f"**{curve.group}**: {durability.plain_text(result, curve)}"
                    + (" **Too few to report** (fewer than 11 patients)." if curve.too_few
                       else ""))
    st.plotly_chart(km_figure(result, curves), width="stretch")
    stops = [(c.group, durability.drawn_until(c.km)) for c in curves if c.n]
    st.caption("Each curve stops where fewer than "
               f"{charts.MIN_PER_POINT} patients are still followed: "
               + "; ".join(f"{safe.text(g)} at day {int(d):,}" if d is not None else
                           f"{safe.text(g)} not drawn" for g, d in stops) + ".")
    explain.how_computed(
        "Kaplan–Meier estimates in days with 95% bands (log-log, Greenwood). A patient who "
        "has not had the event is *censored*: counted as event-free up to the last visit "
        "where it could have been seen, and not after. The dotted line is 50%: the day the "
        "curve crosses it is the median. Number at risk: patients still followed on that day.",
        *(f"**{safe.text(c.group)}**: median {durability.median_text(c.km)} · "
          f"{count(c.n)} patients, {count(c.events)} {durability.EVENT_LABELS[result.curve]}, "
          f"{count(c.censored)} censored" for c in curves if c.n))
    st.dataframe(at_risk_table(curves), width="stretch",
                 column_config={f"day {d}": st.column_config.NumberColumn(format="localized")
                                for d in durability.AT_RISK_DAYS})


section(booster,
        f"All {count(booster.excluded['treated'])} treated patients in view, from the first "
        "infusion to the first booster after it; a patient without a booster counts as waiting "
        "up to their last visit.")

ex = response.excluded
section(response,
        "From the first visit after the first infusion with at least 30% less pain than "
        "baseline, to the first later pain score above 70% of baseline. A patient still "
        "responding counts as responding up to their last visit with a pain score, not up to "
        "the data cutoff or a later visit without one: a loss of response can only be seen at "
        "a visit that records pain, so that is the last time it could have been observed. Not on "
        f"this curve: {count(ex['no_baseline_pain'])} without baseline pain "
        f"above 0, {count(ex['no_pain_score_after_index'])} without a pain score after the "
        f"first infusion, {count(ex['never_responded'])} who never reached 30% relief.")

with st.expander("Every condition"):
    for result in (booster, response):
        table = durability.summary_table(result)
        shown = pd.DataFrame({
            "Condition": table["group"],
            "Patients": table["n"],
            "Events": table["events"],
            "Censored": table["censored"],
            "Median (95% CI)": [durability.median_text(c.km)
                                for c in (result.pooled, *result.by_condition)],
            "Flag": ["too few to report" if f else "" for f in table["too_few"]],
        })
        st.markdown(f"**{result.label}**")
        st.dataframe(shown, hide_index=True, width="stretch", height=38 + 35 * len(shown),
                     column_config={c: st.column_config.NumberColumn(format="localized")
                                    for c in ("Patients", "Events", "Censored")})
