"""Claim check: does the data support the clinic's 70% claim, and what can
marketing say instead?  (issue 5)

For marketing (the external audience) it is the whole program whatever the
filters, with every count that could identify a few patients withheld; the
clinical team and analysts see every count, small groups flagged.  The memo
is always the external one.  The numbers and sentences come from
``analysis.claims.claim``, already safe for the reader; this page only reads its own
inputs and draws.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import textwrap

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from analysis.claims import claim
from analysis.claims import substantiation, wording
from analysis.core import definitions
from analysis.reports import memo
from analysis.metrics import outcomes
from analysis.core.audience import SMALL_CELL, SUPPRESSED
from analysis.core.formatting import long_date
from analysis.core.filters import Filters
from ui import auth, explain, grid, page_context, safe, theme
from ui.grid import Column

ctx = page_context.get(__file__)
reader = ctx.audience

st.title("Claim check")
st.markdown(f"**The claim as published:** *“{wording.CLAIM_AS_PUBLISHED[0].upper()}"
            f"{wording.CLAIM_AS_PUBLISHED[1:]}”*")
st.caption(f"Read literally: {wording.LITERAL_READING.describe()}. Change the reading below"
           + (". " if reader.external else
              "; the sidebar's timepoint, definition and population do not apply on this page. ")
           + ("This is the external view: the whole program, whatever the filters, and no "
              "count that could identify a few patients (“too few to report”)."
              if reader.external else
              f"Every count is shown here; readings and groups of fewer than {SMALL_CELL} "
              "patients are flagged, and hidden in the memo and anything shared outside the "
              "clinical team."))

# --------------------------------------------------------------------------
# the reading


def _default_period() -> tuple[dt.date, dt.date] | None:
    data = ctx.call(outcomes.scope, Filters())
    start = ctx.filters.index_from or data.first_index
    end = ctx.filters.index_to or data.last_index
    if start is None or end is None:
        return None
    return start, end


with st.container(border=True):
    # The definition gets the width its longest name needs; at 1280 px, four
    # controls in one row cut it ("claim: ≥30% less pain and opioid dose") and
    # left the target box no room for its buttons.
    first = st.columns([3.2, 1.3, 1.2])
    definition = first[0].selectbox(
        "Responder definition", definitions.DEFINITIONS,
        index=definitions.DEFINITIONS.index("claim"), key="claim_definition",
        format_func=lambda d: f"{d}: {definitions.DEFINITION_LABELS[d]}")
    timepoint = first[1].selectbox("Timepoint", definitions.TIMEPOINTS,
                                   index=definitions.TIMEPOINTS.index("3m"), key="claim_timepoint",
                                   format_func=definitions.TIMEPOINT_LABELS.get)
    target_percent = first[2].number_input(
        "Target rate (%)", min_value=1.0, max_value=99.0, value=70.0, step=1.0, format="%g",
        key="claim_target", help="The claim is supported when the rate is shown to be above this.")
    second = st.columns([2, 2.2, 2], vertical_alignment="bottom")
    population = second[0].radio(
        "Population", definitions.POPULATIONS, key="claim_population",
        format_func={"itt": "ITT (default)", "completers": wording.OPTIMISTIC}.get,
        help="ITT counts a patient who reached the timepoint without a follow-up as not "
             "improved; completers-only leaves them out and overstates the program.")
    default_period = None if reader.external else _default_period()
    filters = ctx.filters
    if default_period:
        period = second[1].date_input(
            "First infusion between", value=default_period, format="YYYY-MM-DD",
            help="The patients whose first infusion falls in this period (defaults to the "
                 "cohort range of the sidebar).")
        if isinstance(period, (tuple, list)) and len(period) == 2 \
                and tuple(period) != default_period:
            filters = dataclasses.replace(ctx.filters, index_from=period[0],
                                          index_to=period[1])
    include_completers = second[2].toggle(
        "Also write completers-only sentences (each with its caveat)", key="claim_completers")

target = round(target_percent / 100, 4)
report = ctx.call(claim.claim_report, target, timepoint, definition, population, filters,
                  include_completers, reader)
test = report.test

# --------------------------------------------------------------------------
# the verdict

colour = theme.VERDICT_COLOURS[report.verdict]
st.markdown(
    f'<div style="border-left: 8px solid {colour}; padding: 0.5rem 1rem; margin: 0.5rem 0 1rem;'
    f' background: #f7f8fa;">'
    f'<div style="color: {colour}; font-size: 1.6rem; font-weight: 700;">'
    f"{html.escape(wording.VERDICT_LABELS[report.verdict])}</div>"
    f'<div style="font-size: 1.05rem;">{html.escape(report.verdict_text)}</div></div>',
    unsafe_allow_html=True)

metrics = st.columns(3)
metrics[0].metric("Responder rate", report.rate_only_text(),
                  help="Responders of the patients counted, with its 95% interval below.")
metrics[0].caption(f"95% CI {report.ci_text()}" if report.ci_text() not in ("", "–") else "")
metrics[1].metric("Patients counted (n)", report.n_text())
metrics[2].metric("At least (defensible)", report.at_least_text().removeprefix("at least "),
                  help="The defensible figure: the strongest share the data support "
                       "(“at least …”), with 95% confidence.")
explain.how_computed(
    f"{report.test_text} Reading: {report.reading.describe()}. Patients in view: "
    f"{safe.text(report.filters.describe())}. Data cutoff {long_date(report.cutoff)}.",
    table=[{"Statistic": "95% CI (Wilson, two-sided)", "Value": report.ci_text()},
           {"Statistic": "One-sided 95% exact bounds", "Value": report.bounds_text()},
           {"Statistic": "p-value (one-sided)", "Value": report.p_text()},
           {"Statistic": "Defensible figure (the lower bound, rounded down)",
            "Value": report.at_least_text()}])
st.markdown(f"**In words:** {report.headline.text}")
if report.headline.defensible:
    st.markdown(f"**The strongest wording for this reading:** {report.headline.defensible}")
if population == "completers":
    st.warning(f"Completers only is {wording.OPTIMISTIC}: it leaves out patients who reached "
               "the timepoint without a follow-up. Public wording should rest on ITT.",
               icon=":material/warning:")
for gap in report.statements:
    if gap.kind == "completers only" and (gap.timepoint, gap.definition) == (timepoint,
                                                                             definition):
        st.warning(gap.text, icon=":material/warning:")

# --------------------------------------------------------------------------
# why: who is counted

st.subheader("Who is counted")
st.markdown(report.flow_text)
flow = report.flow.assign(step=[("↳ " if level == 2 else "") + step
                                for step, level in zip(report.flow.step, report.flow.level)])
st.dataframe(flow[["step", "shown"]].rename(columns={"step": "Who", "shown": "Patients"}),
             hide_index=True, width="content",
             column_config={"Patients": st.column_config.TextColumn(width="medium")})

# --------------------------------------------------------------------------
# sensitivity


def sensitivity_figure(frame: pd.DataFrame) -> go.Figure:
    """Definitions × timepoints, ITT beside completers-only, coloured by verdict."""
    categories = [*wording.VERDICTS, "no data", wording.TOO_FEW]
    palette = [theme.VERDICT_COLOURS[c] for c in categories[:4]] + ["#c9ced6"]
    scale = []
    for i, c in enumerate(palette):
        scale += [[i / len(palette), c], [(i + 1) / len(palette), c]]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.04, shared_yaxes=True,
                        subplot_titles=("ITT (all patients who reached the timepoint)",
                                        f"{wording.OPTIMISTIC[0].upper()}{wording.OPTIMISTIC[1:]}"))
    y = [f"{definitions.DEFINITION_LABELS[d]} ({d})" for d in definitions.DEFINITIONS]
    x = [definitions.TIMEPOINT_LABELS[t] for t in definitions.TIMEPOINTS]
    cells = {(r.timepoint, r.definition, r.population): r for r in frame.itertuples()}
    for column, pop in enumerate(definitions.POPULATIONS, start=1):
        z, text, custom = [], [], []
        for d in definitions.DEFINITIONS:
            zr, tr, cr = [], [], []
            for t in definitions.TIMEPOINTS:
                r = cells[(t, d, pop)]
                state = r.verdict if r.verdict in categories else wording.TOO_FEW
                zr.append(categories.index(state))
                label = r.rate_text if pop == "itt" or r.too_few else f"{r.rate_text}*"
                if r.rate_text == wording.TOO_FEW:
                    # two short lines: on one it ran into the next cells at 1280 px
                    label = safe.Markup("<br>".join(textwrap.wrap(wording.TOO_FEW, 8)))
                elif r.rate_text != "–":
                    # the code's own markup (numbers only): kept by ui.safe
                    label = safe.Markup(f"{label}<br><sub>{r.at_least_text}</sub>")
                tr.append(label)
                cr.append([wording.VERDICT_LABELS[r.verdict], r.patients_text,
                           r.rate_ci_text, r.bounds_text, r.population_label])
            z.append(zr)
            text.append(tr)
            custom.append(cr)
        fig.add_trace(go.Heatmap(
            z=z, x=x, y=y, text=text, customdata=custom, texttemplate="%{text}",
            textfont=dict(color="white", size=14), colorscale=scale, zmin=-0.5,
            zmax=len(palette) - 0.5, showscale=False, xgap=3, ygap=3,
            name="ITT" if pop == "itt" else wording.OPTIMISTIC,
            hovertemplate="%{y} at %{x}<br>%{customdata[4]}<br>Verdict: %{customdata[0]}"
                          "<br>Patients: %{customdata[1]}<br>Rate: %{customdata[2]}"
                          "<br>One-sided 95% exact bounds: %{customdata[3]}<extra></extra>"),
            row=1, col=column)
    chosen_col = definitions.POPULATIONS.index(population) + 1
    fig.add_shape(type="rect", xref=f"x{'' if chosen_col == 1 else chosen_col}",
                  yref=f"y{'' if chosen_col == 1 else chosen_col}",
                  x0=definitions.TIMEPOINTS.index(timepoint) - 0.5,
                  x1=definitions.TIMEPOINTS.index(timepoint) + 0.5,
                  y0=definitions.DEFINITIONS.index(definition) - 0.5,
                  y1=definitions.DEFINITIONS.index(definition) + 0.5,
                  line=dict(color="#222", width=3))
    for state, c in zip(categories, palette):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=state.capitalize(),
                                 marker=dict(size=12, color=c, symbol="square"),
                                 showlegend=True, hoverinfo="skip"), row=1, col=1)
    fig.update_yaxes(autorange="reversed")
    theme.styled(fig, height=420)
    fig.update_layout(margin=dict(l=10, r=10, t=70, b=30),
                      legend=dict(orientation="h", y=1.16, x=0))
    return fig


st.subheader("Every reading of the claim")
st.caption(f"Responder rate against {wording.target_text(target)}, coloured by verdict, and under "
           "it the defensible figure (≥ the one-sided 95% exact lower bound, rounded down); the "
           "framed cell is the reading above. "
           + (f"“{wording.TOO_FEW}”: too few patients or responders to report, no verdict. "
              if reader.external else
              f"Readings of fewer than {SMALL_CELL} patients are too few to tell outside the "
              "clinical team. ")
           + "* completers only: optimistic, since "
           "it leaves out patients who missed the follow-up. Hover a cell for n, the 95% CI "
           "and the test bounds.")
st.plotly_chart(sensitivity_figure(report.sensitivity), width="stretch",
                key="claim_sensitivity")

# --------------------------------------------------------------------------
# breakdowns


def breakdown_view(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    view = pd.DataFrame({
        label: frame["group"],
        "Patients": frame["patients"],
        "Rate (95% CI)": frame["rate_text"],
        f"Against {wording.target_text(target)}": [
            "–" if v is None else wording.VERDICT_LABELS[v] for v in frame["verdict"]],
    })
    if not reader.external:
        view["Small group"] = ["too few to report outside" if f else "" for f in frame["too_few"]]
    return view


st.subheader("By condition and by site")
st.caption(f"This reading ({report.reading.describe()}). "
           + (f"“{SUPPRESSED}”: withheld, a count from 1 to {SMALL_CELL - 1} or one that would "
              "let such a count be worked out from the others (completers-only readings are "
              "not broken down)." if reader.external else
              f"Groups of fewer than {SMALL_CELL} patients are flagged in the last column."))
# One above the other, each as wide as the page: side by side, the sites'
# table lost its last columns at 1280 px.
for frame, label in ((report.by_condition, "Condition"), (report.by_site, "Site")):
    view = breakdown_view(frame, label)
    widths = {label: Column(160), "Patients": Column(120), "Rate (95% CI)": Column(190),
              view.columns[3]: Column(140, wrap=True),
              "Small group": Column(180, wrap=True)}
    grid.table(view, widths, height=min(35 * (len(frame) + 1) + 3, 700))

# --------------------------------------------------------------------------
# what you can say

st.subheader("What you can say")
strongest = report.defensible
supported = [s for s in report.statements if s.kind == "supported"]
gaps = [s for s in report.statements if s.kind == "completers only"]
unsupported = [s for s in report.statements if s.kind in ("not supported", "too few", "no data")]
LEAD = 5
if strongest:
    st.markdown("**The strongest statements the data support**, highest defensible figure first "
                "(ITT; each “at least” is the one-sided 95% exact lower bound, rounded down; keep "
                "the numbers, the period and the definition with them):")
    st.markdown("\n".join(f"{i}. {s.defensible}" for i, s in enumerate(strongest[:LEAD], 1)))
    if len(strongest) > LEAD:
        with st.expander(f"Every other reading with a defensible figure ({len(strongest) - LEAD})"):
            st.markdown("\n".join(f"{i}. {s.defensible}"
                                   for i, s in enumerate(strongest[LEAD:], LEAD + 1)))
else:
    st.markdown(f"No reading has {SMALL_CELL} or more patients with a rate above 0: "
                "no figure can be stated yet.")
if supported:
    st.markdown(f"**At {wording.target_text(target)}**, the data support these sentences (ITT "
                "unless marked):")
    st.markdown("\n".join(f"- {s.text}" for s in supported))
else:
    st.markdown(f"**At {wording.target_text(target)}, no reading of the claim is supported:** "
                "use the statements above instead.")
for gap in gaps:
    st.warning(gap.text, icon=":material/warning:")
with st.expander(f"Wording the data do not support ({len(unsupported)} readings)"):
    st.markdown("\n".join(f"- {s.text}" for s in unsupported) or "None.")

# --------------------------------------------------------------------------
# the memo

st.subheader("Substantiation memo")
st.caption("For people outside the clinical team: the claim, the reading, the data period and "
           "cutoff, the counts, the test, every reading, the breakdowns (small groups hidden) and "
           "a fingerprint of the data. No patient identifier.")

snap = ctx.snap


def _memo() -> substantiation.Memo:
    return memo.build_memo(snap, report)


stem = memo.file_stem(report)
what = f"claim memo: {report.reading.describe()}; {report.filters.describe()}"
buttons = st.columns([1.5, 1.5, 3])   # [1, 1, 4] cut "Memo (HT…" at 1280 px
with buttons[0]:
    auth.download_button(ctx.source, "Memo (HTML)", lambda: memo.memo_html(_memo()),
                         f"{stem}.html", "text/html", what=what,
                         icon=":material/download:", key="claim_memo_html")
with buttons[1]:
    auth.download_button(ctx.source, "Memo (PDF)", lambda: memo.memo_pdf(_memo()),
                         f"{stem}.pdf", "application/pdf", what=what,
                         icon=":material/picture_as_pdf:", key="claim_memo_pdf")
