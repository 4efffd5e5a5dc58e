"""The Depression & PTSD, Safety and Durability pages in the real app (AppTest):
no exception or error, and every number shown equals what ``analysis``
returns for the same filters."""

from __future__ import annotations

import itertools

import pytest

from analysis.metrics import durability, mood, outcomes, safety
from analysis.core.formatting import count, percent
from analysis.core.filters import Filters
from tests.helpers.apptest import (NON_DEFAULT_QUERY, assert_no_errors, caption_text, frame_with,
                                   markdown_text, run_page)
from ui.page_context import CONTEXT_KEY

SETTINGS = {
    "default": (None, Filters(), "3m", "itt"),
    "non-default": (NON_DEFAULT_QUERY, Filters(sites=tuple(NON_DEFAULT_QUERY["site"])),
                    NON_DEFAULT_QUERY["tp"], NON_DEFAULT_QUERY["pop"]),
}


def _open(page, query, filters, timepoint, population):
    app = run_page(page, query)
    assert_no_errors(app)
    ctx = app.session_state[CONTEXT_KEY]
    assert (ctx.filters, ctx.timepoint, ctx.population) == (filters, timepoint, population)
    return app


@pytest.mark.parametrize("setting", SETTINGS)
def test_mood_page(app_db, demo_snapshot, setting):
    query, filters, timepoint, population = SETTINGS[setting]
    app = _open("pages/mood.py", query, filters, timepoint, population)
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


@pytest.mark.parametrize("setting", SETTINGS)
def test_safety_page(app_db, demo_snapshot, setting):
    query, filters, timepoint, population = SETTINGS[setting]
    app = _open("pages/safety.py", query, filters, timepoint, population)
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


@pytest.mark.parametrize("setting", SETTINGS)
def test_durability_page(app_db, demo_snapshot, setting):
    query, filters, timepoint, population = SETTINGS[setting]
    app = _open("pages/durability.py", query, filters, timepoint, population)
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


def _empty_query(snap) -> dict:
    """Shared filters (site × condition × route) matching no treated patient."""
    options = outcomes.filter_options(snap)
    seen = set(map(tuple, snap.query(
        "SELECT DISTINCT site, condition, route FROM patients WHERE treated").itertuples(
            index=False)))
    for combo in itertools.product(options.sites, options.conditions, options.routes):
        if combo not in seen:
            return {"site": [combo[0]], "condition": [combo[1]], "route": [combo[2]]}
    pytest.skip("every site × condition × route has patients")


@pytest.mark.parametrize("page", ["pages/mood.py", "pages/safety.py", "pages/durability.py"])
def test_pages_explain_an_empty_selection(app_db, demo_snapshot, page):
    app = run_page(page, _empty_query(demo_snapshot))
    assert_no_errors(app)
    assert any("No " in i.value and "filters" in i.value for i in app.info)
