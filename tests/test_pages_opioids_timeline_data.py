"""The Opioid tapering, Patient timeline and Data pages in the real app
(AppTest): no exception or error, and every number shown equals what
``analysis`` returns for the same filters and outcome settings."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import numpy as np
import plotly.io as pio
import pytest

from analysis.ingest import data_quality
from analysis.metrics import opioids, timeline
from analysis.storage import store
from analysis.core.formatting import count, long_date, number, percent, short_date
from analysis.core.filters import Filters
from analysis.metrics.charts import MIN_PER_POINT
from analysis.core.definitions import TIMEPOINT_LABELS
from analysis.sources import DataSource
from tests.helpers.apptest import (DASHBOARD, NON_DEFAULT_QUERY, assert_no_errors, caption_text,
                                   frame_with, metric_values, run_page, signed_in, trace_values)
from tests.helpers.builders import write_grant
from ui.page_context import CONTEXT_KEY, PageContext

SETTINGS = {
    "default": (None, Filters(), "3m", "pain30", "itt"),
    "non-default": (NON_DEFAULT_QUERY, Filters(sites=tuple(NON_DEFAULT_QUERY["site"])),
                    NON_DEFAULT_QUERY["tp"], NON_DEFAULT_QUERY["def"], NON_DEFAULT_QUERY["pop"]),
}


def _open(page, setting, role="clinical"):
    query, filters, timepoint, definition, population = SETTINGS[setting]
    app = run_page(page, query, role=role)
    assert_no_errors(app)
    ctx = app.session_state[CONTEXT_KEY]
    assert (ctx.filters, ctx.timepoint, ctx.definition, ctx.population) == \
        (filters, timepoint, definition, population)
    return app


def _charts(app) -> dict:
    """Title -> {trace name -> (x, y)} of every Plotly chart on the page."""
    charts = {}
    for element in app.get("plotly_chart"):
        fig = pio.from_json(element.proto.spec)
        charts[fig.layout.title.text] = {
            t.name: (None if t.x is None else trace_values(t.x),
                     None if t.y is None else trace_values(t.y))
            for t in fig.data}
    return charts


# --------------------------------------------------------------------------
# opioid tapering


@pytest.mark.parametrize("setting", SETTINGS)
def test_opioids_page(app_db, demo_snapshot, setting):
    _, filters, timepoint, _, population = SETTINGS[setting]
    app = _open("pages/opioids.py", setting)
    summary = opioids.opioid_summary(demo_snapshot, timepoint, population, filters)
    assert summary.baseline_users > 0
    metrics, captions = metric_values(app), caption_text(app)
    label = TIMEPOINT_LABELS[timepoint]
    assert metrics["Baseline opioid users"] == count(summary.baseline_users)
    assert f"of {count(summary.baseline_known)} treated patients" in captions
    assert metrics["Median baseline dose"] == f"{number(summary.median_baseline_mme)} MME/day"
    for title, rate in ((f"Off opioids at {label}", summary.stopped),
                        (f"Dose cut by ≥50% at {label}", summary.halved)):
        assert metrics[title] == percent(rate.rate)
        assert (f"95% CI {percent(rate.ci_low)}–{percent(rate.ci_high)} · "
                f"{count(rate.responders)} of {count(rate.n)} baseline opioid users") in captions

    charts = _charts(app)
    weekly = opioids.mme_by_week(demo_snapshot, filters)
    week_x, week_y = charts["Median daily opioid dose of baseline users"]["median"]
    # weeks from fewer than 11 patients are gaps in the line, not points
    assert (weekly["patients"] >= MIN_PER_POINT).all()
    drawn = {x: y for x, y in zip(week_x, week_y) if y is not None}
    assert list(drawn) == weekly["week"].tolist()
    assert list(drawn.values()) == pytest.approx(weekly["median_mme"].tolist())
    monthly = opioids.monthly_use(demo_snapshot, filters)
    enough = monthly["patients_recorded"] >= MIN_PER_POINT
    use = charts["Patients on opioids, and at the CDC 2022 risk thresholds"]
    for name, column in (("≥ 90 MME/day", "share_at_least_90"),
                         ("on opioids (> 0 MME/day)", "share_on_opioids")):
        shown = use[name][1]
        assert [v is not None for v in shown] == enough.tolist()
        assert [v for v in shown if v is not None] == pytest.approx(
            monthly.loc[enough, column].tolist())
    assert ("Not drawn, from fewer than 11 patients with a dose recorded that month"
            in caption_text(app)) == (not enough.all())
    changes = opioids.mme_changes(demo_snapshot, timepoint, filters)
    histogram = charts[f"Dose change at {label}, baseline opioid users with a follow-up dose"]
    assert sorted(histogram[None][0]) == pytest.approx(sorted(changes["percent_change"]))
    benzo = opioids.benzodiazepine_by_month(demo_snapshot, filters)
    benzo_chart = charts["Benzodiazepines alongside opioids (CDC 2022: avoid when possible)"]
    enough = benzo["visits_recorded"] >= MIN_PER_POINT
    shown = benzo_chart["visits with a benzodiazepine"][1]
    assert [v is not None for v in shown] == enough.tolist()
    assert [v for v in shown if v is not None] == pytest.approx(
        benzo.loc[enough, "share_visits"].tolist())

    tapers = opioids.fast_tapers(demo_snapshot, filters)
    assert metrics["Patients with a rapid taper"] == count(tapers.rapid_patients)
    assert metrics["Faster than the usual starting pace"] == count(
        tapers.faster_than_usual_patients)
    assert metrics["Patients flagged at your threshold"] == count(tapers.flagged_patients)
    assert metrics["Intervals flagged"] == count(tapers.flagged_intervals)
    if tapers.flagged_intervals:
        table = frame_with(app, "Per week")
        assert list(table["Patient"]) == list(tapers.flagged["patient_id"])
        assert list(table["Per week"]) == [percent(p, 1) for p in tapers.flagged["pace"]]
        assert list(table["Per 30 days"]) == [percent(p, 1)
                                              for p in tapers.flagged["pace_per_30_days"]]
        assert list(table["After"]) == [number(v) for v in tapers.flagged["mme_after"]]

    if setting == "default":  # the threshold is the user's, in % per week or per month
        app.number_input(key="opioids_fast_taper_threshold").set_value(5.0).run()
        assert_no_errors(app)
        slower = opioids.fast_tapers(demo_snapshot, filters, opioids.TaperThreshold(5, "week"))
        assert slower.flagged_intervals > tapers.flagged_intervals
        assert metric_values(app)["Intervals flagged"] == count(slower.flagged_intervals)
        assert len(frame_with(app, "Patient")) == slower.flagged_intervals
        app.number_input(key="opioids_fast_taper_threshold").set_value(10.0).run()
        app.radio(key="opioids_fast_taper_unit").set_value("month").run()
        assert_no_errors(app)
        monthly = opioids.fast_tapers(demo_snapshot, filters, opioids.FASTER_THAN_USUAL)
        assert monthly.flagged_patients == monthly.faster_than_usual_patients
        assert metric_values(app)["Patients flagged at your threshold"] == count(
            monthly.flagged_patients)


def test_opioids_page_hides_patient_ids_outside_the_clinical_team(app_db, demo_snapshot):
    app = _open("pages/opioids.py", "default", role="analyst")
    tapers = opioids.fast_tapers(demo_snapshot)
    assert tapers.flagged_intervals > 0
    assert metric_values(app)["Patients with a rapid taper"] == count(tapers.rapid_patients)
    assert not any("Patient" in d.value.columns for d in app.dataframe)
    assert any("clinical team only" in i.value for i in app.info)


# --------------------------------------------------------------------------
# patient timeline


def _check_patient(app, snap, patient_id, definition):
    summary = timeline.patient_summary(snap, patient_id, definition)
    visits = timeline.patient_visits(snap, patient_id)
    metrics = metric_values(app)
    assert app.selectbox(key="timeline_pick").value == patient_id
    assert metrics["Baseline pain (0–10)"] == number(summary.baseline_pain)
    assert metrics["Baseline opioid dose"] == (
        "–" if summary.baseline_mme is None else f"{number(summary.baseline_mme)} MME/day")
    assert f"**{summary.site}**" in "\n".join(m.value for m in app.markdown)
    if summary.treated:
        outcomes = frame_with(app, "Status")
        assert list(outcomes["Status"]) == [t.status for t in summary.timepoints]
        assert list(outcomes["Follow-up pain"]) == [number(t.follow_up_pain)
                                                    for t in summary.timepoints]
        responders = sum(t.responder for t in summary.timepoints)
        due = sum(t.due for t in summary.timepoints)
        assert metrics[f"Responder ({definition})"] == (
            f"{count(responders)} of {count(due)}" if due else "none due")
    table = frame_with(app, "Pain before")
    assert list(table["Date"]) == [short_date(d) for d in visits["visit_date"]]
    measures = frame_with(app, "Min SpO2 (%)")
    assert list(measures["Date"]) == list(table["Date"])
    assert list(table["Pain before"]) == [
        "" if v is None or np.isnan(v) else number(v) for v in visits["pain_score"]]
    pain = _charts(app)[f"Patient {patient_id}"]["pain before (usual pain)"][1]
    assert pain == pytest.approx(visits["pain_score"].dropna().tolist())


@pytest.mark.parametrize("setting", SETTINGS)
def test_patient_timeline_page(app_db, demo_snapshot, setting):
    _, filters, _, definition, _ = SETTINGS[setting]
    app = _open("pages/patient_timeline.py", setting)
    in_view = timeline.patients_in_view(demo_snapshot, filters)
    assert app.selectbox(key="timeline_pick").options == list(in_view["patient_id"])
    _check_patient(app, demo_snapshot, in_view["patient_id"].iloc[0], definition)

    # search, then pick another patient
    wanted = in_view[in_view.treated]["patient_id"].iloc[len(in_view) // 2]
    app.text_input(key="timeline_search").input(wanted[-3:]).run()
    options = app.selectbox(key="timeline_pick").options
    assert wanted in options and all(wanted[-3:] in o for o in options)
    app.selectbox(key="timeline_pick").select(wanted).run()
    assert_no_errors(app)
    _check_patient(app, demo_snapshot, wanted, definition)
    if setting == "default":  # another page asks for a patient
        other = in_view["patient_id"].iloc[-1]
        app.session_state["timeline_patient"] = other
        app.run()
        assert_no_errors(app)
        _check_patient(app, demo_snapshot, other, definition)
    else:  # a search matching nobody says so
        app.text_input(key="timeline_search").input("no such patient").run()
        assert_no_errors(app)
        assert any("No patient id" in i.value for i in app.info)


def test_patient_timeline_opens_the_patient_of_the_link(app_db, demo_snapshot):
    patient = timeline.patients_in_view(demo_snapshot)["patient_id"].iloc[5]
    app = run_page("pages/patient_timeline.py", {"patient": patient})
    assert_no_errors(app)
    assert app.selectbox(key="timeline_pick").value == patient


def test_patient_timeline_is_for_the_clinical_team_only(demo_db, demo_snapshot):
    from streamlit.testing.v1 import AppTest
    from tests.helpers.apptest import ROOT
    app = AppTest.from_file(str(ROOT / "pages" / "patient_timeline.py"), default_timeout=60)
    app.session_state[CONTEXT_KEY] = PageContext(DataSource(demo_db, False), demo_snapshot,
                                                 Filters(), role="analyst")
    app.run()
    assert not app.exception
    assert any("not available to the analyst" in w.value or "clinical team only" in w.value
               for w in app.warning)
    assert not app.dataframe and not app.table and not app.get("plotly_chart")


# --------------------------------------------------------------------------
# data


@pytest.mark.parametrize("setting", SETTINGS)
def test_data_page(app_db, demo_snapshot, setting):
    _, filters, _, _, _ = SETTINGS[setting]
    app = _open("pages/data.py", setting)
    fresh = data_quality.freshness(demo_snapshot, filters)
    metrics = metric_values(app)
    assert metrics["Data cutoff (latest visit)"] == long_date(fresh.cutoff)
    assert metrics["Files loaded"] == count(fresh.ingests)
    assert metrics["Files refused"] == count(fresh.refused)
    sites = frame_with(app, "Days behind the cutoff")
    assert list(sites["Site"]) == list(fresh.sites["site"])
    assert list(sites["Latest visit"]) == [long_date(d) for d in fresh.sites["latest_visit"]]
    assert list(sites["Days behind the cutoff"]) == [count(d) for d in
                                                     fresh.sites["days_behind_cutoff"]]
    if filters.sites:
        assert set(sites["Site"]) <= set(filters.sites)

    key = data_quality.key_completeness(demo_snapshot, filters)
    shown = frame_with(app, "Needed for")
    assert list(shown["Recorded"]) == [f"{percent(s)} ({count(r)} of {count(n)})"
                                       for s, r, n in zip(key["share"], key["recorded"],
                                                          key["visits"])]
    heatmap = next(pio.from_json(c.proto.spec) for c in app.get("plotly_chart"))
    grid = data_quality.completeness(demo_snapshot, filters)
    overall = grid[grid.visit_type == "all"].set_index("column")["share"]
    first_column = [row[0] for row in trace_values(heatmap.data[0].z)]
    assert first_column == pytest.approx(overall.reindex(list(heatmap.data[0].y)).tolist())

    quarantine = data_quality.quarantine_rows(demo_snapshot)
    assert len(frame_with(app, "row as exported")) == len(quarantine) > 0
    issues = data_quality.value_issue_rows(demo_snapshot, filters)
    assert len(frame_with(app, "value in the export")) == len(issues) > 0
    log = data_quality.ingest_history(demo_snapshot)
    assert list(frame_with(app, "Rows read")["Rows read"]) == [count(v) for v in log["rows_read"]]
    downloads = app.get("download_button")
    assert len(downloads) == 2
    assert app.button(key="data_load").disabled            # nothing picked yet


def test_data_page_maps_the_columns_of_a_refused_file(demo_db, tmp_path, monkeypatch):
    clinic = tmp_path / "clinic.duckdb"
    shutil.copy(demo_db, clinic)
    monkeypatch.setenv("OUTCOMES_DB", str(clinic))
    before = store.Snapshot(clinic)
    visits_before = before.scalar("SELECT count(*) FROM visits")
    before.close()
    export = data_quality.save_upload(
        write_grant(clinic), "odd export.csv", b"Patient,Seen On,Encounter Kind,Pain Score\n"
                          b"Z1,2026-01-05,intake,7\nZ1,2026-01-06,infusion,6\n", tmp_path)
    names = {str(export): "odd export.csv"}
    refused = data_quality.ingest_uploads([export], write_grant(clinic), display_names=names)
    assert data_quality.needs_column_mapping(refused.files[0])

    from streamlit.testing.v1 import AppTest
    app = signed_in(AppTest.from_file(DASHBOARD, default_timeout=120))
    app.session_state["data_last_ingest"] = {
        "table": data_quality.summary_table(refused, names), "pending": names,
        "refused_uploads": [], "at": dt.datetime.now()}
    app.run()
    app.switch_page("pages/data.py")
    app.run()
    assert_no_errors(app)
    assert any(w.value.startswith("Refused") and "missing required column" in w.value
               for w in app.warning)
    # After switch_page, AppTest reruns the page alone with the context of the
    # first run; the real app rebuilds it (and its snapshot) on every run.  The
    # page closes the cached snapshots after an ingest, so give this stale
    # context a snapshot of its own.
    ctx = app.session_state[CONTEXT_KEY]
    own = store.Snapshot(clinic)
    app.session_state[CONTEXT_KEY] = dataclasses.replace(ctx, snap=own)
    visit_type = next(s for s in app.selectbox if s.label == "visit_type")
    assert visit_type.value is None and "Encounter Kind" in visit_type.options
    visit_type.select("Encounter Kind")
    next(s for s in app.selectbox if s.label == "patient_id").select("Patient")
    next(s for s in app.selectbox if s.label == "visit_date").select("Seen On")
    next(b for b in app.button if b.label == "Load with this mapping").click()
    app.run()
    assert_no_errors(app)
    table = frame_with(app, "rows read")
    assert list(table["status"]) == ["ingested"]
    assert any("1 file(s) ingested" in s.value for s in app.success)
    after = store.Snapshot(clinic)
    assert after.scalar("SELECT count(*) FROM visits") == visits_before + 2
    assert after.scalar("SELECT count(*) FROM visits WHERE patient_id = 'Z1'") == 2
    after.close()
    own.close()
