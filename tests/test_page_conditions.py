"""The Conditions page (pages/conditions.py) in the real app (AppTest): no
exception or error, and every number shown equals what
``analysis.metrics.conditions`` returns for the same filters and outcome settings."""

from __future__ import annotations

import pytest

from analysis.core import audience, formatting
from analysis.metrics import charts, conditions, outcomes, pgic
from analysis.core.filters import Filters
from tests.helpers.apptest import (SETTINGS, frame_with, open_page, page_alone, plotly_figures,
                                   trace_values)

#: The settings the page's context must hold (the sidebar's and the URL's).
CHECKED = ("filters", "timepoint", "definition", "population", "ci")


# --------------------------------------------------------------------------
# conditions


@pytest.mark.parametrize("setting", SETTINGS)
def test_conditions_page(app_db, demo_snapshot, setting):
    chosen = SETTINGS[setting]
    app = open_page("pages/conditions.py", chosen, checked=CHECKED)
    filters, timepoint, definition, population = (chosen.filters, chosen.timepoint,
                                                  chosen.definition, chosen.population)
    summary = conditions.condition_summary(demo_snapshot, timepoint, definition, population,
                                        filters, "wilson")
    rows = outcomes.condition_table(demo_snapshot, timepoint, definition, population, filters)
    plain = frame_with(app, "Responder rate (95% CI)")
    table = frame_with(app, "Wilcoxon p")   # the statistics, in "How this is computed"
    for shown in (plain, table):
        assert list(shown["Condition"]) == [r.condition for r in rows] + ["All conditions in view"]
    body = table.iloc[:-1]
    assert list(body["Patients (n)"]) == [formatting.count(r.n) for r in rows]
    assert list(body["Responders"]) == [formatting.count(r.responders) for r in rows]
    assert list(body["Rate"]) == [formatting.percent(r.rate) for r in rows]
    assert list(body["95% CI (Wilson)"]) == [formatting.percent_range(r.ci_low, r.ci_high)
                                             for r in rows]
    assert list(plain["Median pain change (95% CI)"][:-1]) == [
        formatting.change_with_ci(r.median_change, r.median_ci_low, r.median_ci_high)
        for r in rows]
    assert list(body["Wilcoxon p"]) == [formatting.p_value(r.wilcoxon_p) for r in rows]
    assert list(body["With a pain follow-up (n)"]) == [formatting.count(r.change_n) for r in rows]
    # ranked: highest lower CI end first, conditions with n < 11 last (never first)
    small = [r.n < audience.SMALL_CELL for r in rows]
    assert small == sorted(small)
    rated = [r.ci_low for r in rows if r.n >= audience.SMALL_CELL and r.rate is not None]
    assert rated == sorted(rated, reverse=True)
    assert list(body["p vs other conditions (Holm)"]) == [formatting.p_value(r.p_holm)
                                                          for r in rows]
    # The plain words: each rate with its denominator, the comparison read off
    # the Holm p and the direction against the other conditions pooled.
    total_k, total_n = sum(r.responders for r in rows), sum(r.n for r in rows)
    words_expected = []
    for r in rows:
        others = (total_k - r.responders) / (total_n - r.n)
        words_expected.append("" if r.p_holm is None else
                              "could be chance" if r.p_holm >= 0.05 else
                              "clearly higher" if r.rate > others else "clearly lower")
    assert list(plain["Compared with the other conditions"][:-1]) == words_expected
    for r, text in zip(rows, plain["Responder rate (95% CI)"]):
        if r.n:
            assert text.endswith(f", {formatting.count(r.responders)} of {formatting.count(r.n)}")
    assert list(plain["Note"][:-1]) == ["too few to report" if r.n < audience.SMALL_CELL else ""
                                        for r in rows]
    improved = pgic.pgic_rates(demo_snapshot, timepoint, population, filters)
    by_condition = {g.group: g for g in improved.by_condition}
    assert list(plain["PGIC much improved"][:-1]) == [
        formatting.rate_with_ci(by_condition[r.condition].rate, by_condition[r.condition].ci_low,
                                by_condition[r.condition].ci_high)
        if r.condition in by_condition else "–" for r in rows]
    assert plain.iloc[-1]["PGIC much improved"] == formatting.rate_with_ci(
        improved.overall.rate, improved.overall.ci_low, improved.overall.ci_high)
    total = table.iloc[-1]
    overall = outcomes.responder_rates(demo_snapshot, timepoint, definition, population,
                                       filters).overall
    assert total["Patients (n)"] == formatting.count(overall.n)
    assert total["Rate"] == formatting.percent(overall.rate)
    change = outcomes.median_pain_change(demo_snapshot, timepoint, filters)
    assert plain.iloc[-1]["Median pain change (95% CI)"] == formatting.change_with_ci(
        change.median, change.ci_low, change.ci_high)
    assert total["Wilcoxon p"] == formatting.p_value(change.wilcoxon_p)

    (chart,) = plotly_figures(app)
    drawn = {}
    for trace in chart.data:
        if trace.name == pgic.LABEL:
            continue
        for label, x in zip(trace.y, trace_values(trace.x)):
            drawn[label] = x
    for r in rows:
        label = f"{r.condition} (n={formatting.count(r.n)})" + (
            ": too few to draw" if r.n < 11 else "")
        # a condition under 11 patients keeps its row, with no point drawn
        assert drawn[label] == (None if r.n < 11 else pytest.approx(r.rate))
    (line,) = [s for s in chart.layout.shapes if s.type == "line"]
    assert line.x0 == pytest.approx(summary.overall.rate)
    (diamonds,) = [t for t in chart.data if t.name == pgic.LABEL]
    drawn = dict(zip(diamonds.y, trace_values(diamonds.x)))
    for r in rows:
        label = f"{r.condition} (n={formatting.count(r.n)})" + (
            ": too few to draw" if r.n < 11 else "")
        improved_group = by_condition.get(r.condition)
        if improved_group is None or improved_group.rate is None:
            continue
        # a PGIC diamond only from 11 or more patients answering
        if improved_group.n >= charts.MIN_PER_POINT:
            assert drawn[label] == pytest.approx(improved_group.rate)
        else:
            assert label not in drawn


def test_the_page_with_no_patients(demo_db):
    app = page_alone("pages/conditions.py", demo_db, Filters(sites=("Nowhere",)))
    assert any("No patients match" in i.value for i in app.info)
    assert not app.get("plotly_chart")
    assert not plotly_figures(app)
