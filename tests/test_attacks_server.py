"""Issue 13's attacks against the real server (``streamlit run dashboard.py``):
an anonymous visitor flipping to the demo and loading an export into the
clinic's database (Chromium), the sign-in race from parallel websocket
clients speaking the browser's protocol (as ``bench/load_test.py`` does),
and hostile site names drawn as text in Chromium (screenshots under
``artifacts/screenshots/``)."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import urllib.parse

import duckdb
import pytest

from analysis.access import audit, auth
from tests.helpers.apptest import ROOT
from tests.helpers.browser import dashboard_for, require_chromium, settle, sign_in, wait_until_idle
from tests.helpers.builders import (HOSTILE_PATIENT, HOSTILE_SITE_HTML, HOSTILE_SITE_MD,
                                    build_hostile_db)
from ui import safe

require_chromium()

PASSWORD = "server attack password"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def clinic(demo_exports, tmp_path_factory):
    """A clinic database with hostile values, its users, and its server."""
    folder = tmp_path_factory.mktemp("attacks")
    path = build_hostile_db(demo_exports, folder)
    with dashboard_for(path, folder, {"drlee": "clinical", "target": "clinical"},
                       PASSWORD) as base:
        yield path, base


def _wait_for_app(page) -> None:
    settle(page, charts=True, pause=1.0)


def _clinic_state(path) -> tuple:
    """What an ingest would change: the stored visits and the ingest log."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT (SELECT count(*) FROM ingest_log), "
                           "(SELECT sum(hash(visit_id, pain_score)) FROM visits)").fetchone()
    finally:
        con.close()


def test_anonymous_visitor_gets_no_demo_switch_and_no_upload(clinic, browser):
    """As reported: before signing in, the sidebar offered "Show the demo
    clinic instead"; flipped, with View as = clinical, the Data page loaded
    exports into the clinic's database.  Now an anonymous visitor sees the
    sign-in form and nothing else, whatever the URL."""
    path, base = clinic
    before = _clinic_state(path)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    try:
        for url in (base, base + "/data", base + "/?show_demo=true"):
            page.goto(url, wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_selector("h1:has-text('Sign in')", timeout=90_000)
            wait_until_idle(page)
            assert page.get_by_text("Show the demo clinic instead").count() == 0, url
            assert not page.query_selector("input[type=file]"), url
            assert page.get_by_role("link", name="Data").count() == 0, url
    finally:
        page.close()
    assert _clinic_state(path) == before


def test_parallel_sign_ins_to_the_server_check_only_five_passwords(clinic):
    """Twelve browser sessions (websocket clients) sign in as one user at
    once: eleven wrong passwords, then the right one while they are being
    checked.  Five passwords are checked; the right one is refused."""
    from bench.load_test import StreamlitClient, open_sign_in, submit_sign_in
    path, base = clinic

    async def attack():
        clients = [StreamlitClient(base) for _ in range(12)]
        try:
            forms = []
            for client in clients:
                await client.connect()
                forms.append((await open_sign_in(client))[1])

            async def attempt(number):
                if number == 11:
                    await asyncio.sleep(0.3)
                password = PASSWORD if number == 11 else f"wrong guess {number}"
                return (await submit_sign_in(clients[number], forms[number], "target",
                                             password))[1]
            return await asyncio.gather(*(attempt(n) for n in range(12)))
        finally:
            for client in clients:
                await client.close()

    runs: list = []   # in a thread of its own: Playwright's loop runs in this one
    worker = threading.Thread(target=lambda: runs.extend(asyncio.run(attack())))
    worker.start()
    worker.join(timeout=300)
    right = runs[11]
    assert "Sign in" in right.headings(), "the right password got in after eleven failures"
    assert any("locked" in e for e in right.errors())
    rows = audit.read(path, user="target")
    assert (rows["action"] == "sign_in_failed").sum() == auth.MAX_FAILURES
    assert (rows["action"] == "locked_out").sum() == 12 - auth.MAX_FAILURES
    assert "sign_in" not in set(rows["action"])
    assert audit.verify(path).intact


def _signed_in_page(browser, base: str, query: str = ""):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    sign_in(page, base + query, "drlee", PASSWORD)
    _wait_for_app(page)
    return page


def _assert_no_markup_from_the_data(page, where: str) -> None:
    hostile = page.query_selector_all(
        "img[src*='attacker'], a[href*='attacker'], image[href*='attacker']")
    assert not hostile, f"{where}: {[h.evaluate('e => e.outerHTML') for h in hostile]}"


@pytest.mark.parametrize("page_title,shows", [
    # Safety counts adverse events by category (issue 14): the hostile text is
    # "other" in its chart, never drawn (clinicians read it in a table).
    ("Overview", HOSTILE_SITE_MD), ("Safety", "other"), ("Quarterly report", "Boulder</a>"),
    ("Data", HOSTILE_SITE_MD), ("Patient timeline", HOSTILE_PATIENT)])
def test_hostile_values_are_drawn_as_text_in_chromium(clinic, browser, page_title, shows):
    path, base = clinic
    sites = [HOSTILE_SITE_MD, HOSTILE_SITE_HTML, "Denver"]
    query = "?" + urllib.parse.urlencode({"site": sites}, doseq=True)
    if page_title == "Patient timeline":
        query = "?" + urllib.parse.urlencode({"patient": HOSTILE_PATIENT})
    page = _signed_in_page(browser, base, query)
    try:
        if page_title != "Overview":
            page.get_by_role("link", name=page_title).first.click()
            page.wait_for_timeout(500)
            _wait_for_app(page)
        if page_title == "Data":   # the quarantine, far down the page
            page.get_by_text("Rows set aside at ingest").first.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = "hostile_" + page_title.lower().replace(" ", "_") + ".png"
        page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
        _assert_no_markup_from_the_data(page, page_title)
        text = page.inner_text("[data-testid='stMain']").replace(safe.WORD_JOINER, "")
        assert not page.query_selector("[data-testid='stException']"), text[:2000]
        if page_title in ("Overview", "Data", "Patient timeline"):
            assert shows in text, f"{page_title}: {shows!r} not shown as written"
        else:   # drawn in a chart: its SVG text says it as written
            svg = " ".join(page.locator(".js-plotly-plot text").all_text_contents())
            assert shows in svg, svg[:2000]
            if page_title == "Safety":
                assert "attacker" not in svg and "nausea</a>" not in svg, svg[:2000]
    finally:
        page.close()


def test_server_writes_the_audit_log_mode_600(clinic, browser):
    path, base = clinic
    _signed_in_page(browser, base).close()
    assert stat.S_IMODE(os.stat(audit.audit_path(path)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(audit.head_path(path)).st_mode) == 0o600
