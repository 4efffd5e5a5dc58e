"""The Overview, Conditions, Pain over time and Patient flow pages in the real
app (AppTest): no exception or error, and every number shown equals what
``analysis.metrics.program_overview``, ``conditions``, ``pain`` and
``patient_flow`` return for the same filters and outcome settings."""

from __future__ import annotations

import re

import pytest

from analysis.core import audience, formatting
from analysis.metrics import (charts, conditions, outcomes, pain, patient_flow, pgic,
                              program_overview)
from analysis.core.filters import Filters
from tests.helpers.apptest import (NON_DEFAULT_QUERY, assert_no_errors, caption_text, frame_with,
                                   markdown_text, page_alone, plotly_figures, run_page,
                                   trace_values)
from ui.page_context import CONTEXT_KEY

SETTINGS = {
    "default": (None, Filters(), "3m", "pain30", "itt"),
    "non-default": (NON_DEFAULT_QUERY, Filters(sites=tuple(NON_DEFAULT_QUERY["site"])),
                    NON_DEFAULT_QUERY["tp"], NON_DEFAULT_QUERY["def"], NON_DEFAULT_QUERY["pop"]),
}


def _open(page, setting):
    query, filters, timepoint, definition, population = SETTINGS[setting]
    app = run_page(page, query)
    assert_no_errors(app)
    ctx = app.session_state[CONTEXT_KEY]
    assert (ctx.filters, ctx.timepoint, ctx.definition, ctx.population, ctx.ci) == \
        (filters, timepoint, definition, population, "wilson")
    return app, filters, timepoint, definition, population


# --------------------------------------------------------------------------
# overview


@pytest.mark.parametrize("setting", SETTINGS)
def test_overview_page(app_db, demo_snapshot, setting):
    app, filters, timepoint, definition, population = _open("pages/overview.py", setting)
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


# --------------------------------------------------------------------------
# conditions


@pytest.mark.parametrize("setting", SETTINGS)
def test_conditions_page(app_db, demo_snapshot, setting):
    app, filters, timepoint, definition, population = _open("pages/conditions.py", setting)
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


# --------------------------------------------------------------------------
# pain over time


def _series(trace) -> list:
    return [y for y in trace_values(trace.y) if y is not None]


@pytest.mark.parametrize("setting", SETTINGS)
def test_pain_page(app_db, demo_snapshot, setting):
    app, filters, timepoint, definition, population = _open("pages/pain.py", setting)
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
    app, filters, timepoint, definition, _ = _open("pages/pain.py", "non-default")
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


# --------------------------------------------------------------------------
# patient flow


def _number(text: str) -> int | None:
    return int(text.replace(",", "")) if text else None


@pytest.mark.parametrize("setting", SETTINGS)
def test_patient_flow_page(app_db, demo_snapshot, setting):
    app, filters, timepoint, definition, population = _open("pages/patient_flow.py", setting)
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


# --------------------------------------------------------------------------
# nobody in view


@pytest.mark.parametrize("page", ["pages/overview.py", "pages/conditions.py", "pages/pain.py",
                                  "pages/patient_flow.py"])
def test_pages_with_no_patients(demo_db, page):
    app = page_alone(page, demo_db, Filters(sites=("Nowhere",)))
    assert any("No patients match" in i.value for i in app.info)
    assert not app.get("plotly_chart")
