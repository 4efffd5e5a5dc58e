"""Issue 14, the external audience in the real dashboard (headless Chromium;
``dashboard.py`` draws the status line and the sidebar, which AppTest does
not rerun).

As reported: the status line told marketing "3 treated patients and 39
visits in view" on every page, and its sidebar offered the site, condition,
route and cohort filters, so two filter states differing by a 3-patient
site gave that site's counts away.  Now marketing sees the whole program's
fixed tables: a status line without counts, a sidebar without a control
that changes one, whatever the URL asks for; and a page of the clinical
team's, opened by its address, shows nothing of it.  Screenshots under
``artifacts/screenshots/external-*.png``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.helpers.apptest import ROOT
from tests.helpers.browser import (dashboard_for, require_chromium, settle, sidebar_labels,
                                   sign_in, status_line)
from ui import pages

require_chromium()

PASSWORD = "external view password"
USERS = {"clinical": "ext-drlee", "analyst": "ext-ana", "marketing": "ext-mark"}
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# Every shared control the sidebar can draw (ui/sidebar.py).
CONTROL_LABELS = ("Sites", "Conditions", "Routes", "Cohort", "Timepoint",
                  "Responder definition", "Population", "Confidence interval")
# A view marketing must not be able to pick: a small site, another timepoint.
HOSTILE_QUERY = "?site=Boulder&condition=Lupus&tp=6m&def=pain50&pop=completers"


@pytest.fixture(scope="module")
def server(demo_db, tmp_path_factory):
    folder = tmp_path_factory.mktemp("external_view")
    with dashboard_for(demo_db, folder, {name: role for role, name in USERS.items()},
                       PASSWORD) as base:
        yield base


def _sign_in(page, url: str, role: str) -> None:
    sign_in(page, url, USERS[role], PASSWORD, close_dialogs=True)
    settle(page)


def _counts(status: str) -> list[int]:
    """The numbers in a status line, the data cutoff's date and the
    threshold's own "11" left out."""
    without_date = re.sub(r"data cutoff [^·]*", "", status)
    return [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", without_date)
            if n != str(11)]


def test_marketing_status_line_and_sidebar_show_no_count_and_no_filter(server, browser):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        _sign_in(page, server + "/" + HOSTILE_QUERY, "marketing")
        for spec in pages.pages_for("marketing"):
            page.get_by_role("link", name=spec.title).first.click()
            time.sleep(0.5)
            settle(page)
            status = status_line(page)
            assert "whole program" in status, status
            assert _counts(status) == [], status
            assert "treated patients" not in status and "visits" not in status, status
            assert "Boulder" not in status and "6 months" not in status, status
            labels = " ".join(sidebar_labels(page))
            assert not [c for c in CONTROL_LABELS if c in labels], (spec.title, labels)
            # the URL's filters were not applied (nor written back)
            assert "site=" not in page.url and "tp=" not in page.url, page.url
            page.screenshot(path=str(SCREENSHOTS / f"external-{Path(spec.path).stem}.png"),
                            full_page=True)
    finally:
        page.close()


def test_internal_status_line_still_counts_what_is_in_view(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        _sign_in(page, server + "/?site=Denver", "analyst")
        status = status_line(page)
        assert "treated patients" in status and "sites: Denver" in status, status
        assert _counts(status), status
        assert "Sites" in " ".join(sidebar_labels(page))
    finally:
        page.close()


@pytest.mark.parametrize("spec", [s for s in pages.PAGES if "marketing" not in s.roles],
                         ids=lambda s: Path(s.path).stem)
def test_marketing_opening_a_clinical_page_by_its_address_sees_none_of_it(server, browser,
                                                                           spec):
    """The attack: a marketing user types each internal page's address.
    The sign-in form answers on every address; after it the navigation has
    no such page, so Streamlit says so, and nothing of the page is drawn."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        _sign_in(page, f"{server}/{Path(spec.path).stem}", "marketing")
        titles = page.locator("[data-testid='stMain'] h1").all_inner_texts()
        # the navigation has no such page: marketing lands on its first page
        assert titles and titles[0].startswith("Claim check"), titles
        assert "whole program" in status_line(page)
        nav = page.locator("[data-testid='stSidebarNav']").inner_text()
        assert spec.title not in nav and "Claim check" in nav
        assert not page.query_selector("[data-testid='stException']")
    finally:
        page.close()
