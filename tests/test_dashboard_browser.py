"""End to end: the real ``streamlit run dashboard.py`` in headless Chromium.

Starts the app on a free port against the demo database, opens every page,
asserts it shows its title and no error, and saves a screenshot per page
under ``artifacts/screenshots/`` (look at them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.core.filters import Filters
from tests.helpers.apptest import ROOT
from tests.helpers.browser import CLINICIAN, grid_download_states, require_chromium, settle, sign_in
from ui.pages import PAGES

require_chromium()

SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def _url_path(page_path: str) -> str:
    return Path(page_path).stem


def _wait_for_app(page) -> None:
    # Every page shows the status line ("... data cutoff ...") once the
    # script has run; then wait until the app no longer shows "Running".
    settle(page, charts=True, pause=1.0)


def _sign_in(page, url: str) -> None:
    """Clinic data: every browser session signs in first."""
    sign_in(page, url, *CLINICIAN)
    _wait_for_app(page)


def _open(page, spec) -> None:
    """Click the page's link in the sidebar navigation."""
    if not spec.default:
        page.get_by_role("link", name=spec.title).first.click()
        page.wait_for_url(f"**/{_url_path(spec.path)}*", timeout=60_000)
        _wait_for_app(page)


def test_sign_in_page_comes_first(dashboard, browser):
    page = browser.new_page()
    try:
        page.goto(dashboard + "/conditions", wait_until="domcontentloaded", timeout=60_000)
        page.wait_for_selector("h1:has-text('Sign in')", timeout=60_000)
        text = page.inner_text("body")
        assert "data cutoff" not in text and "Conditions" not in text
    finally:
        page.close()


@pytest.mark.parametrize("spec", PAGES, ids=lambda s: _url_path(s.path))
def test_page_renders_without_error(dashboard, browser, spec):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    try:
        _sign_in(page, dashboard)
        _open(page, spec)
        page.screenshot(path=str(SCREENSHOTS / f"{_url_path(spec.path)}.png"), full_page=True)
        text = page.inner_text("[data-testid='stMain']")
        assert spec.title.split()[0].lower() in text.lower(), text[:500]
        assert not page.query_selector("[data-testid='stException']"), text[:2000]
        errors = page.query_selector_all("[data-testid='stAlertContentError']")
        assert not errors, [e.inner_text() for e in errors]
        assert "Traceback" not in text
    finally:
        page.close()


def test_clicking_through_pages_keeps_filters_and_shows_no_error(dashboard, browser):
    """Navigate by clicking (not by URL), with a non-default filter in the URL:
    the shared sidebar survives every page switch and the filter sticks."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    try:
        _sign_in(page, dashboard + "/?site=Denver&tp=6m")
        titles = ("Conditions", "Pain over time", "Patient flow", "Claim check", "Overview")
        for spec in [next(s for s in PAGES if s.title == t) for t in titles]:
            title = spec.title
            if spec.default:
                page.get_by_role("link", name=title).first.click()
                page.wait_for_timeout(500)
                _wait_for_app(page)
            else:
                _open(page, spec)
            text = page.inner_text("[data-testid='stMain']")
            assert not page.query_selector("[data-testid='stException']"), text[:2000]
            assert "sites: Denver" in text, f"filter lost on {title}"
            assert "6 months" in text
    finally:
        page.close()


def test_status_line_and_data_page_visits_reconcile(dashboard, browser, demo_db):
    """The status line (drawn by dashboard.py, so read here in Chromium)
    counts the treated patients' visits; the Data page counts every
    patient's, and says how the two make up each other (issue 15)."""
    import re

    from analysis.metrics import outcomes
    from analysis.storage import store
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    try:
        _sign_in(page, dashboard + "/?site=Denver")
        text = page.inner_text("[data-testid='stMain']")
        line = re.search(r"([\d,]+) treated patients and their ([\d,]+) visits in view", text)
        assert line, text[:800]
        patients, visits = (int(v.replace(",", "")) for v in line.groups())
        _open(page, next(s for s in PAGES if s.title == "Data"))
        data = " ".join(page.inner_text("[data-testid='stMain']").split())
        reconcile = re.search(r"the ([\d,]+) visits of the ([\d,]+) treated patients \(the status "
                              r"line's count\)", data)
        assert reconcile, data[:2000]
        assert (int(reconcile.group(1).replace(",", "")),
                int(reconcile.group(2).replace(",", ""))) == (visits, patients)
        snap = store.Snapshot(demo_db)
        try:
            scope = outcomes.scope(snap, Filters(sites=("Denver",)))
        finally:
            snap.close()
        assert (scope.patients, scope.visits) == (patients, visits)
        assert scope.all_visits > scope.visits     # the Data page's count differs, on purpose
    finally:
        page.close()


def test_director_pages_with_their_own_settings(dashboard, browser):
    """Who responds with a model fitted (4 weeks: enough events on the test
    demo), the funnel plot by provider, and the worklist's missed list."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    try:
        _sign_in(page, dashboard + "/?tp=4w")
        _open(page, next(s for s in PAGES if s.path == "pages/who_responds.py"))
        text = page.inner_text("[data-testid='stMain']")
        assert "How well the model tells responders apart" in text, text[:1500]
        assert "How much more likely to respond" in text, text[:1500]
        assert len(page.query_selector_all(".js-plotly-plot")) == 2
        page.screenshot(path=str(SCREENSHOTS / "who_responds_fitted.png"), full_page=True)
        page.query_selector_all(".js-plotly-plot")[1].scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.query_selector_all("[data-testid='stPlotlyChart']")[1].screenshot(
            path=str(SCREENSHOTS / "who_responds_calibration.png"))

        _open(page, next(s for s in PAGES if s.path == "pages/site_comparison.py"))
        page.get_by_text("Providers", exact=True).click()
        page.wait_for_timeout(500)
        _wait_for_app(page)
        text = page.inner_text("[data-testid='stMain']")
        assert "by provider" in text and "CLN-01" in text, text[:1500]
        page.screenshot(path=str(SCREENSHOTS / "site_comparison_providers.png"), full_page=True)

        _open(page, next(s for s in PAGES if s.path == "pages/worklist.py"))
        page.get_by_role("tab", name="Missed follow-up").click()
        page.wait_for_timeout(1000)
        assert "Most recently closed windows first" in page.inner_text("[data-testid='stMain']")
        page.screenshot(path=str(SCREENSHOTS / "worklist_missed.png"), full_page=True)
        assert not page.query_selector("[data-testid='stException']")
    finally:
        page.close()



def test_a_grid_offers_no_unaudited_download_on_clinic_data(dashboard, browser):
    """On a clinic's data every file that leaves goes through a page's own
    download button, which writes an audit row; a grid's toolbar "Download
    as CSV" writes none, so it is not offered (on the demo it is hidden too,
    as it cannot carry the synthetic mark: test_grids_browser)."""
    worklist = next(spec for spec in PAGES if _url_path(spec.path) == "worklist")
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    try:
        _sign_in(page, dashboard)
        _open(page, worklist)
        grid = page.query_selector("[data-testid='stMain'] [data-testid='stDataFrame']")
        grid.hover()
        page.wait_for_timeout(500)
        states = grid_download_states(page)
        assert states and set(states) == {"hidden"}, states
    finally:
        page.close()
