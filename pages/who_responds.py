"""Who responds: which patients are more likely to respond (adjusted odds ratios,
one click away), and how predictable response is."""

import plotly.graph_objects as go
import streamlit as st

from analysis.core import definitions, formatting
from analysis.metrics import response_model
from ui import explain, page_context, safe, theme

ctx = page_context.get(__file__)
st.title("Who responds")

result = ctx.call(response_model.who_responds, ctx.timepoint, ctx.definition, ctx.filters,
                  ctx.audience)
fit = result.fit
covariates = ", ".join(label[0].lower() + label[1:] if label[1:2].islower() else label
                       for _, label, _ in response_model.COVARIATES.values())
outcome = (f"{definitions.DEFINITION_LABELS[ctx.definition]} ({ctx.definition}) at "
           f"{definitions.TIMEPOINT_LABELS[ctx.timepoint]}")

st.caption(
    f"Which patients are more likely to respond ({outcome}), each item taken with the others "
    f"held equal: {covariates}. Patients: those due with the follow-up (completers; the "
    f"population setting does not apply, since a missing follow-up says nothing of who "
    f"responds) who have every item recorded: "
    f"**n = {formatting.count(result.complete_covariates)}** of "
    f"{formatting.count(result.completers)} completers in view "
    f"({safe.text(ctx.filters.describe())}).")

if fit.refused:
    st.warning(safe.text(result.summary), icon=":material/block:")
else:
    st.info(safe.text(result.summary), icon=":material/lightbulb:")

missing = {k: v for k, v in result.missing.items() if v}
if missing:
    st.caption("Completers left out for a missing item: " + "; ".join(
        f"{label} {formatting.count(v)}" for label, v in missing.items())
        + " (a patient can lack several).")
for note in fit.notes:
    st.caption(f"Note: {safe.text(note)}.")

if fit.refused:
    st.stop()

responders_text = (f"{formatting.count(fit.events)} responders among "
                   f"{formatting.count(fit.n)} patients")

# -- how much more likely, per item -------------------------------------------
# Labelled ticks only (the log axis labelled every minor tick: "7 8 9 0.1 2 3 ...").
ODDS_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
terms = list(fit.terms)[::-1]          # Plotly draws the first category at the bottom
labels = [t.label for t in terms]
figure = go.Figure(go.Scatter(
    x=[t.odds_ratio for t in terms], y=labels, mode="markers",
    marker=dict(size=10, symbol="square", color=[
        theme.GOOD if t.ci_low > 1 else theme.BAD if t.ci_high < 1 else theme.PRIMARY
        for t in terms]),
    error_x=dict(type="data", symmetric=False,
                 array=[t.ci_high - t.odds_ratio for t in terms],
                 arrayminus=[t.odds_ratio - t.ci_low for t in terms],
                 color=theme.NEUTRAL, thickness=1.5, width=4),
    customdata=[[t.label, response_model.odds_text(t), f"{t.ci_low:.2f}–{t.ci_high:.2f}",
                 response_model.chance_text(t)] for t in terms],
    hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]} (95% interval "
                  "%{customdata[2]})<br>could be chance? %{customdata[3]}<extra></extra>",
    showlegend=False))
figure.update_xaxes(type="log", title="times the odds of responding (95% interval), log scale",
                    tickvals=ODDS_TICKS, ticktext=[f"{v:g}" for v in ODDS_TICKS])
theme.reference_line(figure, x=1.0, color=theme.NEUTRAL, dash="dash", text="no difference")
figure.update_yaxes(categoryorder="array", categoryarray=labels, title=None)
figure.update_layout(margin=dict(l=20, r=30, t=80, b=50))
st.plotly_chart(theme.styled(figure, "How much more likely to respond, other things equal",
                             height=max(380, 120 + 28 * len(labels))), width="stretch")
st.caption(f"Right of 1: more likely to respond than the comparison, with the other items "
           f"held equal; left of 1: less likely. Green and red: clearly so (not chance); "
           f"blue: could be chance. A group (condition, route, site) is compared with its "
           f"commonest one; a measure per the step shown. Fitted on {responders_text}.")

rows = [{"Patients with": t.label,
         "How much more likely to respond": response_model.odds_text(t),
         "Could be chance?": response_model.chance_text(t)} for t in fit.terms]
st.dataframe(rows, hide_index=True, width="stretch", height=35 * (len(rows) + 1) + 3,
             column_config={
                 "Patients with": st.column_config.TextColumn(width="large"),
                 "How much more likely to respond": st.column_config.TextColumn(
                     help="The odds of responding against the comparison group (or per step "
                          "of a measure), the other items held equal: the odds ratio."),
                 "Could be chance?": st.column_config.TextColumn(
                     help="“Clearly” when the 95% interval of the odds ratio leaves out 1 "
                          "(p below 0.05).")})
