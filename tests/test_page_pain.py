"""The Pain over time page (pages/pain.py) in the real app (AppTest): no
exception or error, every number shown equals what ``analysis.metrics.pain``
returns for the same filters and outcome settings, and patient ids for the
clinical team only."""

from __future__ import annotations

import re

import pytest

from analysis.core import formatting
from analysis.metrics import charts, conditions, outcomes, pain
from analysis.core.filters import Filters
from tests.helpers.apptest import (SETTINGS, assert_no_errors, caption_text, markdown_text,
                                   open_page, page_alone, plotly_figures, trace_values)

#: The settings the page's context must hold (the sidebar's and the URL's).
CHECKED = ("filters", "timepoint", "definition", "population", "ci")


# --------------------------------------------------------------------------
# pain over time


def _series(trace) -> list:
    return [y for y in trace_values(trace.y) if y is not None]


@pytest.mark.parametrize("setting", SETTINGS)
def test_pain_page(app_db, demo_snapshot, setting):
    chosen = SETTINGS[setting]
    app = open_page("pages/pain.py", chosen, checked=CHECKED)
    filters, timepoint, definition = chosen.filters, chosen.timepoint, chosen.definition
    _check_pain(app, demo_snapshot, filters, timepoint, definition)


def _check_pain(app, snap, filters, timepoint, definition):
    weeks = pain.pain_by_week(snap, filters)
    waterfall = pain.pain_waterfall(snap, timepoint, definition, filters)
    acute = pain.acute_by_infusion(snap, filters)
    weekly, bars, infusions = plotly_figures(app)
    median = next(t for t in weekly.data if t.name == "median")
    assert _series(median) == pytest.approx(list(weeks["median"]))
    assert [x for x, y in zip(trace_values(median.x), trace_values(median.y)) if y is not None] == \
        list(weeks["week"])
    band = next(t for t in weekly.data if t.name == "interquartile range")
    # One closed shape per stretch of weeks: the q3 edge forwards, q1 back.
    corners = sorted((x, y) for x, y in zip(trace_values(band.x), trace_values(band.y))
                     if x is not None)
    expected = sorted([*zip(weeks["week"], weeks["q3"]), *zip(weeks["week"], weeks["q1"])])
    assert [x for x, _ in corners] == [x for x, _ in expected]
    assert [y for _, y in corners] == pytest.approx([y for _, y in expected])

    drawn = sorted((x, y) for trace in bars.data for x, y in zip(trace_values(trace.x),
                                                                  trace_values(trace.y)))
    assert [x for x, _ in drawn] == list(range(1, len(waterfall.bars) + 1))
    assert [y for _, y in drawn] == pytest.approx(list(waterfall.bars["percent_change"]))
    green = next(t for t in bars.data if t.name.startswith("responder"))
    assert len(trace_values(green.y)) == waterfall.responders
    levels = sorted(s.y0 for s in bars.layout.shapes)
    assert levels == [-50, -30]
    captions = caption_text(app)
    assert (f"{formatting.count(len(waterfall.bars))} patients with baseline pain above 0"
            in captions)
    assert (f"Not drawn: {formatting.count(waterfall.due_without_follow_up)} patients"
            in captions)
    # The median change shown with its exact CI and the Wilcoxon p, for the
    # waterfall's patients.
    change = outcomes.median_pain_change(snap, timepoint, filters)
    assert change.n == len(waterfall.bars)
    text = markdown_text(app)
    assert (f"**Median change in pain: {formatting.change_with_ci(change.median, change.ci_low, change.ci_high)}**"
            f" among {formatting.count(change.n)} patients: ") in text
    # the test itself one click away
    assert (f"Wilcoxon signed-rank p {formatting.p_text(change.wilcoxon_p)} (against no change), "
            f"{formatting.count(change.n)} patients.") in text
    # weeks and session numbers from fewer than 11 patients are not drawn
    assert (weeks["patients"] >= charts.MIN_PER_POINT).all()
    assert (acute["patients"] >= charts.MIN_PER_POINT).all()

    (points,) = infusions.data
    assert trace_values(points.x) == list(acute["infusion_number"])
    assert trace_values(points.y) == pytest.approx(list(acute["median"]))


def test_pain_page_condition_select(app_db, demo_snapshot):
    chosen = SETTINGS["non-default"]
    app = open_page("pages/pain.py", chosen, checked=CHECKED)
    filters, timepoint, definition = chosen.filters, chosen.timepoint, chosen.definition
    options = conditions.conditions_in_view(demo_snapshot, filters)
    assert app.selectbox(key="pain_condition").options == ["All conditions (pooled)", *options]
    condition = options[0]
    app.selectbox(key="pain_condition").set_value(condition).run()
    assert_no_errors(app)
    _check_pain(app, demo_snapshot, conditions.for_condition(filters, condition), timepoint,
                definition)


def test_pain_page_patient_ids_only_for_the_clinical_team(demo_db, demo_snapshot):
    waterfall = pain.pain_waterfall(demo_snapshot)
    some_id = waterfall.bars["patient_id"].iloc[0]
    clinical = page_alone("pages/pain.py", demo_db, role="clinical")
    analyst = page_alone("pages/pain.py", demo_db, role="analyst")
    assert some_id in plotly_figures(clinical)[1].to_json()
    assert not re.search(r"P\d{6}", plotly_figures(analyst)[1].to_json())
    assert "Patient ids are shown to the clinical team only" in caption_text(analyst)


def test_the_page_with_no_patients(demo_db):
    app = page_alone("pages/pain.py", demo_db, Filters(sites=("Nowhere",)))
    assert any("No patients match" in i.value for i in app.info)
    assert not app.get("plotly_chart")
    assert not plotly_figures(app)
