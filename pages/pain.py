"""Pain over time: weekly pain since the first infusion, each patient's change
at the timepoint (waterfall), and the acute effect of each infusion."""

import plotly.graph_objects as go
import streamlit as st

from analysis.metrics import charts, conditions, outcomes, pain
from analysis.core import definitions, formatting, words
from ui import explain, page_context, theme

ctx = page_context.get(__file__)
st.title("Pain over time")

POOLED = "All conditions (pooled)"
options = ctx.call(conditions.conditions_in_view, ctx.filters)
if not options:
    st.info("No patients match the filters: no treated patient is in view. Widen the sites, "
            "conditions, routes or cohort in the sidebar.", icon=":material/filter_alt_off:")
    st.stop()

choice = st.selectbox("Condition", [POOLED, *options], key="pain_condition",
                      help="Narrows every chart on this page to one condition of those in view.")
condition = None if choice == POOLED else choice
filters = conditions.for_condition(ctx.filters, condition)
who = condition or "all conditions in view"
timepoint_label = definitions.TIMEPOINT_LABELS[ctx.timepoint]

# -- pain by week -------------------------------------------------------------

week_chart = ctx.call(pain.pain_week_chart, filters, ctx.audience)
st.subheader("Usual pain by week since the first infusion")
if not week_chart.drawn:
    st.info(f"{week_chart.nothing} ({who}).")
else:
    # Weeks with too few patients are empty, so the line and band break there.
    weeks = week_chart.points
    figure = go.Figure()
    figure.add_trace(theme.band(weeks["week"], weeks["q1"], weeks["q3"], "interquartile range"))
    figure.add_trace(go.Scatter(
        x=weeks["week"], y=weeks["median"], mode="lines+markers", name="median",
        line=dict(color=theme.PRIMARY, width=2.5), marker=dict(size=5),
        customdata=[[formatting.number(m), formatting.number(a), formatting.number(b),
                     formatting.count(n)]
                    for m, a, b, n in zip(weeks["median"], weeks["q1"], weeks["q3"],
                                          weeks["patients"])],
        hovertemplate="week %{x}: median %{customdata[0]} (IQR %{customdata[1]}–"
                      "%{customdata[2]}), %{customdata[3]} patients<extra></extra>"))
    figure.update_yaxes(range=[0, 10], title="pain (0–10, before any infusion that day)")
    figure.update_xaxes(title="weeks since the first infusion",
                        range=[-0.5, pain.LAST_WEEK + 0.5])
    st.plotly_chart(theme.styled(figure, f"Pain score by week: {who}"), width="stretch")
    explain.not_drawn(week_chart.not_drawn)
    explain.how_computed(
        "Week = whole weeks since the first infusion (week 0 holds the first infusion day, so "
        "its pain is the pre-treatment level). A patient counts once per week (the mean of "
        "their scores that week); the line is the median of those, the band the middle half "
        f"of patients (between the quartiles). Weeks 0–{pain.LAST_WEEK} with at least "
        f"{charts.MIN_PER_POINT} patients are drawn; gaps are weeks with fewer.")

# -- waterfall ----------------------------------------------------------------

MAX_BARS = 2000

waterfall = ctx.call(pain.pain_waterfall, ctx.timepoint, ctx.definition, filters,
                     ctx.audience)
bars = waterfall.bars
st.subheader(f"Each patient's change in pain at {timepoint_label}")
if bars.empty:
    st.info(f"No patients with a baseline and a pain score at {timepoint_label} ({who}).")
