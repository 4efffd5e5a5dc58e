"""The Program summary page (issue 19) under AppTest: it shows the
summary's numbers for the chosen quarter and the patients in view, for the
clinical team and analysts, and offers the one-page PDF."""

from __future__ import annotations

from analysis.reports import summary
from analysis.reports.quarterly.build import default_quarter
from analysis.storage import store
from analysis.core.formatting import count
from analysis.core.filters import Filters
from ui import safe
from tests.helpers.apptest import assert_no_errors, markdown_text, metric_values, run_page

PAGE = "pages/summary.py"


def test_the_page_shows_the_summary(app_db):
    app = run_page(PAGE)
    assert_no_errors(app)
    snap = store.snapshot(app_db)
    expected = summary.build_summary(snap, default_quarter(snap))
    metrics = metric_values(app)
    assert metrics["Patients treated"] == count(expected.activity["patients_treated"])
    assert metrics["Follow-ups due now"] == count(expected.backlog.open_total)
    (table,) = [t.value for t in app.table]
    assert list(table[expected.quarter]) == [safe.text(h.result_text())
                                            for h in expected.headlines]
    assert list(table["Change"]) == [safe.text(h.change.short_words())
                                     for h in expected.headlines]
    text = markdown_text(app)
    for line in [*expected.changes(), *expected.backlog_text()]:
        assert safe.text(line) in text
    assert [b.label for b in app.get("download_button")] == ["Download the page (PDF)"]


def test_the_sites_filter_and_quarter_apply(app_db):
    app = run_page(PAGE, {"site": "Denver"}, role="analyst")
    assert_no_errors(app)
    app.selectbox(key="summary_quarter").select("2026Q1").run()
    assert_no_errors(app)
    expected = summary.build_summary(store.snapshot(app_db), "2026Q1", Filters(sites=("Denver",)))
    assert metric_values(app)["Patients treated"] == count(
        expected.activity["patients_treated"])
