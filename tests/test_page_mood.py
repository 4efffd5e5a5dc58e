"""The Depression & PTSD page (pages/mood.py) in the real app (AppTest): no
exception or error, and every number shown equals what ``analysis`` returns
for the same filters."""

from __future__ import annotations

import pytest

from analysis.metrics import mood
from analysis.core.formatting import count, percent
from tests.helpers.apptest import (SETTINGS, assert_no_errors, caption_text, empty_query,
                                   frame_with, markdown_text, open_page, run_page)

CHECKED = ("filters", "timepoint", "population")   # the settings the page acts on


@pytest.mark.parametrize("setting", SETTINGS)
def test_mood_page(app_db, demo_snapshot, setting):
    chosen = SETTINGS[setting]
    filters, timepoint, population = chosen.filters, chosen.timepoint, chosen.population
    app = open_page("pages/mood.py", chosen, checked=CHECKED)
    rates = mood.mood_rates(demo_snapshot, timepoint, population, filters)
    assert rates.treated > 0
    metrics = {m.label: m.value for m in app.metric}
    captions = caption_text(app)
    for measure in rates.measures:
        g = measure.overall
        assert metrics[measure.label] == percent(g.rate)
        assert (f"95% CI {percent(g.ci_low)}–{percent(g.ci_high)} · "
                f"{count(g.responders)} of {count(g.n)} patients") in captions
    table = frame_with(app, "Condition")
    assert list(table["Condition"]) == [g.group for g in rates.measures[0].by_condition]
    for measure in rates.measures:
        shown = list(table[mood.MEASURE_SHORT[measure.measure]])
        assert shown == [mood.rate_cell(g) for g in measure.by_condition]
    pair = mood.pain_mood_table(demo_snapshot, timepoint, filters)
    assert pair.n > 0
    crosstab = frame_with(app, "Depression response")
    assert list(crosstab["Depression response"]) == [pair.both, pair.mood_only,
                                                pair.both + pair.mood_only]
    assert list(crosstab["No depression response"]) == [pair.pain_only, pair.neither,
                                                   pair.pain_only + pair.neither]
    assert list(crosstab["Total"]) == [pair.pain_responders, pair.pain_non_responders, pair.n]
    assert f"Odds ratio {mood.odds_ratio_text(pair)}" in markdown_text(app)
    who = next(d.value for d in app.dataframe if "Counted" in d.value.index)
    for measure in rates.measures:
        assert who.loc["Counted", mood.MEASURE_SHORT[measure.measure]] == measure.overall.n


def test_the_page_explains_an_empty_selection(app_db, demo_snapshot):
    app = run_page("pages/mood.py", empty_query(demo_snapshot))
    assert_no_errors(app)
    assert any("No " in i.value and "filters" in i.value for i in app.info)
