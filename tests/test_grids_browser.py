"""At a 1280 px window nothing is cut (issue 19), measured in Chromium.

As reported from a walk-through at 1280 px: the Data page cut the ingest log's,
the quarantine's and the value issues' columns at the grid's edge, the
Worklist cut "Days since last visit", and on Sites & providers "Boulder" was
drawn behind "Colorado Springs".  Here, in the real dashboard at 1280 x 1000:

* every grid on the Data page and on each Worklist tab has no hidden
  columns: its scroll area is no wider than what it shows;
* every header's text, measured in the grid's own font, fits the column the
  grid drew (the column edges are read from the grid's pixels: Streamlit
  draws grids on a canvas, not in the DOM), and so does the text of every
  cell on screen (the grid's accessible table), on one line or wrapped in a
  row tall enough;
* no two names on the Sites & providers funnel plot overlap (their drawn
  boxes), for sites and for providers.

On the bundled demo clinic (``data/demo``), signed in as the clinical team.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from analysis.access import auth
from tests.helpers.browser import (CHROMIUM, GRIDS_JS, chromium, grid_download_states, grid_findings,
                                   running_dashboard, wait_until_idle)

USER, PASSWORD = "grid-clinician", "grid password 123"
WIDTH = 1280

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("Debian's chromium is required in CI (scripts/test.sh installs it)")
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)

pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def bundled_demo(tmp_path_factory) -> Path:
    """The bundled demo clinic (data/demo/*.csv, what the walk-through saw),
    in a file of its own."""
    from analysis.sources import ensure_demo_db
    return ensure_demo_db(tmp_path_factory.mktemp("bundled") / "demo.duckdb")


@pytest.fixture(scope="module")
def page(bundled_demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("grids")
    users = folder / "users.toml"
    auth.add_user(users, USER, "clinical", PASSWORD)
    env = {**os.environ, "OUTCOMES_DB": str(bundled_demo), "OUTCOMES_USERS": str(users),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    with running_dashboard(env, log=folder / "server.log") as (base, _), chromium() as browser:
        tab = browser.new_page(viewport={"width": WIDTH, "height": 1000})
        tab.goto(base, wait_until="domcontentloaded", timeout=60_000)
        tab.get_by_label("User name").fill(USER)
        tab.get_by_role("textbox", name="Password").fill(PASSWORD)
        tab.get_by_role("button", name="Sign in").click()
        _settle(tab)
        yield tab
        tab.close()


def _settle(tab) -> None:
    tab.wait_for_selector("[data-testid='stMain'] >> text=data cutoff", timeout=90_000)
    wait_until_idle(tab)
    if tab.query_selector(".js-plotly-plot"):
        tab.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
    time.sleep(1.0)   # the grids paint after the run


def _open(tab, title: str) -> None:
    tab.get_by_role("link", name=title, exact=True).first.click()
    _settle(tab)


def _check_grids(tab, where: str) -> int:
    findings, checked = grid_findings(tab)
    assert checked, f"{where}: no grid drawn"
    assert not findings, f"{where}: {findings}"
    return checked


def test_data_page_grids_fit_at_1280(page):
    _open(page, "Data")
    # the quarantine, the value issues (why, and each value), the two ingest log tables
    assert _check_grids(page, "Data") >= 6


def test_worklist_grids_fit_at_1280(page):
    _open(page, "Follow-up worklist")
    checked = 0
    for tab_name in ("Follow-up due", "Missed follow-up", "Stopped in induction"):
        page.get_by_role("tab", name=tab_name).click()
        time.sleep(1.0)
        checked += _check_grids(page, f"Worklist, {tab_name}")
    assert checked == 3
    labels = [label for grid in page.evaluate(GRIDS_JS) for label in grid["labels"]]
    assert "Days since" in labels   # the column the walk-through found cut


_LABEL_BOXES_JS = """
(names) => [...document.querySelectorAll('.js-plotly-plot .annotation')]
  .filter(a => names.includes(a.textContent.trim()))
  .map(a => { const r = a.querySelector('.annotation-text-g').getBoundingClientRect();
              return {name: a.textContent.trim(), left: r.left, right: r.right,
                      top: r.top, bottom: r.bottom}; })
"""


def _overlaps(boxes: list[dict]) -> list[tuple[str, str]]:
    return [(a["name"], b["name"]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
            if a["left"] < b["right"] and b["left"] < a["right"]
            and a["top"] < b["bottom"] and b["top"] < a["bottom"]]


def test_funnel_plot_names_do_not_overlap(page, bundled_demo):
    from analysis.metrics import site_comparison
    from analysis.storage import store
    snap = store.Snapshot(bundled_demo)
    _open(page, "Sites & providers")
    for by, choice in (("site", "Sites"), ("provider", "Providers")):
        if by == "provider":
            page.get_by_text(choice, exact=True).click()
            time.sleep(0.5)
            _settle(page)
        names = list(site_comparison.compare(snap, by).groups.group)
        boxes = page.evaluate(_LABEL_BOXES_JS, names)
        assert sorted(b["name"] for b in boxes) == sorted(names), by
        assert not _overlaps(boxes), (by, _overlaps(boxes))
    snap.close()



def test_no_unmarked_csv_from_a_grid_of_the_demo(page):
    """The grids' own toolbar download writes no synthetic mark: on the demo
    it is not offered (the pages' download buttons are, and they mark)."""
    _open(page, "Follow-up worklist")
    grid = page.query_selector("[data-testid='stMain'] [data-testid='stDataFrame']")
    grid.hover()
    time.sleep(0.5)
    states = grid_download_states(page)
    assert states and set(states) == {"hidden"}, states
