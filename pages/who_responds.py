"""Who responds: adjusted odds ratios, and how predictable response is."""

import plotly.graph_objects as go
import streamlit as st

from analysis import definitions, formatting, response_model
from ui import page_context, safe, theme

ctx = page_context.get(__file__)
st.title("Who responds")

result = ctx.call(response_model.who_responds, ctx.timepoint, ctx.definition, ctx.filters,
                  ctx.audience)
fit = result.fit
covariates = ", ".join(label[0].lower() + label[1:] if label[1:2].islower() else label
                       for _, label, _ in response_model.COVARIATES.values())

st.caption(
    f"A logistic regression of response ({ctx.definition}: "
    f"{definitions.DEFINITION_LABELS[ctx.definition]}, at "
    f"{definitions.TIMEPOINT_LABELS[ctx.timepoint]}) on {covariates}. Patients: the completers "
    f"(due, with the follow-up; the population setting does not apply, since a missing "
    f"follow-up says nothing of who responds) with every covariate recorded: "
    f"**n = {formatting.count(result.complete_covariates)}** of "
    f"{formatting.count(result.completers)} completers in view "
    f"({safe.text(ctx.filters.describe())}).")

if fit.refused:
    st.warning(safe.text(result.summary), icon=":material/block:")
else:
    st.info(safe.text(result.summary), icon=":material/lightbulb:")

missing = {k: v for k, v in result.missing.items() if v}
if missing:
    st.caption("Completers left out for a missing covariate: " + "; ".join(
        f"{label} {formatting.count(v)}" for label, v in missing.items())
        + " (a patient can lack several).")
for note in fit.notes:
    st.caption(f"Note: {safe.text(note)}.")

if fit.refused:
    st.stop()

# -- forest plot of adjusted odds ratios --------------------------------------
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
    customdata=[[t.label, f"{t.odds_ratio:.2f}", f"{t.ci_low:.2f}–{t.ci_high:.2f}",
                 formatting.p_value(t.p_value)] for t in terms],
    hovertemplate="<b>%{customdata[0]}</b><br>OR %{customdata[1]} (95% CI %{customdata[2]})"
                  "<br>p %{customdata[3]}<extra></extra>",
    showlegend=False))
figure.update_xaxes(type="log", title="adjusted odds ratio (95% CI), log scale",
                    tickvals=ODDS_TICKS, ticktext=[f"{v:g}" for v in ODDS_TICKS])
theme.reference_line(figure, x=1.0, color=theme.NEUTRAL, dash="dash", text="no association")
figure.update_yaxes(categoryorder="array", categoryarray=labels, title=None)
figure.update_layout(margin=dict(l=20, r=30, t=80, b=50))
st.plotly_chart(theme.styled(figure, "Adjusted odds ratios of response",
                             height=max(380, 120 + 28 * len(labels))), width="stretch")
st.caption("Right of 1: more likely to respond, all else in the model equal; green and red "
           "intervals exclude 1. A category is compared with its commonest level; numbers per "
           "the unit shown.")

rows = [{"Covariate": t.label, "Odds ratio": f"{t.odds_ratio:.2f}",
         "95% CI": f"{t.ci_low:.2f}–{t.ci_high:.2f}", "p": formatting.p_value(t.p_value)}
        for t in fit.terms]
st.dataframe(rows, hide_index=True, width="stretch", height=35 * (len(rows) + 1) + 3)

# -- how predictable -----------------------------------------------------------
st.subheader("How predictable is response?")
left, right = st.columns([1, 2])
with left:
    if fit.auc is None:
        st.metric("Cross-validated AUC", "–")
        st.caption(fit.cv_note or "")
    else:
        st.metric("Cross-validated AUC", f"{fit.auc:.2f}",
                  help="The chance that the model scores a responder above a non-responder, "
                       "for patients it was not fitted to (10-fold cross-validation).")
        low, high = fit.auc_ci
        st.caption(f"95% CI {low:.2f}–{high:.2f} (DeLong). 0.5 is a coin toss, 1 a sure "
                   f"prediction. On the patients it was fitted to the AUC is "
                   f"{fit.apparent_auc:.2f}: the difference is the optimism of judging a model "
                   f"on its own data. Events per variable: {fit.events_per_variable:.0f}.")
with right:
    if fit.calibration is not None:
        table = fit.calibration
        calibration = go.Figure()
        calibration.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect",
                                         line=dict(color=theme.NEUTRAL, dash="dash")))
        calibration.add_trace(go.Scatter(
            x=table["mean_predicted"], y=table["observed"], mode="markers+lines",
            name="tenths of predicted probability", marker=dict(size=9, color=theme.PRIMARY),
            error_y=dict(type="data", symmetric=False,
                         array=table["ci_high"] - table["observed"],
                         arrayminus=table["observed"] - table["ci_low"],
                         color=theme.PRIMARY, thickness=1.2, width=3),
            customdata=table[["n", "responders"]].to_numpy(),
            hovertemplate="predicted %{x:.0%}, observed %{y:.0%}<br>%{customdata[1]} of "
                          "%{customdata[0]} patients<extra></extra>"))
        calibration.update_xaxes(title="predicted probability (out of fold)", range=[0, 1],
                                 tickformat=".0%")
        calibration.update_yaxes(title="observed responder rate", range=[0, 1],
                                 tickformat=".0%")
        st.plotly_chart(theme.styled(calibration, "Calibration", height=380), width="stretch")
        st.caption("Patients grouped in tenths of their predicted probability: points on the "
                   "diagonal mean the predictions can be taken at face value; bars are 95% "
                   "Wilson intervals of the observed rate.")
