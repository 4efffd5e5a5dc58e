"""The Dose & course page (pages/dose_course.py) in the real app (AppTest): no
exception or error, and every number shown equals what ``analysis`` returns
for the same filters."""

from __future__ import annotations

import pytest

from analysis.core import formatting
from analysis.metrics import treatment_course
from tests.helpers.apptest import (NON_DEFAULT_QUERY, assert_no_errors, context_of, frame_with,
                                   plotly_figures, run_page, trace_values)


@pytest.mark.parametrize("query", [None, NON_DEFAULT_QUERY], ids=["default", "non-default"])
def test_dose_and_course_page(app_db, demo_snapshot, query):
    app = run_page("pages/dose_course.py", query)
    assert_no_errors(app)
    ctx = context_of(app)
    result = treatment_course.course(demo_snapshot, ctx.timepoint, ctx.definition,
                                     ctx.population, ctx.filters)
    infusions = frame_with(app, "Induction infusions")
    assert list(infusions["Induction infusions"]) == list(result.by_infusions.group)
    assert list(infusions["Patients (n)"]) == [formatting.count(n) for n in result.by_infusions.n]
    assert list(infusions["Rate"]) == [formatting.percent(r) for r in result.by_infusions.rate]
    dose = frame_with(app, "Dose per kg")
    assert list(dose["Dose per kg"]) == list(result.by_dose.group)
    assert treatment_course.CAVEAT in [w.value for w in app.warning]
    (chart,) = plotly_figures(app)
    shown = result.by_infusions[result.by_infusions.n > 0]
    # no bar from fewer than 11 patients (the group keeps its place on the axis)
    assert trace_values(chart.data[0].y) == [None if few else pytest.approx(rate)
                                             for rate, few in zip(shown.rate, shown.too_few)]
