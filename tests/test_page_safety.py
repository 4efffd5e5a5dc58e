"""The Safety page (pages/safety.py) in the real app (AppTest): no exception
or error, and every number shown equals what ``analysis`` returns for the
same filters."""

from __future__ import annotations

import pytest

from analysis.metrics import safety
from analysis.core.formatting import count
from tests.helpers.apptest import (SETTINGS, assert_no_errors, caption_text, empty_query,
                                   frame_with, markdown_text, open_page, run_page)

CHECKED = ("filters", "timepoint", "population")   # the settings the page acts on


@pytest.mark.parametrize("setting", SETTINGS)
def test_safety_page(app_db, demo_snapshot, setting):
    chosen = SETTINGS[setting]
    filters = chosen.filters
    app = open_page("pages/safety.py", chosen, checked=CHECKED)
    summary = safety.safety_summary(demo_snapshot, filters)
    assert summary.sessions > 0
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Treatment sessions in view"] == count(summary.sessions)
    assert (f"{count(summary.infusion_visits)} infusion visits and {count(summary.boosters)} "
            f"boosters") in caption_text(app)
    for label, measure in (("Any adverse event, per 100 sessions", "any_adverse_event"),
                           ("Systolic BP ≥ 180, per 100 sessions", "sbp_180"),
                           ("SpO2 below 90%, per 100 sessions", "spo2_below_90")):
        rate = summary.rate(measure)
        assert metrics[label] == f"{rate.per_100:.1f}"
        assert (f"95% CI {rate.ci_low:.1f}–{rate.ci_high:.1f} · {count(rate.events)} of "
                f"{count(rate.n)}") in caption_text(app)
    spo2 = summary.rate("spo2_below_90")
    assert (f"**{count(spo2.events)} of {count(spo2.n)}** sessions with SpO2 recorded"
            f": {safety.per_100_text(spo2)}.") in markdown_text(app)
    for dimension, column in (("route", "Route"), ("dose_band", "Dose"), ("quarter", "Quarter")):
        table = frame_with(app, column)
        groups = summary.groups(dimension)
        assert len(table) == len(groups)
        for row, group in zip(table.itertuples(index=False), groups):
            rates = {m: summary.rate(m, dimension, group) for m in safety.CORE_MEASURES}
            assert row[1] == rates["any_adverse_event"].n
            assert list(row[2:]) == [safety.per_100_cell(r) for r in rates.values()]
    assert len(app.get("plotly_chart")) == 4


def test_the_page_explains_an_empty_selection(app_db, demo_snapshot):
    app = run_page("pages/safety.py", empty_query(demo_snapshot))
    assert_no_errors(app)
    assert any("No " in i.value and "filters" in i.value for i in app.info)
