"""The Data page (pages/data.py) in the real app (AppTest): no exception or
error, every number shown equals what ``analysis`` returns for the same
filters, and a refused file's columns can be mapped there."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import plotly.io as pio
import pytest

from analysis.ingest import data_quality
from analysis.storage import store
from analysis.core.formatting import count, long_date, percent
from tests.helpers.apptest import (DASHBOARD, SETTINGS, assert_no_errors, frame_with,
                                   metric_values, open_page, signed_in, trace_values)
from tests.helpers.builders import write_grant
from ui.page_context import CONTEXT_KEY


# --------------------------------------------------------------------------
# data


@pytest.mark.parametrize("setting", SETTINGS)
def test_data_page(app_db, demo_snapshot, setting):
    filters = SETTINGS[setting].filters
    app = open_page("pages/data.py", SETTINGS[setting])
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
