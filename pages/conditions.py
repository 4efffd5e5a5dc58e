"""Conditions: responder rate by condition (forest plot) and the table behind it."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.core import audience, definitions, formatting, words
from analysis.metrics import conditions, pgic
from ui import explain, page_context, theme

ctx = page_context.get(__file__)
st.title("Results by condition")

summary = ctx.call(conditions.condition_summary, ctx.timepoint, ctx.definition, ctx.population,
                   ctx.filters, ctx.ci, ctx.audience, ctx.source.pgic_best)
table = summary.table
overall = summary.overall
ci_name = "Wilson" if ctx.ci == "wilson" else "Clopper–Pearson"

st.caption(f"Responder rate by condition: {ctx.setting_text}. Bars are 95% {ci_name} "
           f"intervals; the dashed line is the rate over all conditions in view. Ranked by the "
           f"lower end of the interval, highest first, so that a small group's lucky rate does "
           f"not lead; conditions with fewer than {audience.SMALL_CELL} patients are too few to "
           f"report: they come last, with no point drawn.")

if overall.n == 0:
    st.info("No patients match the filters at this timepoint: nobody in view has the baseline "
            "this definition needs and has reached the timepoint. Try another timepoint, "
            "definition or wider filters.", icon=":material/filter_alt_off:")
    st.stop()


def row_label(row) -> str:
    label = f"{row.condition} (n={formatting.count(row.n)})"
    return label if row.drawn else f"{label}: too few to draw"


# -- forest plot --------------------------------------------------------------
# The table's ranking (highest rate first, too few last) from the top down:
# Plotly draws the first category at the bottom.
shown = table.iloc[::-1]
labels = [row_label(r) for r in shown.itertuples()]
figure = go.Figure()
# A condition the builder draws no point for (fewer than 11 patients) keeps
# its row and its label ("too few to draw"): its interval would span most of
# the axis and its rate is noise.
rows = shown[shown["drawn"]]
if not rows.empty:
    rate = rows["rate"].astype(float)
    figure.add_trace(go.Scatter(
        x=rate,
        y=[row_label(r) for r in rows.itertuples()],
        mode="markers",
        name="rate (95% CI)",
        marker=dict(size=11, color=theme.PRIMARY, symbol="square", line=dict(width=2)),
        error_x=dict(type="data", symmetric=False,
                     array=rows["ci_high"].astype(float) - rate,
                     arrayminus=rate - rows["ci_low"].astype(float),
                     color=theme.PRIMARY, thickness=1.6, width=5),
        customdata=[[r.condition, formatting.rate_with_ci(r.rate, r.ci_low, r.ci_high),
                     formatting.count(r.responders), formatting.count(r.n)]
                    for r in rows.itertuples()],
        hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<br>"
                      "%{customdata[2]} of %{customdata[3]} patients<extra></extra>",
    ))
pgic_shown = shown[shown["pgic_drawn"]]
if not pgic_shown.empty:
    # What patients say, beside the pain result (no interval: see the table).
    figure.add_trace(go.Scatter(
        x=pgic_shown["pgic_rate"].astype(float),
        y=[row_label(r) for r in pgic_shown.itertuples()],
        mode="markers", name=pgic.LABEL, cliponaxis=False,
        marker=dict(size=10, color=theme.ACCENT, symbol="diamond-open", line=dict(width=2)),
        customdata=[[r.condition, formatting.rate_with_ci(r.pgic_rate, r.pgic_ci_low,
                                                          r.pgic_ci_high),
                     formatting.count(r.pgic_responders), formatting.count(r.pgic_n)]
                    for r in pgic_shown.itertuples()],
        hovertemplate="<b>%{customdata[0]}</b><br>PGIC much or very much improved: "
                      "%{customdata[1]}<br>%{customdata[2]} of %{customdata[3]} patients"
                      "<extra></extra>",
    ))
left_out = shown[~shown["drawn"]]
if not left_out.empty:
    # Keep the category on the axis, with nothing drawn: too few.
    figure.add_trace(go.Scatter(x=[None] * len(left_out),
                                y=[row_label(r) for r in left_out.itertuples()],
                                mode="markers", showlegend=False, hoverinfo="skip"))
if overall.rate is not None:
    theme.reference_line(figure, x=overall.rate, color=theme.ACCENT, dash="dash", width=2,
                         text=f"all conditions {formatting.percent(overall.rate)}")
figure.update_yaxes(categoryorder="array", categoryarray=labels, title=None, showgrid=False)
figure.update_xaxes(range=[0, 1], tickformat=".0%", title="responder rate (95% CI)")
title = (f"{definitions.DEFINITION_LABELS[ctx.definition]} at "
         f"{definitions.TIMEPOINT_LABELS[ctx.timepoint]}, by condition")
height = max(360, 120 + 34 * len(labels))
theme.styled(figure, title, height=height)
# The legend 26 px above the plot: the line's label ("all conditions 36%")
# stands on the plot's top edge, and the legend sat on it.
figure.update_layout(margin=dict(l=20, r=30, t=110, b=50),
                     legend=dict(y=1 + 26 / (height - 160), yanchor="bottom"))
st.plotly_chart(figure, width="stretch")
explain.not_drawn(summary.not_drawn)

# -- table ----------------------------------------------------------------


CHANGE = "Median pain change (95% CI)"
COMPARED = "Compared with the other conditions"


def compared(row) -> str:
    """Plain words for the condition's rate against all the others pooled."""
    others_n = overall.n - row.n
    if not others_n or row.n == 0:
        return ""
    others = (overall.responders - row.responders) / others_n
    return words.chance_words(row.p_holm, row.rate > others)


