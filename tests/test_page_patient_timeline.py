"""The Patient timeline page (pages/patient_timeline.py) in the real app
(AppTest): no exception or error, every number shown equals what ``analysis``
returns for the same filters and outcome settings, and it is for the
clinical team only."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.metrics import timeline
from analysis.core.formatting import count, number, short_date
from analysis.core.filters import Filters
from analysis.sources import DataSource
from tests.helpers.apptest import (SETTINGS, assert_no_errors, chart_traces, frame_with,
                                   metric_values, open_page, run_page)
from ui.page_context import CONTEXT_KEY, PageContext


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
    pain = chart_traces(app)[f"Patient {patient_id}"]["pain before (usual pain)"][1]
    assert pain == pytest.approx(visits["pain_score"].dropna().tolist())


@pytest.mark.parametrize("setting", SETTINGS)
def test_patient_timeline_page(app_db, demo_snapshot, setting):
    filters, definition = SETTINGS[setting].filters, SETTINGS[setting].definition
    app = open_page("pages/patient_timeline.py", SETTINGS[setting])
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
