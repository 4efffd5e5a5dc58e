"""Sites and providers: a funnel plot of responder rates against volume."""

import plotly.graph_objects as go
import streamlit as st

from analysis.core import audience, definitions, formatting
from analysis.metrics import site_comparison
from ui import page_context, theme

ctx = page_context.get(__file__)
st.title("Sites & providers")
ci_name = "Wilson" if ctx.ci == "wilson" else "Clopper–Pearson"

choices = site_comparison.dimensions_for(ctx.audience)
by = choices[0] if len(choices) == 1 else st.radio(
    "Compare", list(choices), horizontal=True,
    format_func=lambda d: {"site": "Sites", "provider": "Providers"}[d], key="comparison_by")
result = ctx.call(site_comparison.compare, by, ctx.timepoint, ctx.definition, ctx.population,
                  ctx.filters, ctx.ci, ctx.audience)
if result.fixed:
    st.caption(f"Responder rate by site over the whole program (a fixed table: no filter "
               f"applies): {definitions.DEFINITION_LABELS[result.definition]} "
               f"({result.definition}) at {definitions.TIMEPOINT_LABELS[result.timepoint]}, "
               f"{'ITT' if result.population == 'itt' else 'completers only'}. Counts under "
               f"{audience.SMALL_CELL}, and any that would reveal one, are not shown.")
groups = result.groups
program_rate = result.program

if program_rate.n in (0, None) or groups.empty:
    st.info("No patients match the filters at this timepoint: nobody in view has the baseline "
            "this definition needs and has reached the timepoint.",
            icon=":material/filter_alt_off:")
    st.stop()

if result.funnel is not None:
    st.caption(
        f"Each point is a {result.label.lower()}: its responder rate ({ctx.setting_text}) "
        f"against the number of patients in the rate. The lines are the program's rate "
        f"({formatting.percent(program_rate.rate)}) and the range a {result.label.lower()} of "
        f"that size shows 95% and 99.8% of the time when its true rate is the program's "
        f"(exact binomial limits). Small {result.label.lower()}s scatter widely by chance: "
        f"judge a point by the limits at its own volume. A patient's site is their first "
        f"recorded one; their provider is the clinician of their first treatment session.")
    curve = result.funnel
    figure = go.Figure()
    for level, dash, colour in (("998", "dot", theme.BAD), ("95", "dash", theme.ACCENT)):
        name = "99.8% limits" if level == "998" else "95% limits"
        for side in ("lower", "upper"):
            figure.add_trace(go.Scatter(
                x=curve["n"], y=curve[f"{side}_{level}"], mode="lines", name=name,
                legendgroup=name, showlegend=side == "lower",
                line=dict(color=colour, dash=dash, width=1.5), hoverinfo="skip"))
    # The program's label at the left, where the limits are far apart (at the
    # right it sat on the largest site's point and label).
    theme.reference_line(figure, y=program_rate.rate, color=theme.NEUTRAL, dash="solid",
                         text=f"program {formatting.percent(program_rate.rate)}",
                         position="top left")
    inside = groups["position"] == site_comparison.INSIDE
    # Each name on a pale box near its point (at a large volume the limits
    # run through where it is written), where no other name or point is.
    shown = groups.dropna(subset=["n", "rate"])
    theme.point_labels(figure, list(shown["n"]), list(shown["rate"]), list(shown["group"]),
                       x_range=(0, 1.03 * max(float(curve["n"].max()), float(shown["n"].max()))),
                       y_range=(0, 1))
    for label, rows, colour in (("within the 95% limits", groups[inside], theme.PRIMARY),
                                ("outside the 95% limits", groups[~inside], theme.BAD)):
        if rows.empty:
            continue
        figure.add_trace(go.Scatter(
            x=rows["n"], y=rows["rate"], mode="markers", name=label, text=list(rows["group"]),
            marker=dict(size=11, color=colour, line=dict(width=1, color="white")),
            customdata=[[r.group, formatting.rate_with_ci(r.rate, r.ci_low, r.ci_high),
                         formatting.count(r.responders), formatting.count(r.n), r.position]
                        for r in rows.itertuples()],
            hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}<br>%{customdata[2]} of "
                          "%{customdata[3]} patients<br>%{customdata[4]}<extra></extra>"))
    figure.update_xaxes(title="patients in the rate (volume)", rangemode="tozero")
    figure.update_yaxes(title="responder rate", tickformat=".0%", range=[0, 1])
    title = (f"{definitions.DEFINITION_LABELS[ctx.definition]} at "
             f"{definitions.TIMEPOINT_LABELS[ctx.timepoint]}, by {result.label.lower()}")
    st.plotly_chart(theme.styled(figure, title, height=520), width="stretch")

rows = result.table(ci_name)
st.dataframe(rows, hide_index=True, width="stretch", height=35 * (len(rows) + 1) + 3)
if result.funnel is not None:
    outside = result.outside("95")
    st.caption(
        f"{formatting.count(len(outside))} of {formatting.count(len(groups))} "
        f"{result.label.lower()}s fall outside the 95% limits and "
        f"{formatting.count(len(result.outside('99.8')))} outside the 99.8% limits. With 20 "
        f"{result.label.lower()}s and no real difference, about one would fall outside the 95% "
        f"limits by chance; look closer only at points beyond 99.8%, or at a pattern that "
        f"persists quarter after quarter. Too few: fewer than {audience.SMALL_CELL} patients.")
