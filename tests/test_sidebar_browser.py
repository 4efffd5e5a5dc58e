"""Filters that stick (issue 19), in the real dashboard in headless Chromium.

The cohort slider used to snap back to the full range on release (mouse and
keyboard alike): Streamlit read the dragged range back as one quarter,
because the slider's range came from code-assigned state instead of its
``value``, and the sidebar's repair step then reset it (``ui/sidebar.py``).
Here the range is changed with the keyboard and the mouse, the user moves
through three pages (one without the slider on the way) and reloads, and the
range holds; a link copied from the address bar opens the same view in a new
session; and each page's sidebar has only the controls that change it.
Screenshots under ``artifacts/screenshots/filters-*.png``.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from analysis.storage import db, store
from analysis.metrics import outcomes
from analysis.core.filters import quarter_bounds
from tests.helpers.apptest import ROOT
from tests.helpers.browser import (CLINICIAN, require_chromium, running_dashboard, settle,
                                   sidebar_labels, sign_in, status_line, wait_until_idle)

require_chromium()

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
SLIDER = "[data-testid='stSidebar'] input[type='range']"


@pytest.fixture(scope="module")
def quarters(demo_db) -> list[str]:
    snap = store.Snapshot(demo_db)
    try:
        return outcomes.filter_options(snap).quarters
    finally:
        snap.close()


def _sign_in(page, url: str | None = None) -> None:
    """Clinic data: each new session signs in (a reload is a new session)."""
    if url is not None:
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_selector("h1:has-text('Sign in')", timeout=60_000)
    wait_until_idle(page)
    assert "Page not found" not in page.inner_text("body")
    sign_in(page, None, *CLINICIAN)
    settle(page)
    # Under load the sidebar's controls can arrive after the status line (the
    # full suite read an empty range right after signing in): wait for them.
    page.wait_for_selector(SLIDER, timeout=60_000)
    settle(page)


def _range(page) -> list[str]:
    thumbs = page.locator(SLIDER)
    return [thumbs.nth(i).get_attribute("aria-valuetext") for i in range(thumbs.count())]


def _go(page, title: str) -> None:
    page.get_by_role("link", name=title).first.click()
    time.sleep(0.5)
    settle(page)


def _cohort_text(quarters: list[str], first: str, last: str) -> str:
    start = quarter_bounds(first)[0]
    end = quarter_bounds(last)[1]
    return f"first infusion {start} to {end}"


def test_the_cohort_range_holds_through_pages_and_a_reload(dashboard, browser, quarters):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    try:
        _sign_in(page, dashboard)
        assert _range(page) == [quarters[0], quarters[-1]]
        # the keyboard: the start two quarters later
        start = page.locator(SLIDER).nth(0)
        start.focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        settle(page)
        # the mouse: drag the end a step back
        end = page.locator(SLIDER).nth(1).locator("xpath=../..")
        box = end.bounding_box()
        track = page.locator("[data-testid='stSidebar'] [data-testid='stSlider']").bounding_box()
        step = track["width"] / (len(quarters) - 1)
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 - step, box["y"] + box["height"] / 2,
                        steps=8)
        page.mouse.up()
        settle(page)
        chosen = [quarters[2], quarters[-2]]
        assert _range(page) == chosen, "the slider snapped back on release"
        wanted = _cohort_text(quarters, *chosen)
        assert wanted in status_line(page)
        assert f"from={chosen[0]}" in page.url and f"to={chosen[1]}" in page.url
        page.screenshot(path=str(SCREENSHOTS / "filters-1-range-set.png"))

        # three pages with the slider, and one without it on the way
        for number, title in enumerate(("Conditions", "Quarterly report", "Pain over time",
                                        "Patient flow"), start=2):
            _go(page, title)
            if title == "Quarterly report":   # the report sets its own periods
                assert _range(page) == [] and "first infusion" not in status_line(page)
            else:
                assert _range(page) == chosen, f"the range was lost on {title}"
                assert wanted in status_line(page), title
            page.screenshot(path=str(SCREENSHOTS / f"filters-{number}-{title.split()[0]}.png"))

        page.reload(wait_until="domcontentloaded")   # a new session: sign in again
        _sign_in(page)
        assert page.url.split("?")[0].endswith("/patient_flow")
        assert _range(page) == chosen, "the range was lost on reload"
        assert wanted in status_line(page)
        page.screenshot(path=str(SCREENSHOTS / "filters-6-after-reload.png"))
    finally:
        page.close()


def test_a_shared_link_opens_the_same_view(dashboard, browser, quarters):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    try:
        _sign_in(page, dashboard)
        _go(page, "Conditions")
        sites = page.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']").first
        # Open the list and type, then choose the option once the list has
        # drawn it (Enter pressed before that chose nothing).
        sites.scroll_into_view_if_needed()
        sites.click()
        page.keyboard.type("Denver")
        option = page.get_by_role("option", name="Denver")
        option.wait_for(state="visible", timeout=30_000)
        option.click()
        page.keyboard.press("Escape")
        settle(page)
        assert "Denver" in sites.inner_text()
        page.locator(SLIDER).nth(1).focus()
        page.keyboard.press("ArrowLeft")
        settle(page)
        timepoint = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first
        timepoint.click()
        page.get_by_role("option", name="6 months").click()
        settle(page)
        link = page.url
        assert re.search(r"site=Denver", link) and "tp=6m" in link and "to=" in link, link
        status = status_line(page)
        table = page.locator("[data-testid='stMain'] h1").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "filters-7-link-copied.png"))
    finally:
        page.close()

    # Someone else opens the link: a new browser context, a new session.
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    other = context.new_page()
    try:
        _sign_in(other, link)
        assert other.url.split("?")[0].endswith("/conditions")
        assert status_line(other) == status
        assert other.locator("[data-testid='stMain'] h1").inner_text() == table
        assert _range(other) == [quarters[0], quarters[-2]]
        labels = " ".join(sidebar_labels(other))
        assert "Sites" in labels
        assert other.locator("[data-testid='stSidebar'] [data-testid='stMultiSelect']").first \
            .inner_text().count("Denver") == 1
        assert "at 6 months" in status_line(other)
        shown = other.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first
        assert "6 months" in (shown.inner_text() + " " + (shown.locator("input").first
                                                           .get_attribute("value") or ""))
        other.screenshot(path=str(SCREENSHOTS / "filters-8-link-opened.png"))
    finally:
        context.close()


def test_the_sidebar_has_only_the_controls_that_act(dashboard, browser):
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    try:
        _sign_in(page, dashboard + "/?tp=6m&def=pain50")
        everything = " ".join(sidebar_labels(page))
        for label in ("Sites", "Cohort", "Timepoint", "Responder definition", "Population",
                      "Confidence interval"):
            assert label in everything
        _go(page, "Claim check")   # its own reading: no outcome settings, no pain50 named
        labels = " ".join(sidebar_labels(page))
        assert "Sites" in labels and "Cohort" in labels
        assert not any(word in labels for word in ("Timepoint", "Responder definition",
                                                   "Population", "Confidence interval"))
        assert "pain50" not in status_line(page) and "6 months" not in status_line(page)
        _go(page, "Durability")
        labels = " ".join(sidebar_labels(page))
        assert "Cohort" in labels and "Timepoint" not in labels
        _go(page, "Overview")   # the settings were kept for the pages that use them
        assert "pain50" in status_line(page) and "6 months" in status_line(page)
        _go(page, "Audit log")
        assert sidebar_labels(page) == [] or "Sites" not in " ".join(sidebar_labels(page))
    finally:
        page.close()


def test_the_first_click_on_a_sessions_own_controls_counts(dashboard, browser):
    """The sidebar's session controls were drawn before ``st.navigation``,
    and Streamlit gave them another identity once the browser named its
    page: the first change after a page load was dropped (the demo's "View
    as" showed the clinical view again, the demo switch stayed off, the first
    "Sign out" did nothing).  Each now acts on its first click."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    try:
        _sign_in(page, dashboard)
        assert "Demo clinic" not in page.inner_text("[data-testid='stMain']")
        page.get_by_text("Show the demo clinic instead").click()
        settle(page)
        assert "Demo clinic: synthetic data" in page.inner_text("[data-testid='stMain']")
        page.reload(wait_until="domcontentloaded")
        _sign_in(page)
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_selector("h1:has-text('Sign in')", timeout=30_000)
    finally:
        page.close()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """The dashboard as ``scripts/dashboard.sh`` opens it with no clinic
    database: the demo clinic, nobody signs in, "View as" picks the role."""
    if db.DEFAULT_DB.exists():
        pytest.skip("a clinic database exists here; the dashboard would open it, not the demo")
    env = {k: v for k, v in os.environ.items() if k != "OUTCOMES_DB"}
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    log = tmp_path_factory.mktemp("demo_server") / "server.log"
    with running_dashboard(env, log=log, timeout=180) as (base, _):
        yield base


