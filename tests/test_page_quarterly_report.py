"""The Quarterly report page under AppTest: the real app on the demo clinic,
and the page on its own with a marketing user's context."""

from __future__ import annotations

from pathlib import Path

from analysis.core.audience import SMALL_CELL, SUPPRESSED
from analysis.reports.quarterly.build import build_report, default_quarter, quarters_with_data
from analysis.reports.quarterly.render.files import RENDERERS, file_name
from analysis.reports.quarterly.tables import ALL_SITES
from analysis.storage import store
from analysis.core.filters import Filters
from tests.helpers.apptest import NON_DEFAULT_QUERY, assert_no_errors, run_page, page_alone

PAGE = "pages/quarterly_report.py"


def tables(app) -> list:
    """The report's tables (static tables: they wrap at 1280 px)."""
    return [d.value for d in app.table]


def test_page_shows_the_default_quarter(app_db):
    app = run_page(PAGE)
    assert_no_errors(app)
    snap = store.snapshot(app_db)
    quarters = quarters_with_data(snap)
    picker = app.selectbox(key="report_quarter")
    assert picker.options == list(reversed(quarters))
    assert picker.value == default_quarter(snap)
    assert app.radio(key="report_audience").value == "clinical"
    assert [b.label for b in app.get("download_button")] == [
        "Download HTML", "Download XLSX", "Download PDF"]
    assert len(app.get("plotly_chart")) == 3
    shown = tables(app)
    assert len(shown) == 7 and len(app.dataframe) == 1   # seven tables; the provenance
    expected = build_report(snap, picker.value)
    activity = shown[0].set_index("Site")
    total = expected.activity.set_index("site").loc[ALL_SITES]
    assert activity.loc[ALL_SITES, "New patients"] == f"{total['new_patients']:,}"
    assert activity.loc[ALL_SITES, "Infusion visits"] == f"{total['infusions']:,}"
    assert any(expected.fingerprint[:12] in c.value for c in app.caption)


def test_page_switches_quarter_and_audience(app_db):
    app = run_page(PAGE)
    first = app.selectbox(key="report_quarter").options[-1]
    app.selectbox(key="report_quarter").select(first).run()
    app.radio(key="report_audience").set_value("external").run()
    assert_no_errors(app)
    activity = tables(app)[0]
    for column in ("New patients", "Patients treated", "Infusion visits", "Boosters"):
        for text in activity[column]:
            # SPEC §4: no count from 1 to 10 (a 0 hides nobody)
            assert text == SUPPRESSED or int(text.replace(",", "")) in (0,) \
                or int(text.replace(",", "")) >= SMALL_CELL
    assert any(SUPPRESSED in str(v) for t in tables(app) for v in t.to_numpy().ravel())


def test_page_with_non_default_filters(app_db):
    app = run_page(PAGE, NON_DEFAULT_QUERY)
    assert_no_errors(app)
    sites = set(tables(app)[0]["Site"]) - {ALL_SITES}
    assert sites <= set(NON_DEFAULT_QUERY["site"])


def _page_alone(db_path: Path, role: str, filters: Filters = Filters()):
    return page_alone(PAGE, db_path, filters, role, timeout=120, check=False)


def test_marketing_gets_the_external_report_only(demo_db):
    app = _page_alone(demo_db, "marketing")
    assert_no_errors(app)
    forced = app.radio(key="report_audience_forced")
    assert forced.value == "external" and forced.disabled
    assert not [r for r in app.radio if r.key == "report_audience"]
    snap = store.snapshot(demo_db)
    ids = set(snap.query("SELECT DISTINCT patient_id FROM visits")["patient_id"])
    cells = {str(v) for t in tables(app) for v in t.to_numpy().ravel()}
    assert not ids & cells
    for spec, frame in build_report(snap, app.selectbox(key="report_quarter").value,
                                           "external").tables():
        for column in (c for c in spec.columns if c.kind == "n"):
            assert all(v in (None, 0, SUPPRESSED) or v >= SMALL_CELL for v in frame[column.name])


def test_a_quarter_without_visits_for_the_filters_is_a_message(demo_db):
    app = _page_alone(demo_db, "clinical", Filters(sites=("No such site",)))
    assert_no_errors(app)
    assert any("Nothing to report" in i.value for i in app.info)
    assert not app.get("download_button")


def test_download_renderers_make_files(demo_snapshot):
    quarterly = build_report(demo_snapshot, default_quarter(demo_snapshot),
                                    "external")
    html = RENDERERS["html"](quarterly)
    xlsx = RENDERERS["xlsx"](quarterly)
    assert html.startswith(b"<!DOCTYPE html>") and xlsx[:2] == b"PK"
    assert file_name(quarterly, "pdf").endswith("_external.pdf")
