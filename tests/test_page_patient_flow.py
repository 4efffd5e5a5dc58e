"""The Patient flow page (pages/patient_flow.py) in the real app (AppTest): no
exception or error, and every number shown equals what
``analysis.metrics.patient_flow`` returns for the same filters and outcome settings."""

from __future__ import annotations

import pytest

from analysis.core import formatting
from analysis.metrics import outcomes, patient_flow
from analysis.core.filters import Filters
from tests.helpers.apptest import (SETTINGS, caption_text, frame_with, open_page, page_alone,
                                   plotly_figures)

#: The settings the page's context must hold (the sidebar's and the URL's).
CHECKED = ("filters", "timepoint", "definition", "population", "ci")


# --------------------------------------------------------------------------
# patient flow


def _number(text: str) -> int | None:
    return int(text.replace(",", "")) if text else None


@pytest.mark.parametrize("setting", SETTINGS)
def test_patient_flow_page(app_db, demo_snapshot, setting):
    chosen = SETTINGS[setting]
    app = open_page("pages/patient_flow.py", chosen, checked=CHECKED)
    filters, timepoint, definition, population = (chosen.filters, chosen.timepoint,
                                                  chosen.definition, chosen.population)
    flow = patient_flow.patient_flow(demo_snapshot, timepoint, definition, filters)
    assert flow.reconciles
    table = frame_with(app, "Stage")
    expected = flow.table()
    assert list(table["Stage"]) == list(expected["stage"])
    assert list(table["Left the flow"]) == list(expected["exit"])
    assert [_number(t) for t in table["Patients"]] == [
        None if v != v else int(v) for v in expected["patients"]]
    assert [_number(t) for t in table["Patients who left"]] == [
        None if v != v else int(v) for v in expected["left"]]
    # The table as shown reconciles: each stage = next stage + those who left.
    stages = [_number(t) for t, s in zip(table["Patients"], table["Stage"]) if s]
    for step, (here, following) in enumerate(zip(stages, stages[1:]), start=1):
        left = sum(_number(t) for t, s in zip(table["Patients who left"], table["Step"])
                   if s == step and t)
        assert here == following + left
    (chart,) = plotly_figures(app)
    text = " ".join(a.text or "" for a in chart.layout.annotations)
    for stage in flow.stages:
        assert f"{stage.label}<br><b>{formatting.count(stage.patients)}</b>" in text
        for exit_ in stage.exits:
            assert f"{exit_.label}: <b>{formatting.count(exit_.patients)}</b>" in text
    captions = caption_text(app)
    assert f"also counts the {formatting.count(flow.stopped_early_due)} patients" in captions
    # The flow leads with the program's ITT rate, the same number as Overview's.
    rates = outcomes.responder_rates(demo_snapshot, timepoint, definition, population, filters)
    metrics = {m.label: m.value for m in app.metric}
    if population == "itt":
        assert (flow.itt_responders, flow.itt_n) == (rates.overall.responders, rates.overall.n)
        assert metrics["Responders, ITT (the program's rate, as on Overview)"] == \
            formatting.percent(rates.overall.rate)
    assert metrics["… who completed induction (the path below)"] == formatting.percent(
        flow.stage("responder").patients / flow.stage("due").patients)


def test_the_page_with_no_patients(demo_db):
    app = page_alone("pages/patient_flow.py", demo_db, Filters(sites=("Nowhere",)))
    assert any("No patients match" in i.value for i in app.info)
    assert not app.get("plotly_chart")
    assert not plotly_figures(app)
