"""The Overview page (pages/overview.py) in the real app (AppTest): no exception
or error, and every number shown equals what ``analysis.metrics.program_overview``
returns for the same filters and outcome settings."""

from __future__ import annotations

import pytest

from analysis.core import formatting
from analysis.metrics import outcomes, pgic, program_overview
from analysis.core.filters import Filters
from tests.helpers.apptest import (SETTINGS, caption_text, frame_with, open_page, page_alone,
                                   plotly_figures, trace_values)

#: The settings the page's context must hold (the sidebar's and the URL's).
CHECKED = ("filters", "timepoint", "definition", "population", "ci")


# --------------------------------------------------------------------------
# overview


@pytest.mark.parametrize("setting", SETTINGS)
def test_overview_page(app_db, demo_snapshot, setting):
    chosen = SETTINGS[setting]
    app = open_page("pages/overview.py", chosen, checked=CHECKED)
    filters, timepoint, definition, population = (chosen.filters, chosen.timepoint,
                                                  chosen.definition, chosen.population)
    view = program_overview.overview(demo_snapshot, filters, timepoint, definition, population, "wilson")
    assert view.patients > 0
    metrics = {m.label: m for m in app.metric}
    assert len(metrics) == len(view.measures) == 8
    captions = caption_text(app)
    for measure in view.measures:
        shown = metrics[measure.label]
        assert shown.value == measure.value_text
        assert shown.delta == (measure.delta_text or "")
        if measure.detail_text:
            assert measure.detail_text in captions
    assert f"{view.quarter.label} compared with {view.previous.label}" in captions
    assert "everything in view" in captions
    assert view.measure("patients_treated").value == outcomes.scope(demo_snapshot,
                                                                     filters).patients
    rate = outcomes.responder_rates(demo_snapshot, timepoint, definition, population, filters)
    assert metrics[f"Responders ({definition})"].value == formatting.percent(rate.overall.rate)
    improved = pgic.pgic_rates(demo_snapshot, timepoint, population, filters)
    assert metrics[pgic.LABEL].value == formatting.percent(improved.overall.rate)
    assert (f"{formatting.count(improved.overall.responders)} of "
            f"{formatting.count(improved.overall.n)} patients") in captions

    side = frame_with(app, "measure")
    assert list(side["measure"]) == [m.label for m in view.measures]
    assert list(side[view.quarter.name]) == [m.quarter_text("quarter") for m in view.measures]
    assert list(side[view.previous.name]) == [m.quarter_text("previous") for m in view.measures]
    assert list(side["change"]) == [m.delta_text or "–" for m in view.measures]

    (chart,) = plotly_figures(app)
    starts, infusions = chart.data
    assert trace_values(starts.y) == list(view.activity["patients_starting"])
    assert trace_values(infusions.y) == list(view.activity["infusions"])


def test_the_page_with_no_patients(demo_db):
    app = page_alone("pages/overview.py", demo_db, Filters(sites=("Nowhere",)))
    assert any("No patients match" in i.value for i in app.info)
    assert not app.get("plotly_chart")
    assert not plotly_figures(app)