def rate_text(group) -> str:
    """"48% (41%–55%), 95 of 199"."""
    if not group.n:
        return "no patient due"
    return (f"{formatting.percent(group.rate)} ({formatting.percent_range(group.ci_low, group.ci_high)})"
            f", {formatting.count(group.responders)} of {formatting.count(group.n)}")


# The table a director reads: each figure with its denominator, the
# comparison in words; the statistics behind it are one click away.
plain = [{
    "Condition": r.condition,
    "Responder rate (95% CI)": rate_text(r),
    COMPARED: compared(r),
    "PGIC much improved": formatting.rate_with_ci(r.pgic_rate, r.pgic_ci_low, r.pgic_ci_high),
    CHANGE: formatting.change_with_ci(r.median_change, r.median_ci_low, r.median_ci_high),
    "Note": r.note,
} for r in table.itertuples()]
change = summary.pain_change
plain.append({
    "Condition": "All conditions in view",
    "Responder rate (95% CI)": rate_text(overall),
    COMPARED: "",
    "PGIC much improved": formatting.rate_with_ci(*((summary.pgic.rate, summary.pgic.ci_low,
                                                      summary.pgic.ci_high) if summary.pgic
                                                    else (None, None, None))),
    CHANGE: formatting.change_with_ci(change.median, change.ci_low, change.ci_high),
    "Note": "",
})
# A static table: its cells wrap, so every column is on screen at 1280 px (the
# grid put the median change and the note off the edge).  st.table draws
# markdown: every cell here is the code's own words and numbers (condition
# names are the reference list's, data/conditions.csv).
st.table(pd.DataFrame(plain), hide_index=True)
st.caption(f"Each rate: responders of the patients counted ({ctx.setting_text}). “Clearly "
           "higher” or “clearly lower”: chance alone would rarely give a difference this large "
           "from the other conditions together; “could be chance”: it might. Median pain "
           "change: follow-up minus baseline pain on the 0–10 scale. Too few to report: fewer "
           f"than {audience.SMALL_CELL} patients, shown flagged to the clinical team and "
           "analysts, never outside the clinic.")

rows = [{
    "Condition": r.condition,
    "Patients (n)": formatting.count(r.n),
    "Responders": formatting.count(r.responders),
    "Rate": formatting.percent(r.rate),
    f"95% CI ({ci_name})": formatting.percent_range(r.ci_low, r.ci_high),
    "p vs other conditions (Holm)": formatting.p_value(r.p_holm),
    "With a pain follow-up (n)": formatting.count(r.change_n),
    "Wilcoxon p": formatting.p_value(r.wilcoxon_p),
} for r in table.itertuples()]
rows.append({
    "Condition": "All conditions in view",
    "Patients (n)": formatting.count(overall.n),
    "Responders": formatting.count(overall.responders),
    "Rate": formatting.percent(overall.rate),
    f"95% CI ({ci_name})": formatting.percent_range(overall.ci_low, overall.ci_high),
    "p vs other conditions (Holm)": "",
    "With a pain follow-up (n)": formatting.count(change.n),
    "Wilcoxon p": formatting.p_value(change.wilcoxon_p),
})
explain.how_computed(
    f"**Rates** carry a 95% {ci_name} interval. **Ranking**: by the lower end of the interval, "
    f"so a small group's lucky rate does not lead; groups under {audience.SMALL_CELL} patients "
    "come last.",
    "**Compared with the other conditions**: Fisher's exact test of each condition's responder "
    "rate against all other conditions pooled, with Holm's adjustment for testing every "
    f"condition at once; “clearly” when the adjusted p is below {words.CLEAR_BELOW:g}.",
    "**Median pain change**: among patients with baseline pain above 0 who are due at this "
    "timepoint and have its pain score (fewer than the rate's n in ITT, which also counts due "
    "patients without a score), whatever the definition. Its 95% interval is the exact "
    "distribution-free interval for a median (order statistics, no resampling): a single value "
    "when so many patients changed by exactly the median that it is the median with at least "
    "95% confidence; none under 6 patients. Wilcoxon p: signed-rank test of the changes "
    "against no change.",
    table=rows)
