"""Depression & PTSD: PHQ-9 response and remission, PCL-5 improvement, and how
depression response goes with pain relief."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.core import definitions, words
from analysis.metrics import mood
from analysis.core.formatting import count, p_value, percent
from ui import explain, page_context, theme

ctx = page_context.get(__file__)
timepoint_label = definitions.TIMEPOINT_LABELS[ctx.timepoint]
population_label = "ITT" if ctx.population == "itt" else "completers only"

st.title("Depression & PTSD")
st.caption(
    "Same baseline, windows and populations as pain: baseline = last score in the 30 days up to "
    "the first infusion; follow-up = the score closest to the timepoint inside its window. "
    "PHQ-9 response = at least 50% lower; remission = below 5; both only for patients starting "
    "at PHQ-9 10 or more (at least moderate depression). PCL-5 improvement = at least 10 points "
    "lower, only for patients starting at PCL-5 33 or more (probable PTSD). "
    + ("ITT: a patient who reached the timepoint without a score counts as not improved."
       if ctx.population == "itt" else
       "Completers only: patients with a follow-up score (optimistic)."))

rates = ctx.call(mood.mood_rates, ctx.timepoint, ctx.population, ctx.filters, ctx.ci,
                ctx.audience)
if rates.treated == 0:
    st.info("No treated patients match these filters. Widen the filters in the sidebar.")
    st.stop()


# -- headline ----------------------------------------------------------------

st.subheader(f"At {timepoint_label} ({population_label})")
columns = st.columns(len(mood.MEASURES))
for column, measure in zip(columns, rates.measures):
    g = measure.overall
    with column:
        st.metric(measure.label, percent(g.rate), help=f"Eligible: {measure.eligibility}.")
        if g.n == 0:
            st.caption("No eligible patient has reached this timepoint.")
        else:
            st.caption(f"95% CI {percent(g.ci_low)}–{percent(g.ci_high)} · "
                       f"{count(g.responders)} of {count(g.n)} patients"
                       + (" · too few to report" if g.too_few else ""))

# -- over time ---------------------------------------------------------------

chart = ctx.call(mood.mood_chart, ctx.population, ctx.filters, ctx.ci, ctx.audience)
fig = go.Figure()
labels = [definitions.TIMEPOINT_LABELS[t] for t in definitions.TIMEPOINTS]
for measure in mood.MEASURES:
    # The builder left out every point from fewer than 11 patients.
    rows = chart.points[chart.points.measure == measure]
    if not rows["drawn"].any():
        continue
    rate = rows["rate"].astype(float)   # a point left out is empty (NaN): a gap
    y = list(100 * rate)
    plus = list(100 * (rows["ci_high"].astype(float) - rate))
    minus = list(100 * (rate - rows["ci_low"].astype(float)))
    fig.add_trace(go.Scatter(
        x=labels, y=y, mode="lines+markers", name=mood.MEASURE_SHORT[measure],
        error_y=dict(type="data", array=plus, arrayminus=minus, visible=True, thickness=1.2),
        customdata=list(zip(rows["responders"], rows["n"])),
        hovertemplate="%{x}: %{y:.0f}% (%{customdata[0]} of %{customdata[1]})<extra>"
                      + mood.MEASURE_SHORT[measure] + "</extra>"))
if not chart.drawn:
    explain.too_few_to_draw(chart.nothing)
else:
    fig.add_vrect(x0=labels.index(definitions.TIMEPOINT_LABELS[ctx.timepoint]) - 0.3,
                  x1=labels.index(definitions.TIMEPOINT_LABELS[ctx.timepoint]) + 0.3,
                  fillcolor=theme.NEUTRAL, opacity=0.12, line_width=0)
    fig.update_yaxes(title="Patients improved (%)", range=[0, 100], ticksuffix="%")
    fig.update_xaxes(title="Time since first infusion", categoryorder="array",
                     categoryarray=labels)
    st.plotly_chart(theme.styled(
        fig, f"Mood outcomes over time ({population_label}, 95% CI)", height=400),
        width="stretch")
    explain.not_drawn(chart.not_drawn)
    explain.how_computed(
        "Each point: the share of eligible patients due at that timepoint who improved "
        f"({population_label}); bars are 95% {'Clopper–Pearson' if ctx.ci == 'exact' else 'Wilson'} "
        "intervals. The shaded timepoint is the sidebar's. Hover a point for its count "
        "(improved of patients counted).")

# -- by condition --------------------------------------------------------------

st.subheader(f"By condition at {timepoint_label}")
table = {"Condition": [g.group for g in rates.measures[0].by_condition]}
for measure in rates.measures:
    table[mood.MEASURE_SHORT[measure.measure]] = [mood.rate_cell(g) for g in measure.by_condition]
st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch",
             height=38 + 35 * len(table["Condition"]))
st.caption("Rate (95% CI) · improved of patients counted. ⚠ = fewer than 11 patients: too few "
           "to report outside the clinic.")

# -- pain and mood together ----------------------------------------------------

st.subheader("Pain relief and depression response together")
pair = ctx.call(mood.pain_mood_table, ctx.timepoint, ctx.filters, ctx.audience)
depression = rates.get("phq9_response").overall
st.caption(f"Patients with both follow-ups observed at {timepoint_label}: a pain score and a "
           f"PHQ-9 score, each due (window closed) and recorded, among patients eligible for "
           f"both (baseline pain above 0, baseline PHQ-9 10 or more). A missing follow-up is "
           f"never counted as no response on both, so this table holds fewer patients than "
           f"the depression-response rate above ({population_label}"
           f": {count(depression.responders)} of {count(depression.n)} patients"
           ", which counts everyone due whatever their pain follow-up).")
if pair.n == 0:
    st.info("No patient is counted for both pain and depression response at this timepoint "
            "with these filters.")
else:
    crosstab = pd.DataFrame(
        {"Depression response": [pair.both, pair.mood_only, pair.both + pair.mood_only],
         "No depression response": [pair.pain_only, pair.neither, pair.pain_only + pair.neither],
         "Total": [pair.pain_responders, pair.pain_non_responders, pair.n]},
        index=pd.Index(["≥30% less pain", "Less than 30% pain relief", "Total"],
                       name="Pain relief"))
    given_pain = pair.mood_rate_given_pain(True)
    given_none = pair.mood_rate_given_pain(False)
    more = (given_pain or 0) > (given_none or 0)
    reading = words.chance_words(pair.odds_ratio.p_value, more)
    st.markdown(
        f"**Depression lifted in {percent(given_pain)} of the patients whose pain eased "
        f"({pair.both} of {pair.pain_responders}) and in {percent(given_none)} of the others "
        f"({pair.mood_only} of {pair.pain_non_responders})**: "
        + ({"clearly higher": "clearly more often when pain eased.",
            "clearly lower": "clearly less often when pain eased."}.get(
               reading, "the difference could be chance.")))
    st.caption("An association, not proof that one causes the other."
               + (" Too few to report: fewer than 11 patients." if pair.too_few else ""))
    st.dataframe(crosstab, width="content")
    p_text = p_value(pair.odds_ratio.p_value)
    explain.how_computed(
        f"Odds ratio {mood.odds_ratio_text(pair)}: how much higher the odds of a depression "
        "response are among pain responders than among the others (1 = no difference).",
        f"Fisher's exact test, two-sided: p {p_text if p_text.startswith('<') else '= ' + p_text}; "
        f"“clearly” when p is below {words.CLEAR_BELOW:g}.",
        "Only patients with both follow-ups observed are in the table (see above).")

# -- who is counted --------------------------------------------------------------

with st.expander("Who is counted"):
    reasons = {
        "treated": "Treated patients in view",
        "no_baseline_score": "No baseline score",
        "baseline_below_threshold": "Baseline below the threshold",
        "not_yet_due": "Not yet due",
        "provisional": "↳ of those, with an early (provisional) score: not counted",
        "missing_follow_up_counted_as_non_responder": "Due, no follow-up score (counted as not improved)",
        "missing_follow_up": "No follow-up score (left out)",
    }
    who = pd.DataFrame({mood.MEASURE_SHORT[m.measure]: m.excluded for m in rates.measures})
    who.index = [reasons.get(k, k) for k in who.index]
    denominators = {mood.MEASURE_SHORT[m.measure]: m.overall.n for m in rates.measures}
    who.loc["Counted"] = pd.Series(denominators)
    st.dataframe(who, width="stretch")
    st.caption(f"Data cutoff {rates.cutoff or '–'}. A patient is due at {timepoint_label} when "
               "the whole window has closed by the cutoff (first infusion + window end ≤ "
               "cutoff). A score recorded while the window is still open is provisional: a "
               "closer visit may still come, so it is not counted (see Patient timeline).")
