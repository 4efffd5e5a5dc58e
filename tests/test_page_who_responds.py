"""The Who responds page (pages/who_responds.py) in the real app (AppTest): no
exception or error, the model shown is the one ``analysis`` fits for the same
settings, it refuses on too few events, and it (like Dose & course) is
internal."""

from __future__ import annotations

import pytest

from analysis.core import formatting
from analysis.metrics import response_model
from analysis.core.filters import Filters
from tests.helpers.apptest import (assert_no_errors, caption_text, context_of, frame_with,
                                   metric_values, plotly_figures, run_page, trace_values)
from ui import safe


@pytest.mark.parametrize("query", [None, {"tp": "6m", "def": "pain50"}], ids=["default", "6m"])
def test_who_responds_page(app_db, demo_snapshot, query):
    app = run_page("pages/who_responds.py", query)
    assert_no_errors(app)
    ctx = context_of(app)
    result = response_model.who_responds(demo_snapshot, ctx.timepoint, ctx.definition,
                                         ctx.filters)
    captions = caption_text(app)
    assert f"n = {formatting.count(result.complete_covariates)}" in captions
    boxes = [b.value for b in (*app.info, *app.warning)]
    assert safe.text(result.summary) in boxes
    if result.fit.refused:
        assert not plotly_figures(app)
        return
    # plain words first (issue 19): no "Odds ratio", "p" or "AUC" leads ...
    plain = frame_with(app, "How much more likely to respond")
    assert list(plain.columns) == ["Patients with", "How much more likely to respond",
                                   "Could be chance?"]
    assert list(plain["Patients with"]) == [t.label for t in result.fit.terms]
    assert list(plain["How much more likely to respond"]) == [
        response_model.odds_text(t) for t in result.fit.terms]
    assert list(plain["Could be chance?"]) == [
        "yes, could be chance" if t.ci_low <= 1 <= t.ci_high else
        "no: clearly more likely" if t.odds_ratio > 1 else "no: clearly less likely"
        for t in result.fit.terms]
    for term in result.fit.terms:   # the words agree with the number
        value = term.odds_ratio
        assert response_model.odds_text(term).startswith(
            "less likely" if value <= 0.95 else f"{value:.1f} times" if value >= 1.05 else
            "about the same odds")
    # ... the statistics are one click away, in "How this is computed"
    expanders = [e for e in app.expander if e.label == "How this is computed"]
    assert len(expanders) == 2
    table = frame_with(expanders[0], "Odds ratio")
    assert list(table["Covariate"]) == [t.label for t in result.fit.terms]
    assert list(table["Odds ratio"]) == [f"{t.odds_ratio:.2f}" for t in result.fit.terms]
    assert list(table["p"]) == [formatting.p_value(t.p_value) for t in result.fit.terms]
    forest, calibration = plotly_figures(app)
    assert trace_values(forest.data[0].x) == pytest.approx(
        [t.odds_ratio for t in result.fit.terms][::-1])
    metrics = metric_values(app)
    assert metrics["How well the model tells responders apart"] == \
        f"{round(100 * result.fit.auc)} in 100"
    assert f"cross-validated AUC** (area under the ROC curve): {result.fit.auc:.2f}" in \
        "\n".join(m.value for m in expanders[1].markdown)
    # denominators in the sentence
    assert (f"{formatting.count(result.fit.events)} responders among "
            f"{formatting.count(result.fit.n)} patients") in captions
    leading = captions + "\n" + "\n".join(boxes) + "\n" + "\n".join(metrics)
    assert not any(word in leading for word in ("AUC", "Odds ratio", "odds ratio", " p ")), \
        leading
    points = calibration.data[1]
    assert trace_values(points.y) == pytest.approx(list(result.fit.calibration.observed))


def test_who_responds_refuses_on_few_events(app_db, demo_snapshot):
    app = run_page("pages/who_responds.py", {"tp": "12m", "def": "claim", "site": ["Boulder"]})
    assert_no_errors(app)
    result = response_model.who_responds(demo_snapshot, "12m", "claim",
                                         Filters(sites=("Boulder",)))
    assert result.fit.refused
    assert safe.text(result.summary) in [w.value for w in app.warning]
    assert not plotly_figures(app)


def test_who_responds_and_dose_are_internal(app_db):
    from ui.pages import pages_for
    marketing = {p.path for p in pages_for("marketing")}
    assert "pages/who_responds.py" not in marketing and "pages/dose_course.py" not in marketing
    assert {"pages/who_responds.py", "pages/dose_course.py", "pages/site_comparison.py"} <= {
        p.path for p in pages_for("analyst")}
