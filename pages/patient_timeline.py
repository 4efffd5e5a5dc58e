"""Patient timeline (clinical team only): one patient's summary, outcome at
each timepoint, and every visit on one shared time axis."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from analysis.metrics import timeline
from analysis.core.formatting import short_date, short_period, count, long_date, number, percent
from analysis.core.definitions import DEFINITION_LABELS
from ui import page_context, safe, theme

ctx = page_context.get(__file__)
st.title("Patient timeline")
if ctx.role != "clinical":
    st.warning("Patient timelines are for the clinical team only.")
    st.stop()

VISIT_SYMBOLS = {"intake": "square", "infusion": "circle", "booster": "diamond",
                 "follow_up": "triangle-up"}
VISIT_LABELS = {"intake": "intake", "infusion": "infusion", "booster": "booster",
                "follow_up": "follow-up"}
WINDOW_COLOURS = {"4w": "rgba(46, 139, 87, 0.10)", "3m": "rgba(224, 122, 31, 0.10)",
                  "6m": "rgba(142, 68, 173, 0.10)", "12m": "rgba(31, 95, 139, 0.10)"}

# -- choosing the patient -------------------------------------------------------

in_view = ctx.call(timeline.patients_in_view, ctx.filters)
ids = [str(p) for p in in_view["patient_id"]]
if not ids:
    st.info("No patients match these filters. Widen the filters in the sidebar.")
    st.stop()

# A patient asked for by link (?patient=…) or by another page (session state).
# (Another page's request is the newer one; the URL's is the patient shown last.)
requested = st.session_state.pop("timeline_patient", None) or st.query_params.get("patient")
if requested and requested != st.session_state.get("timeline_requested"):
    st.session_state["timeline_requested"] = requested
    if requested in ids:
        st.session_state["timeline_pick"] = requested
        st.session_state["timeline_search"] = ""
    else:
        st.session_state["timeline_not_in_view"] = requested

left, right = st.columns([1, 2])
search = left.text_input("Search patient id", key="timeline_search",
                         placeholder="e.g. P0001")
options = timeline.search_patients(ids, search)
if not options:
    st.info(f"No patient id among the {count(len(ids))} patients in view contains "
            f"“{safe.text(search)}”.")
    st.stop()
if st.session_state.get("timeline_pick") not in options:
    st.session_state["timeline_pick"] = options[0]
untreated = int((~in_view["treated"].astype(bool)).sum())
patient_id = right.selectbox(f"Patient ({count(len(options))} of {count(len(ids))} in view"
                             + (f", {count(untreated)} of them not treated" if untreated else "")
                             + ")",
                             options, key="timeline_pick")
missing = st.session_state.pop("timeline_not_in_view", None)
if missing:
    st.info(f"Patient {safe.text(missing)} is not among the patients matching the sidebar filters "
            "(or not in the data). Widen the filters to see them.")
st.session_state["timeline_requested"] = patient_id  # shown: no longer a new request
if st.query_params.get("patient") != patient_id:
    st.query_params["patient"] = patient_id  # a shareable link to this patient

summary = ctx.call(timeline.patient_summary, patient_id, ctx.definition)
visits = ctx.call(timeline.patient_visits, patient_id)
if summary is None or visits.empty:
    st.info(f"No visits recorded for patient {safe.text(patient_id)}.")
    st.stop()

# -- summary ---------------------------------------------------------------------

recorded_as = summary.condition_raw
condition = safe.text(summary.condition) + (f" (recorded as “{safe.text(recorded_as)}”)"
                                            if recorded_as and recorded_as != summary.condition
                                            else "")
st.markdown(
    f"**{condition}** · site **{safe.text(summary.site)}** · route "
    f"**{safe.text(summary.route)}** · "
    + (f"first infusion (index date) **{long_date(summary.index_date)}** "
       f"({summary.cohort_quarter} cohort)" if summary.treated else "**not treated**")
    + f" · visits {long_date(summary.first_visit_date)} to {long_date(summary.last_visit_date)}")
b1, b2, b3, b4 = st.columns(4)
b1.metric("Baseline pain (0–10)", number(summary.baseline_pain))
b1.caption(f"recorded {long_date(summary.baseline_pain_date)}" if summary.baseline_pain_date
           else "none in the 30 days up to the first infusion")
b2.metric("Baseline opioid dose", "–" if summary.baseline_mme is None
          else f"{number(summary.baseline_mme)} MME/day")
b2.caption(f"recorded {long_date(summary.baseline_mme_date)}" if summary.baseline_mme_date
           else "none in the 90 days up to the first infusion")
b3.metric("Infusion visits + boosters", f"{count(summary.infusions)} + {count(summary.boosters)}")
b3.caption(f"{count(summary.infusions + summary.boosters)} treatment sessions; "
           f"{count(summary.visits)} visits in all")

if summary.treated:
    st.markdown(f"**Outcome by timepoint**: {DEFINITION_LABELS[ctx.definition]} "
                f"(`{ctx.definition}`)")
    rows = []
    for t in summary.timepoints:
        rows.append({
            "Timepoint": t.label + (" (sidebar)" if t.timepoint == ctx.timepoint else ""),
            "Window": short_period(t.window_start, t.window_end),
            "Follow-up pain": number(t.follow_up_pain),
            "Pain reduction": percent(t.pain_reduction),
            "Follow-up MME/day": number(t.follow_up_mme),
            "MME reduction": percent(t.mme_reduction),
            "Status": t.status,
        })
    # A static table (the code's own words): the status wraps instead of being
    # cut at 1280 px ("no follo…").
    st.table(pd.DataFrame(rows), hide_index=True)
    if any(t.provisional for t in summary.timepoints):
        st.caption("**Provisional**: a follow-up recorded before the timepoint's window has "
                   "closed. A visit closer to the target day may still come, so it is shown "
                   "here only and is not counted in any rate, claim or report until the "
                   "window closes.")
    responders = [t.label for t in summary.timepoints if t.responder]
    due = [t for t in summary.timepoints if t.due]
    b4.metric(f"Responder ({ctx.definition})", f"{count(len(responders))} of {count(len(due))}"
              if due else "none due")
    b4.caption("at " + ", ".join(responders) if responders
               else "timepoints due" if due else "no timepoint due yet")
else:
    st.info("This patient has no infusion or booster, so no index date and no outcomes.")

# -- the timeline figure ------------------------------------------------------------

dates = pd.to_datetime(visits["visit_date"])
fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                    row_heights=[0.34, 0.24, 0.2, 0.22],
                    subplot_titles=("Pain (0–10)", "Opioid dose (MME/day)", "PHQ-9 (0–27)",
                                    "Visits and adverse events"))
symbols = [VISIT_SYMBOLS.get(t, "circle") for t in visits["visit_type"]]
types = [VISIT_LABELS.get(t, t) for t in visits["visit_type"]]

pain = visits["pain_score"].notna()
fig.add_trace(go.Scatter(
    x=dates[pain], y=visits.loc[pain, "pain_score"], mode="lines+markers",
    name="pain before (usual pain)", line=dict(color=theme.PRIMARY),
    marker=dict(symbol=[s for s, keep in zip(symbols, pain) if keep], size=9),
    text=[t for t, keep in zip(types, pain) if keep],
    hovertemplate="%{x|%d %b %Y} (%{text}): pain %{y}<extra></extra>"), row=1, col=1)
post = visits["pain_post"].notna()
fig.add_trace(go.Scatter(
    x=dates[post], y=visits.loc[post, "pain_post"], mode="markers",
    name="pain right after the infusion", marker=dict(color=theme.ACCENT, size=7,
                                                      symbol="circle-open"),
    hovertemplate="%{x|%d %b %Y}: pain after infusion %{y}<extra></extra>"), row=1, col=1)
mme = visits["opioid_mme_per_day"].notna()
fig.add_trace(go.Scatter(
    x=dates[mme], y=visits.loc[mme, "opioid_mme_per_day"], mode="lines+markers",
    name="opioid dose", line=dict(color=theme.BAD, shape="hv"),
    marker=dict(symbol=[s for s, keep in zip(symbols, mme) if keep], size=8),
    hovertemplate="%{x|%d %b %Y}: %{y} MME/day<extra></extra>"), row=2, col=1)
phq = visits["phq9"].notna()
fig.add_trace(go.Scatter(
    x=dates[phq], y=visits.loc[phq, "phq9"].astype(float), mode="lines+markers", name="PHQ-9",
    line=dict(color="#8e44ad"),
    marker=dict(symbol=[s for s, keep in zip(symbols, phq) if keep], size=8),
    hovertemplate="%{x|%d %b %Y}: PHQ-9 %{y}<extra></extra>"), row=3, col=1)
for visit_type, symbol in VISIT_SYMBOLS.items():
    mine = visits["visit_type"] == visit_type
    if not mine.any():
        continue
    fig.add_trace(go.Scatter(
        x=dates[mine], y=[VISIT_LABELS[visit_type]] * int(mine.sum()), mode="markers",
        name=VISIT_LABELS[visit_type], legendgroup="visits",
        marker=dict(symbol=symbol, size=10, color=theme.NEUTRAL),
        hovertemplate="%{x|%d %b %Y}: " + VISIT_LABELS[visit_type] + "<extra></extra>"),
        row=4, col=1)
events = visits["adverse_event"].notna()
if events.any():
    fig.add_trace(go.Scatter(
        x=dates[events], y=["adverse event"] * int(events.sum()), mode="markers+text",
        name="adverse event", marker=dict(symbol="x", size=11, color=theme.BAD),
        text=visits.loc[events, "adverse_event"], textposition="top center",
        textfont=dict(size=11, color=theme.BAD),
        hovertemplate="%{x|%d %b %Y}: %{text}<extra></extra>"), row=4, col=1)
fig.update_yaxes(range=[0, 10.5], row=1, col=1)
fig.update_yaxes(rangemode="tozero", row=2, col=1)
fig.update_yaxes(range=[0, 27.5], row=3, col=1)
fig.update_yaxes(categoryorder="array",
                 categoryarray=["adverse event"] + [VISIT_LABELS[t] for t in
                                                    reversed(list(VISIT_SYMBOLS))],
                 row=4, col=1)

if summary.treated and summary.index_date:
    index_x = dt.datetime.combine(summary.index_date, dt.time())
    for t in summary.timepoints:
        fig.add_vrect(x0=t.window_start, x1=t.window_end, fillcolor=WINDOW_COLOURS.get(
            t.timepoint, theme.BAND), line_width=0, layer="below", row="all", col=1)
        fig.add_annotation(x=dt.datetime.combine(t.target_date, dt.time()), y=1,
                           xref="x", yref="y domain", yanchor="top", showarrow=False,
                           text=t.timepoint, font=dict(size=11, color="#555"))
    fig.add_vline(x=index_x, line_dash="dash", line_color=theme.PRIMARY, row="all", col=1)
    fig.add_annotation(x=index_x, y=1, xref="x", yref="y domain", yanchor="top",
                       xanchor="right", showarrow=False, text="first infusion ",
                       font=dict(size=11, color=theme.PRIMARY))
fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.06, x=0))
st.plotly_chart(theme.styled(fig, f"Patient {patient_id}", height=820), width="stretch")
st.caption("Dashed line: the first infusion (index date). Shaded: the follow-up windows "
           "(4w, 3m, 6m and 12m after the first infusion); the follow-up value is the one "
           "closest to the target day inside each window. Symbols show the visit type.")

# -- the visits --------------------------------------------------------------------

st.subheader("Visits")


def text(values, digits: int = 1) -> list[str]:
    return [number(v, digits) if v is not None and not pd.isna(v) else "" for v in values]


def flag(value) -> str:
    if value is None or pd.isna(value):
        return ""
    return "yes" if bool(value) else "no"


# Two tables that each fit beside the sidebar: the sessions (dose, pain,
# what happened) and the measures a visit records.
dates = [short_date(d) for d in visits["visit_date"]]
days = ["" if pd.isna(d) else f"{int(d):+d}" if d else "0" for d in visits["day"]]
sessions = pd.DataFrame({
    "Date": dates,
    "Day": days,
    "Visit": types,
    "Route": visits["route"].fillna(""),
    "Ketamine (mg)": text(visits["ketamine_mg"]),
    "Pain before": text(visits["pain_score"]),
    "Pain after": text(visits["pain_post"]),
    "Adverse event": visits["adverse_event"].fillna(""),
})
measures = pd.DataFrame({
    "Date": dates,
    "Day": days,
    "MME/day": text(visits["opioid_mme_per_day"]),
    "Benzodiazepine": [flag(v) for v in visits["benzodiazepine"]],
    "PHQ-9": text(visits["phq9"], 0),
    "PCL-5": text(visits["pcl5"], 0),
    "PGIC": text(visits["pgic"], 0),
    "Max systolic BP": text(visits["sbp_max"], 0),
    "Min SpO2 (%)": text(visits["spo2_min"], 0),
})
st.dataframe(sessions, hide_index=True, width="stretch",
             column_config={"Date": st.column_config.TextColumn(width=105),
                            "Adverse event": st.column_config.TextColumn(width="medium")})
st.markdown("**Medication, mood and vital signs at each visit**")
st.dataframe(measures, hide_index=True, width="stretch",
             column_config={"Date": st.column_config.TextColumn(width=105)})
st.caption("Day: days since the first infusion (negative before it).")
