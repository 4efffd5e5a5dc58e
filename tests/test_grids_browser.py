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

import io
import os
import time
from pathlib import Path

import pytest

from analysis import auth
from tests.dashboard_server import CHROMIUM, chromium, running_dashboard, wait_until_idle

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


# Each visible grid: its scroll widths, its header labels, and the header
# font (Streamlit's theme sets the grid's CSS variables).
_GRIDS_JS = """
() => [...document.querySelectorAll("[data-testid='stMain'] [data-testid='stDataFrame']")]
  .filter(g => g.offsetParent !== null)
  .map(g => {
    const scroller = g.querySelector('.dvn-scroller');
    const style = getComputedStyle(g.querySelector('.stDataFrameGlideDataEditor'));
    const font = style.getPropertyValue('--gdg-header-font-style').trim() + ' '
                 + style.getPropertyValue('--gdg-font-family').trim();
    const ctx = document.createElement('canvas').getContext('2d');
    ctx.font = font;
    const labels = [...g.querySelectorAll('th[role=columnheader]')].map(th => th.textContent);
    const headerWidths = labels.map(l => ctx.measureText(l).width);
    // the cells of the rows on screen (the grid's accessible table), in the cells' font
    ctx.font = style.getPropertyValue('--gdg-base-font-style').trim() + ' '
               + style.getPropertyValue('--gdg-font-family').trim();
    const cells = [...g.querySelectorAll('tbody tr[role=row]')].map(
        tr => [...tr.querySelectorAll('td')].map(td => ({
          text: td.textContent, width: ctx.measureText(td.textContent).width})));
    return {scrollWidth: scroller.scrollWidth, clientWidth: scroller.clientWidth, font,
            labels, textWidths: headerWidths, cells,
            padding: parseFloat(style.getPropertyValue('--gdg-cell-horizontal-padding'))};
  })
"""


def _image(png: bytes):
    from PIL import Image
    return Image.open(io.BytesIO(png)).convert("RGB")


def _row_height(image) -> int:
    """The height of a body row: the distance between the first two
    horizontal lines below the header, read down the first column's left
    padding (where no text is drawn)."""
    x, background = 3, image.getpixel((3, image.height - 2))
    lines = []
    for y in range(1, image.height - 1):
        if sum(abs(a - b) for a, b in zip(image.getpixel((x, y)), background)) > 24 and \
                (not lines or y - lines[-1] > 3):
            lines.append(y)
    # the header's bottom line, then the rows' (the header's own fill is skipped)
    lines = [y for y in lines if y > 20]
    return lines[1] - lines[0] if len(lines) > 1 else 35


def _column_edges(image) -> list[int]:
    """The x of each vertical line in the grid's header (the column edges),
    read along a pixel row near its top, where no header text is drawn."""
    width = image.width
    y = 4
    background = image.getpixel((width // 2, 1))
    edges = []
    for x in range(1, width - 1):
        colour = image.getpixel((x, y))
        if sum(abs(a - b) for a, b in zip(colour, background)) > 24 and \
                all(image.getpixel((x, yy)) == colour for yy in (y + 4, y + 8)):
            if not edges or x - edges[-1] > 3:
                edges.append(x)
    return [0, *edges, width]


def _check_grids(tab, where: str) -> int:
    grids = tab.evaluate(_GRIDS_JS)
    assert grids, f"{where}: no grid drawn"
    elements = [g for g in tab.query_selector_all(
        "[data-testid='stMain'] [data-testid='stDataFrame']") if g.is_visible()]
    for number, (grid, element) in enumerate(zip(grids, elements), start=1):
        name = f"{where}, grid {number} ({', '.join(grid['labels'])})"
        # every column on screen: nothing hidden past the right edge
        assert grid["scrollWidth"] <= grid["clientWidth"] + 1, \
            f"{name}: {grid['scrollWidth']} px of columns in {grid['clientWidth']} px"
        image = _image(element.query_selector("[data-testid='data-grid-canvas']").screenshot())
        edges = _column_edges(image)
        widths = [b - a for a, b in zip(edges, edges[1:])]
        assert len(widths) == len(grid["labels"]), (name, edges)
        padding = 2 * grid["padding"]
        for label, text, width in zip(grid["labels"], grid["textWidths"], widths):
            assert text + padding <= width + 1, \
                f"{name}: header {label!r} needs {text + padding:.0f} px, has {width}"
        # the rows on screen: each cell's text on one line, or wrapped in a
        # row tall enough for it (Streamlit wraps from 4rem; lines of ~20 px)
        lines = max(1, (_row_height(image) - 6) // 20) if _row_height(image) >= 64 else 1
        for row in grid["cells"]:
            for label, cell, width in zip(grid["labels"], row, widths):
                room = (width - padding) * lines * (0.85 if lines > 1 else 1)
                assert cell["width"] <= room + 1, \
                    f"{name}: {label!r} cell of {cell['width']:.0f} px in {room:.0f} px"
    return len(grids)


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
    labels = [label for grid in page.evaluate(_GRIDS_JS) for label in grid["labels"]]
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
    from analysis import site_comparison, store
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
