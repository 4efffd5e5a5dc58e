"""Opioid tapering: doses of baseline opioid users over time, who stopped,
benzodiazepine co-prescription, and tapers faster than a safe pace."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis.metrics import charts, opioids
from analysis.core.formatting import count, number, percent, short_period
from analysis.core.definitions import TIMEPOINT_LABELS
from ui import explain, grid, page_context, theme
from ui.grid import Column

ctx = page_context.get(__file__)
timepoint_label = TIMEPOINT_LABELS[ctx.timepoint]

st.title("Opioid tapering")
st.caption(
    "Baseline opioid users: treated patients whose last recorded dose in the 90 days up to "
    "their first infusion is above 0 MME/day (CDC 2022 conversion factors). "
    f"Outcomes at {timepoint_label}, "
    + ("ITT (a missing follow-up counts as not stopped), " if ctx.population == "itt"
       else "completers only, ")
    + f"95% {'Clopper–Pearson' if ctx.ci == 'exact' else 'Wilson'} intervals. "
    "This page always shows the opioid definitions (off opioids; dose cut by ≥50%), whatever "
    "responder definition the sidebar holds.")

summary = ctx.call(opioids.opioid_summary, ctx.timepoint, ctx.population, ctx.filters, ctx.ci,
                   ctx.audience)
if summary.treated == 0:
    st.info("No patients match these filters. Widen the filters in the sidebar.")
    st.stop()


# Four counts of baseline opioid users appear on this page; each says which.
counted_who = (f"due at {timepoint_label} (ITT)" if ctx.population == "itt"
               else f"due at {timepoint_label} with a dose recorded (completers)")


def rate_caption(rate) -> str:
    if rate.n == 0:
        return "no baseline opioid user has reached this timepoint"
    return (f"95% CI {percent(rate.ci_low)}–{percent(rate.ci_high)} · "
            f"{count(rate.responders)} of {count(rate.n)} baseline opioid users {counted_who}"
            + opioids.flag(rate))


def chart(fig: go.Figure, title: str, height: int = 420) -> None:
    """The shared theme (which leaves room for the legend under the title)."""
    st.plotly_chart(theme.styled(fig, title, height=height), width="stretch")


# -- headline ----------------------------------------------------------------

c1, c2, c3, c4 = st.columns(4)
c1.metric("Baseline opioid users", count(summary.baseline_users))
c1.caption(f"all cohorts in view: of {count(summary.baseline_known)} treated patients with a "
           f"baseline dose recorded ({count(summary.treated - summary.baseline_known)} unknown)")
c2.metric("Median baseline dose", f"{number(summary.median_baseline_mme)} MME/day")
c2.caption(f"{count(summary.baseline_at_least_50)} at ≥50 and "
           f"{count(summary.baseline_at_least_90)} at ≥90 MME/day")
c3.metric(f"Off opioids at {timepoint_label}", percent(summary.stopped.rate))
c3.caption(rate_caption(summary.stopped))
c4.metric(f"Dose cut by ≥50% at {timepoint_label}", percent(summary.halved.rate))
c4.caption(rate_caption(summary.halved))

if summary.baseline_users == 0:
    st.info("None of the patients matching these filters was on opioids at baseline, so there "
            "is no taper to show. Opioid use over calendar time is below.")

# -- dose by week since the first infusion ----------------------------------------

if summary.baseline_users:
    st.subheader("Dose by week since the first infusion")
    week_chart = ctx.call(opioids.mme_week_chart, ctx.filters, ctx.audience)
    if not week_chart.drawn:
        explain.too_few_to_draw(week_chart.nothing)
    else:
        # A week left out (too few) is empty: the line breaks instead of joining.
        weekly = week_chart.points
        fig = go.Figure()
        # The band stops at a week left out, as the line does (tonexty bridged it).
        fig.add_trace(theme.band(weekly["week"], weekly["q1_mme"], weekly["q3_mme"],
                                 "middle half of patients (IQR)"))
        fig.add_trace(go.Scatter(
            x=weekly["week"], y=weekly["median_mme"], mode="lines+markers", name="median",
            line=dict(color=theme.PRIMARY, width=2.5),
            customdata=list(zip(weekly["patients"], weekly["q1_mme"], weekly["q3_mme"])),
            hovertemplate="Week %{x}: median %{y:.1f} MME/day (IQR %{customdata[1]:.1f}–"
                          "%{customdata[2]:.1f}), %{customdata[0]} patients<extra></extra>"))
        for threshold in opioids.THRESHOLDS:
            theme.reference_line(fig, y=threshold, text=f"{threshold} MME/day",
                                 position="top right")
        fig.update_xaxes(title="Weeks since the first infusion (0 = baseline)")
        fig.update_yaxes(title="MME/day", rangemode="tozero")
        chart(fig, "Median daily opioid dose of baseline users")
        explain.not_drawn(week_chart.not_drawn)
        explain.how_computed(
            "Each week: the median (and the middle half, between the quartiles) of the daily "
            "dose of the baseline opioid users who had a dose recorded that week; a patient "
            "counts once a week (their last record). Week 0 is the baseline. Patients are only "
            "seen in weeks they had a visit, so the line mixes different patients week to "
            f"week; a week is drawn from {charts.MIN_PER_POINT} or more patients.")

# -- over calendar time ------------------------------------------------------------

st.subheader("Opioid use by month")
month_chart = ctx.call(opioids.monthly_chart, ctx.filters, ctx.audience)
if not month_chart.drawn:
    explain.too_few_to_draw(month_chart.nothing)
else:
    monthly = month_chart.points   # a month from too few has no share: no point
    fig = go.Figure()
    for column, label, colour in (("share_on_opioids", "on opioids (> 0 MME/day)", theme.PRIMARY),
                                  ("share_at_least_50", "≥ 50 MME/day", theme.ACCENT),
                                  ("share_at_least_90", "≥ 90 MME/day", theme.BAD)):
        counts = column.removeprefix("share_")
        fig.add_trace(go.Scatter(
            x=monthly["month"], y=monthly[column], mode="lines+markers", name=label,
            line=dict(color=colour),
            customdata=list(zip(monthly[counts], monthly["patients_recorded"])),
            hovertemplate=f"%{{x|%b %Y}}: %{{y:.0%}} {label} "
                          "(%{customdata[0]} of %{customdata[1]} patients)<extra></extra>"))
    fig.update_yaxes(title="Share of patients with a dose recorded", tickformat=".0%",
                     range=[0, 1])
    fig.update_xaxes(title="Month")
    chart(fig, "Patients on opioids, and at the CDC 2022 risk thresholds")
    explain.not_drawn(month_chart.not_drawn)
    explain.how_computed(
        "Each month counts the treated patients in view who had a dose recorded that month "
        "(their last record of the month), whether or not they were on opioids at baseline, "
        "and the shares of them on any opioid, at 50 or more and at 90 or more MME a day (the "
        "CDC 2022 risk thresholds).")

# -- change at the timepoint ----------------------------------------------------------

if summary.baseline_users:
    st.subheader(f"Change in dose at {timepoint_label}")
    changes = ctx.call(opioids.mme_changes, ctx.timepoint, ctx.filters, ctx.audience)
    if changes.empty:
        st.info(f"No baseline opioid user in view has a dose recorded in the {timepoint_label} "
                "window.")
    else:
        fig = go.Figure(go.Histogram(
            x=changes["percent_change"], xbins=dict(start=-105, size=10),
            marker_color=theme.PRIMARY,
            hovertemplate="%{x}%: %{y} patients<extra></extra>"))
        theme.reference_line(fig, x=-50, color=theme.GOOD, dash="dash", text="cut by 50%")
        theme.reference_line(fig, x=-100, color=theme.GOOD, dash="dash", text="stopped")
        fig.update_xaxes(title=f"Change in MME/day from baseline to {timepoint_label} (%)",
                         ticksuffix="%")
        fig.update_yaxes(title="Patients")
        chart(fig, f"Dose change at {timepoint_label}, baseline opioid users with a "
                   "follow-up dose")
        st.caption(f"{count(len(changes))} baseline opioid users due at {timepoint_label} with a "
                   f"dose recorded in the window; median change "
                   f"{number(summary.median_percent_change, 0)}%. Negative = lower dose. (The "
                   f"rates above count {count(summary.halved.n)} baseline opioid users "
                   f"{counted_who}"
                   + ("; those without a dose in the window count as not improved.)"
                      if ctx.population == "itt" else ".)"))

# -- benzodiazepines -------------------------------------------------------------------

st.subheader("Benzodiazepine co-prescription")
benzo_chart = ctx.call(opioids.benzodiazepine_chart, ctx.filters, ctx.audience)
if not benzo_chart.drawn:
    explain.too_few_to_draw(benzo_chart.nothing)
else:
    benzo = benzo_chart.months   # shares from too few visits or users are empty: no point
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=benzo["month"], y=benzo["share_visits"], mode="lines+markers",
        name="visits with a benzodiazepine", line=dict(color=theme.PRIMARY),
        customdata=list(zip(benzo["visits_on_benzodiazepine"], benzo["visits_recorded"])),
        hovertemplate="%{x|%b %Y}: %{y:.0%} of visits (%{customdata[0]} of %{customdata[1]})"
                      "<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=benzo["month"], y=benzo["share_opioid_users"], mode="lines+markers",
        name="opioid users also on a benzodiazepine", line=dict(color=theme.BAD),
        customdata=list(zip(benzo["opioid_users_on_benzodiazepine"],
                            benzo["opioid_users_recorded"])),
        hovertemplate="%{x|%b %Y}: %{y:.0%} of opioid users (%{customdata[0]} of "
                      "%{customdata[1]})<extra></extra>"))
    fig.update_yaxes(title="Share", tickformat=".0%", rangemode="tozero")
    fig.update_xaxes(title="Month")
    chart(fig, "Benzodiazepines alongside opioids (CDC 2022: avoid when possible)")
    st.caption(f"Over the whole period, {percent(benzo_chart.share)} of visits recording it "
               f"({count(benzo_chart.visits_on_benzodiazepine)} of "
               f"{count(benzo_chart.visits_recorded)}) had a benzodiazepine. Opioid users: "
               "patients whose last dose of the month was above 0.")
    explain.not_drawn(benzo_chart.not_drawn)

# -- fast tapers ---------------------------------------------------------------------

if summary.baseline_users:
    st.subheader("Fast tapers")
    st.caption("HHS 2019 (Guide for Clinicians on Tapering Long-Term Opioids): a decrease of about "
               "10% a month is a common starting pace; 10% a week is already fast, and faster "
               "tapers raise the risk of overdose and suicide. Pace = drop between two consecutive "
               "dose records, as a share of the patient's baseline dose, per week (or per 30 "
               "days); a stop to 0 MME/day counts like any other drop. **Rapid**: at least "
               f"{opioids.RAPID.text()}. **Faster than the usual starting pace**: at least "
               f"{opioids.FASTER_THAN_USUAL.text()}. Both boundaries count.")
    left, right = st.columns([1, 2])
    unit = right.radio("Threshold unit", list(opioids.DAYS_PER_UNIT), horizontal=True,
                       format_func=lambda u: f"% of the baseline dose {opioids.UNIT_TEXT[u]}",
                       key="opioids_fast_taper_unit")
    threshold_percent = left.number_input(
        "Flag a taper at least as fast as (%)", min_value=0.5, max_value=100.0,
        value=float(opioids.DEFAULT_THRESHOLD.percent), step=0.5, format="%g",
        key="opioids_fast_taper_threshold",
        help="10% per week flags rapid tapers; 10% per month flags every taper faster than "
             "the usual starting pace.")
    threshold = opioids.TaperThreshold(threshold_percent, unit)
    tapers = ctx.call(opioids.fast_tapers, ctx.filters, threshold, ctx.audience)
    t1, t2, t3, t4 = st.columns(4)
    t1.metric("Patients with a rapid taper", count(tapers.rapid_patients))
    t1.caption(f"a drop ≥ {opioids.RAPID.text()}")
    t2.metric("Faster than the usual starting pace", count(tapers.faster_than_usual_patients))
    t2.caption(f"patients with a drop ≥ {opioids.FASTER_THAN_USUAL.text()}")
    t3.metric("Patients flagged at your threshold", count(tapers.flagged_patients))
    t3.caption(f"≥ {threshold.text()}; of {count(tapers.baseline_users)} baseline opioid users "
               "with two or more dose records")
    t4.metric("Intervals flagged", count(tapers.flagged_intervals))
    t4.caption(f"of {count(tapers.intervals)} intervals between dose records")
    if tapers.flagged_intervals == 0:
        st.success("No taper in view was at least this fast.")
    elif tapers.flagged is not None:   # the clinical team's: it names patients
        flagged = tapers.flagged
        # Short headers, one period column, every row: the table fits at 1280 px
        # (its last columns were off the edge, most rows in a scroll box).
        table = pd.DataFrame({
            "Patient": flagged["patient_id"],
            "Condition": flagged["condition"],
            "Site": flagged["site"],
            "Between": [short_period(a, b) for a, b in zip(flagged["from_date"],
                                                           flagged["to_date"])],
            "Weeks": [number(d / 7, 1) for d in flagged["days"]],
            "Baseline": [number(v, 1) for v in flagged["baseline_mme"]],
            "Before": [number(v, 1) for v in flagged["mme_before"]],
            "After": [number(v, 1) for v in flagged["mme_after"]],
            "Per week": [percent(p, 1) for p in flagged["pace"]],
            "Per 30 days": [percent(p, 1) for p in flagged["pace_per_30_days"]],
            "Rapid": ["yes" if r else "" for r in flagged["rapid"]],
        })
        st.caption("Each flagged interval between two dose records. Baseline, before and after: "
                   "daily dose in MME/day. Per week, per 30 days: the drop as a share of the "
                   "patient's baseline dose.")
        # A grid, not st.table: st.table draws its cells as markdown, and the
        # patient ids and sites come from the export.
        # Every column on screen at 1280 px (ui.grid): condition, site and
        # period wrap, and the rows grow to hold them.
        columns = {"Patient": Column(66), "Condition": Column(96, wrap=True),
                   "Site": Column(88, wrap=True), "Between": Column(100, wrap=True),
                   "Weeks": Column(56, kind="count"),
                   "Baseline": Column(72, help="Baseline daily dose, MME/day.", kind="count"),
                   "Before": Column(58, help="Daily dose before the interval, MME/day.",
                                    kind="count"),
                   "After": Column(52, help="Daily dose after the interval, MME/day.",
                                   kind="count"),
                   "Per week": Column(72, help="The drop per week, as a share of the "
                                               "baseline dose.", kind="count"),
                   "Per 30 days": Column(88, help="The drop per 30 days, as a share of the "
                                                  "baseline dose.", kind="count"),
                   "Rapid": Column(52, help="A rapid taper, as defined above.")}
        row = grid.row_height(table, columns) or grid.ROW_PX
        grid.table(table, columns, height=row * min(len(table), 30) + 38)
        patient = st.selectbox("Open a flagged patient's timeline",
                               sorted(flagged["patient_id"].unique()), index=None,
                               placeholder="Choose a patient", key="opioids_open_patient")
        if patient and st.button("Open timeline", key="opioids_open_timeline"):
            st.session_state["timeline_patient"] = patient
            st.switch_page("pages/patient_timeline.py")
    else:
        st.info("Patient ids are shown to the clinical team only.")