def test_view_as_acts_on_its_first_change(demo_server, browser):
    """As found taking the role screenshots: on the demo, choosing "View as:
    marketing" right after the page loaded showed the clinical view again
    (the switch was drawn before ``st.navigation``)."""
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    try:
        page.goto(demo_server, wait_until="domcontentloaded", timeout=120_000)
        settle(page)
        nav = "[data-testid='stSidebarNav']"
        assert "Overview" in page.inner_text(nav)
        page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
        page.get_by_role("option", name="marketing", exact=True).click()
        settle(page)
        links = page.inner_text(nav)
        assert "Claim check" in links and "Overview" not in links, links
        assert page.locator("[data-testid='stMain'] h1").first.inner_text() == "Claim check"
        page.screenshot(path=str(SCREENSHOTS / "filters-9-demo-view-as-marketing.png"))
        # marketing's pages (issue 14: the external audience sees fixed tables):
        # no control that changes a count or a setting, and a status line with
        # no count, on arrival and on each of its pages opened from the
        # navigation (at "/": the address once named no page, and every
        # control was drawn)
        filters = ("Sites", "Conditions", "Routes", "Cohort", "Timepoint",
                   "Responder definition", "Population", "Confidence interval")
        for step in ("arrived", "Quarterly report", "Claim check", "Sites & providers"):
            if step != "arrived":
                _go(page, step)
            labels = " ".join(sidebar_labels(page))
            assert not any(word in labels for word in filters), (step, labels)
            status = status_line(page)
            assert "whole program" in status and "pain30" not in status, (step, status)
            assert not re.search(r"\d+ (treated )?patients|\d+ visits", status), (step, status)
        page.screenshot(path=str(SCREENSHOTS / "filters-10-demo-marketing-sites.png"))
    finally:
        page.close()