else:
    show_ids = waterfall.ids_shown
    # Past a few thousand bars a browser only sees the shape: draw every k-th
    # patient of the sorted list (same shape, same lines) and say so.
    step = max(1, -(-len(bars) // MAX_BARS))
    ranked = bars.assign(rank=range(1, len(bars) + 1)).iloc[::step]
    figure = go.Figure()
    for responder, name in ((True, f"responder ({waterfall.definition})"),
                            (False, "not a responder")):
        part = ranked[ranked["responder"] == responder]
        if part.empty:
            continue
        positions = part["rank"]
        hover = [f"{formatting.signed(c, 0)}% ({formatting.number(b)} → "
                 f"{formatting.number(f)})"
                 for c, b, f in zip(part["percent_change"], part["baseline_pain"],
                                    part["follow_up_pain"])]
        if show_ids:
            hover = [f"{pid}: {text}" for pid, text in zip(part["patient_id"], hover)]
        figure.add_trace(go.Bar(
            x=positions, y=part["percent_change"], name=name,
            marker=dict(color=theme.GOOD if responder else theme.NEUTRAL, line=dict(width=0)),
            hovertext=hover, hoverinfo="text"))
    for level, text in ((-30, "−30% (moderately important)"), (-50, "−50% (substantial)")):
        theme.reference_line(figure, y=level, color=theme.ACCENT, dash="dash", text=text,
                             position="bottom left")
    figure.update_layout(bargap=0.05, barmode="overlay")
    figure.update_xaxes(title=f"patients, sorted ({formatting.count(len(bars))})",
                        showticklabels=False, range=[0.5, len(bars) + 0.5])
    figure.update_yaxes(title="change in pain from baseline (%)", ticksuffix="%",
                        zeroline=True)
    st.plotly_chart(theme.styled(figure, f"Change in pain at {timepoint_label}: {who}"),
                    width="stretch")
    note = ""
    if waterfall.definition != waterfall.requested_definition:
        note = (f" The responder definition in use ({waterfall.requested_definition}) is not a "
                f"pain measure, so bars are coloured by {waterfall.definition}.")
    change = ctx.call(outcomes.median_pain_change, ctx.timepoint, filters)
    median_text = formatting.change_with_ci(change.median, change.ci_low, change.ci_high)
    better = words.chance_words(change.wilcoxon_p, (change.median or 0) > 0)
    st.markdown(
        f"**Median change in pain: {median_text}** among {formatting.count(change.n)} "
        "patients: " + {"clearly lower": "pain clearly fell.",
                        "clearly higher": "pain clearly rose."}.get(
            better, "the change could be chance."))
    st.caption(
        f"{formatting.count(len(bars))} patients with baseline pain above 0, due at "
        f"{timepoint_label} (window closed) and with its pain score; "
        f"{formatting.count(waterfall.responders)} "
        f"respond by {waterfall.definition} ({definitions.DEFINITION_LABELS[waterfall.definition]})."
        f" Not drawn: {formatting.count(waterfall.due_without_follow_up)} patients who reached "
        f"the timepoint without a pain score (counted as non-responders in ITT), and early "
        f"(provisional) scores of patients whose window is still open (see Patient timeline)."
        f"{note}{'' if show_ids else ' Patient ids are shown to the clinical team only.'}"
        + (f" Every {step}th patient of the sorted list is drawn." if step > 1 else ""))
    explain.how_computed(
        "Each bar is one patient: their pain at the timepoint against their baseline, as a "
        "percentage (−30% is moderately important, −50% substantial, IMMPACT).",
        f"Wilcoxon signed-rank p {formatting.p_text(change.wilcoxon_p)} (against no change), "
        f"{formatting.count(change.n)} patients. The median's 95% interval is the exact "
        "distribution-free interval (order statistics), a single value when so many patients "
        "changed by exactly the median that it is the median with at least 95% confidence.")

# -- acute effect ---------------------------------------------------------------

acute_result = ctx.call(pain.acute_chart, filters, ctx.audience)
acute = acute_result.points
st.subheader("Acute effect of each treatment session")
if not acute_result.drawn:
    st.info(f"{acute_result.nothing} ({who}).")
else:
    figure = go.Figure()
    numbers = acute["infusion_number"]
    figure.add_trace(go.Scatter(
        x=numbers, y=acute["median"], mode="markers", name="median (IQR)",
        marker=dict(color=theme.PRIMARY, size=9, symbol="square"),
        error_y=dict(type="data", symmetric=False, array=acute["q3"] - acute["median"],
                     arrayminus=acute["median"] - acute["q1"], color=theme.PRIMARY,
                     thickness=1.5, width=4),
        customdata=[[formatting.number(m), formatting.number(a), formatting.number(b),
                     formatting.count(n)]
                    for m, a, b, n in zip(acute["median"], acute["q1"], acute["q3"],
                                          acute["patients"])],
        hovertemplate="session %{x}: median %{customdata[0]} points (IQR %{customdata[1]}–"
                      "%{customdata[2]}), %{customdata[3]} patients<extra></extra>"))
    figure.update_xaxes(title="treatment session number (infusion visits and boosters in date "
                              "order)",
                        dtick=1 if int(numbers.max()) <= 30 else None,
                        range=[0.4, int(numbers.max()) + 0.6])
    figure.update_yaxes(title="pain before − pain right after (points)", rangemode="tozero")
    st.plotly_chart(theme.styled(figure, f"Acute relief by treatment session number: {who}"),
                    width="stretch")
    explain.not_drawn(acute_result.not_drawn)
    explain.how_computed(
        "Acute relief = the pain score before the session minus the score right after it (the "
        "same day; positive = less pain). Each point is the median over the patients with both "
        "scores at that session number, the bar the middle half of them (quartiles). Session "
        f"numbers with at least {charts.MIN_PER_POINT} patients are drawn.")