explain.how_computed(
    f"A **logistic regression** of response ({outcome}) on {covariates}, fitted by maximum "
    f"likelihood on {responders_text} (statsmodels Logit).",
    "**How much more likely** is the **adjusted odds ratio**: the odds of responding "
    "(responders per non-responder) of a group against its comparison group, or per step of a "
    "measure, with every other item held equal; 1 means no difference. Odds are not chances: "
    "2 times the odds is less than twice the chance when responding is common.",
    "**Could be chance?** The 95% Wald interval of the odds ratio and its p-value (Wald test "
    "of no difference): “clearly” when the interval leaves out 1, which is p below 0.05. "
    f"Groups with fewer than {response_model.MIN_LEVEL_PATIENTS} patients are pooled; no "
    f"model is fitted with fewer than {response_model.MIN_EVENTS_PER_VARIABLE} responders "
    "(or non-responders, the rarer) per item.",
    table=[{"Covariate": t.label, "Odds ratio": f"{t.odds_ratio:.2f}",
            "95% CI": f"{t.ci_low:.2f}–{t.ci_high:.2f}", "p": formatting.p_value(t.p_value)}
           for t in fit.terms],
    key="who_responds_how_odds")

# -- how predictable -----------------------------------------------------------
st.subheader("How predictable is response?")
left, right = st.columns([1, 2])
with left:
    if fit.auc is None:
        st.metric("How well the model tells responders apart", "–")
        st.caption(safe.text(fit.cv_note or ""))
    else:
        st.metric("How well the model tells responders apart",
                  f"{round(100 * fit.auc)} in 100",
                  help="Shown one responder and one non-responder it was not fitted to, how "
                       "often the model gives the responder the higher chance. 50 in 100 is "
                       "a coin toss, 100 in 100 never wrong.")
        low, high = fit.auc_ci
        st.caption(f"Shown one responder and one non-responder it was not fitted to, the "
                   f"model {response_model.picks_text(fit.auc)} (between "
                   f"{round(100 * low)} and {round(100 * high)} with 95% confidence); a coin "
                   f"toss picks 50. From {responders_text}.")
with right:
    if fit.calibration is not None:
        table = fit.calibration
        calibration = go.Figure()
        calibration.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect",
                                         line=dict(color=theme.NEUTRAL, dash="dash")))
        calibration.add_trace(go.Scatter(
            x=table["mean_predicted"], y=table["observed"], mode="markers+lines",
            name="tenths of predicted chance", marker=dict(size=9, color=theme.PRIMARY),
            error_y=dict(type="data", symmetric=False,
                         array=table["ci_high"] - table["observed"],
                         arrayminus=table["observed"] - table["ci_low"],
                         color=theme.PRIMARY, thickness=1.2, width=3),
            customdata=table[["n", "responders"]].to_numpy(),
            hovertemplate="predicted %{x:.0%}, observed %{y:.0%}<br>%{customdata[1]} of "
                          "%{customdata[0]} patients<extra></extra>"))
        calibration.update_xaxes(title="predicted chance of responding", range=[0, 1],
                                 tickformat=".0%")
        calibration.update_yaxes(title="share who responded", range=[0, 1],
                                 tickformat=".0%")
        st.plotly_chart(theme.styled(calibration, "Do the predicted chances come true?",
                                     height=380), width="stretch")
        st.caption("Patients grouped in tenths of their predicted chance: points on the "
                   "diagonal mean the predictions can be taken at face value; bars are the "
                   "95% range of the share who responded.")
if fit.auc is not None:
    low, high = fit.auc_ci
    explain.how_computed(
        f"**How well the model tells responders apart** is the **cross-validated AUC** (area "
        f"under the ROC curve): {fit.auc:.2f}, 95% CI {low:.2f}–{high:.2f} (DeLong). The model "
        f"is fitted again in {response_model.FOLDS} folds, each scoring the patients it "
        f"left out; 0.5 is a coin toss, 1 a sure prediction.",
        f"On the patients it was fitted to the AUC is {fit.apparent_auc:.2f}: the difference "
        f"is the optimism of judging a model on its own data. Events per variable: "
        f"{fit.events_per_variable:.0f}.",
        "**Calibration**: in tenths of the predicted probability, the mean prediction "
        "against the observed rate, with 95% Wilson intervals.",
        key="who_responds_how_auc")
