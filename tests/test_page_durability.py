"""The Durability page (pages/durability.py) in the real app (AppTest): no
exception or error, and every number shown equals what ``analysis`` returns
for the same filters."""

from __future__ import annotations

import pytest

from analysis.metrics import durability
from analysis.core.formatting import count
from tests.helpers.apptest import (SETTINGS, assert_no_errors, caption_text, empty_query,
                                   markdown_text, open_page, run_page)

CHECKED = ("filters", "timepoint", "population")   # the settings the page acts on


@pytest.mark.parametrize("setting", SETTINGS)
def test_durability_page(app_db, demo_snapshot, setting):
    chosen = SETTINGS[setting]
    filters = chosen.filters
    app = open_page("pages/durability.py", chosen, checked=CHECKED)
    results = [durability.durability(demo_snapshot, c, filters) for c in durability.CURVES]
    text = markdown_text(app)
    tables = [d.value for d in app.dataframe if d.value.index.name == "Number at risk"]
    assert len(tables) == 2
    for result, table in zip(results, tables):
        pooled = result.pooled
        # in words first, the Kaplan-Meier median one click away
        assert f"**{durability.POOLED}**: {durability.plain_text(result, pooled)}" in text
        assert (f"**{durability.POOLED}**: median {durability.median_text(pooled.km)} · "
                f"{count(pooled.n)} patients, {count(pooled.events)}") in text
        assert list(table.index) == [durability.POOLED]
        assert table.loc[durability.POOLED].tolist() == [pooled.at_risk[d]
                                                         for d in durability.AT_RISK_DAYS]
    assert len(app.get("plotly_chart")) == 2
    # SPEC §4: the page says where loss of response is censored, and why
    assert ("counts as responding up to their last visit with a pain score, not up to the data "
            "cutoff" in caption_text(app))
    # pick the largest condition: its curve joins the pooled one
    booster = results[0]
    biggest = max(booster.by_condition, key=lambda c: c.n)
    app.selectbox(key="durability_condition").set_value(biggest.group).run()
    assert_no_errors(app)
    tables = [d.value for d in app.dataframe if d.value.index.name == "Number at risk"]
    assert list(tables[0].index) == [durability.POOLED, biggest.group]
    assert tables[0].loc[biggest.group].tolist() == [biggest.at_risk[d]
                                                     for d in durability.AT_RISK_DAYS]
    assert f"**{biggest.group}**: median {durability.median_text(biggest.km)}" in markdown_text(app)


def test_the_page_explains_an_empty_selection(app_db, demo_snapshot):
    app = run_page("pages/durability.py", empty_query(demo_snapshot))
    assert_no_errors(app)
    assert any("No " in i.value and "filters" in i.value for i in app.info)
