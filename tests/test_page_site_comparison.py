"""The Sites & providers page (pages/site_comparison.py) in the real app
(AppTest): no exception or error, every number shown equals what
``analysis`` returns for the same filters, and marketing sees the fixed,
suppressed table."""

from __future__ import annotations

import pytest

from analysis.core import formatting
from analysis.metrics import site_comparison
from analysis.core.audience import SUPPRESSED, Audience
from tests.helpers.apptest import (NON_DEFAULT_QUERY, assert_no_errors, caption_text, context_of,
                                   frame_with, plotly_figures, run_page, trace_values)


@pytest.mark.parametrize("query", [None, NON_DEFAULT_QUERY], ids=["default", "non-default"])
def test_sites_and_providers_page(app_db, demo_snapshot, query):
    app = run_page("pages/site_comparison.py", query)
    assert_no_errors(app)
    ctx = context_of(app)
    result = site_comparison.compare(demo_snapshot, "site", ctx.timepoint, ctx.definition,
                                     ctx.population, ctx.filters)
    table = frame_with(app, "Site")
    body = table.iloc[:-1]
    assert list(body["Site"]) == list(result.groups.group)
    assert list(body["Patients (n)"]) == [formatting.count(n) for n in result.groups.n]
    assert list(body["Against the funnel"]) == list(result.groups.position)
    (chart,) = plotly_figures(app)
    points = [t for t in chart.data if t.mode == "markers"]
    drawn = {label: (x, y) for t in points
             for label, x, y in zip(t.text, trace_values(t.x), trace_values(t.y))}
    # each name is written at its own point (a boxed label beside it, placed
    # where no other name is: test_grids_browser measures the drawn boxes)
    labels = {a.text: (a.x, a.y) for a in chart.layout.annotations if a.bgcolor}
    assert len(labels) == len(result.groups)
    for r in result.groups.itertuples():
        assert drawn[r.group] == (r.n, pytest.approx(r.rate))
        assert labels[r.group] == (r.n, pytest.approx(r.rate))
    limits = [t for t in chart.data if t.name == "95% limits"]
    upper = max(limits, key=lambda t: sum(trace_values(t.y)))
    assert trace_values(upper.y) == pytest.approx(list(result.funnel.upper_95))

    app.radio(key="comparison_by").set_value("provider").run()
    assert_no_errors(app)
    providers = site_comparison.compare(demo_snapshot, "provider", ctx.timepoint,
                                        ctx.definition, ctx.population, ctx.filters)
    table = frame_with(app, "Provider")
    assert list(table.iloc[:-1]["Provider"]) == list(providers.groups.group)


def test_sites_page_for_marketing_is_a_fixed_suppressed_table(app_db, demo_snapshot):
    app = run_page("pages/site_comparison.py", {**NON_DEFAULT_QUERY, "def": "claim", "tp": "12m",
                                                "pop": "itt"}, role="marketing")
    assert_no_errors(app)
    assert not plotly_figures(app)
    assert not app.radio                      # sites only
    # Issue 14: the URL's filters and settings do not apply for marketing
    # (this test asserted the URL's claim at 12 months): the fixed table is
    # the whole program's at the default settings.
    result = site_comparison.compare(demo_snapshot, "site", "3m", "pain30", "itt",
                                     audience=Audience.EXTERNAL)
    table = frame_with(app, "Site")
    assert list(table.iloc[:-1]["Site"]) == list(result.groups.group)   # every site: no filter
    assert table.iloc[-1]["Site"] == "Whole program"
    shown = [v for column in ("Patients (n)", "Responders") for v in table[column]
             if v != SUPPRESSED]
    assert all(not 1 <= int(v.replace(",", "")) <= 10 for v in shown)
    if result.groups.suppressed.any():
        assert SUPPRESSED in set(table["Responders"])
    assert "fixed table" in caption_text(app)
