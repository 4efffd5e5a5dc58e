"""A real ``streamlit run dashboard.py`` on a free loopback port, and the
Chromium that drives it: starting both, signing in, waiting for a page to
settle and reading what ``dashboard.py`` draws (the status line, the
sidebar).  Shared by every Chromium test, the load test and the screenshot
script."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]


@contextlib.contextmanager
def chromium() -> Iterator:
    """Debian's Chromium, headless, through Playwright (its sync API)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def require_chromium() -> None:
    """Skip the calling test module where Debian's Chromium or Playwright is
    missing (fail in CI, which installs them)."""
    import pytest
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            raise RuntimeError("Debian's chromium is required in CI (scripts/test.sh installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)",
                    allow_module_level=True)
    pytest.importorskip("playwright.sync_api")


def wait_until_idle(page, quiet: float = 1.0, timeout: float = 90) -> None:
    """Wait until the app has not been running (no "Running" status) for
    ``quiet`` seconds."""
    deadline = time.time() + timeout
    quiet_since = None
    while time.time() < deadline:
        if page.query_selector("[data-testid='stStatusWidget']"):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.time()
        elif time.time() - quiet_since > quiet:
            return
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_dashboard(env: Mapping[str, str], log: Path | None = None,
                      extra_args: Sequence[str] = (), timeout: float = 90
                      ) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start the dashboard, wait until it answers its health check, yield
    its base URL and process, and stop it afterwards.  The server's output
    goes to ``log`` (quoted if it does not start) or nowhere."""
    port = free_port()
    output = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"),
         "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", *extra_args],
        cwd=ROOT, env=dict(env), stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                said = log.read_text() if log else "(no log kept)"
                raise RuntimeError(f"streamlit did not start:\n{said}")
            time.sleep(0.5)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        if log:
            output.close()


@contextlib.contextmanager
def dashboard_for(db_path: Path, folder: Path, users: Mapping[str, str], password: str,
                  timeout: float = 90) -> Iterator[str]:
    """The dashboard on the clinic database ``db_path`` with ``users`` (name:
    role, one password), its users file and server log in ``folder``; yields
    its base URL."""
    from analysis.access import auth
    users_file = folder / "users.toml"
    for name, role in users.items():
        auth.add_user(users_file, name, role, password)
    env = {**os.environ, "OUTCOMES_DB": str(db_path), "OUTCOMES_USERS": str(users_file),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    with running_dashboard(env, log=folder / "server.log", timeout=timeout) as (base, _):
        yield base


# --------------------------------------------------------------------------
# driving a page

#: The dashboard's clinician in the Chromium tests of the demo clinic
#: (conftest's ``dashboard`` fixture): user name and password.
CLINICIAN = ("e2e-clinician", "e2e password 123")

MAIN = "[data-testid='stMain']"
STATUS_LINE = "[data-testid='stMain'] [data-testid='stCaptionContainer']"


def settle(page, *, charts: bool = False, pause: float = 0.8) -> None:
    """Wait until a page of the dashboard has run: its status line ("...
    data cutoff ...") is there and the app no longer shows "Running"; with
    ``charts``, until its Plotly charts are drawn (a chart is an empty grey
    placeholder before); then ``pause`` seconds for the grids to paint."""
    page.wait_for_selector(f"{MAIN} >> text=data cutoff", timeout=90_000)
    wait_until_idle(page)
    if charts and page.query_selector(".js-plotly-plot"):
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
    time.sleep(pause)


def close_dialog(page) -> None:
    """A fresh server sometimes answers a page's address with Streamlit's
    "Page not found" dialog over the sign-in form (its multipage mode before
    the first navigation; ui/direct_page_links.py): close it, as a user would."""
    for _ in range(3):
        dialog = page.locator("[role='dialog']")
        if not dialog.count() or not dialog.first.is_visible():
            return
        page.keyboard.press("Escape")
        time.sleep(0.5)


def sign_in(page, url: str | None, user: str, password: str, *,
            close_dialogs: bool = False) -> None:
    """Open ``url`` (None: stay on the page), fill the sign-in form and send
    it; the caller waits for the page (:func:`settle`)."""
    if url is not None:
        page.goto(url, wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_selector("h1:has-text('Sign in')", timeout=60_000)
    wait_until_idle(page)
    if close_dialogs:
        close_dialog(page)
    page.get_by_label("User name").fill(user)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def status_line(page) -> str:
    """The status line dashboard.py draws on every page."""
    return page.locator(STATUS_LINE).first.inner_text()


def sidebar_labels(page) -> list[str]:
    """The labels of the widgets in the sidebar."""
    return page.locator("[data-testid='stSidebar'] [data-testid='stWidgetLabel']") \
        .all_inner_texts()


# --------------------------------------------------------------------------
# what a page cuts or overlaps, measured in the browser (issue 19): used by
# tests/test_grids_browser.py and scripts/screenshots.py

# Each visible grid: its scroll widths, its header labels and the text of the
# cells on screen (the grid's accessible table), measured in the grid's fonts
# (Streamlit's theme sets the grid's CSS variables).
GRIDS_JS = """
() => [...document.querySelectorAll("[data-testid='stMain'] [data-testid='stDataFrame']")]
  .filter(g => g.offsetParent !== null && g.querySelector('.dvn-scroller'))   // drawn
  .map(g => {
    const scroller = g.querySelector('.dvn-scroller');
    const style = getComputedStyle(g.querySelector('.stDataFrameGlideDataEditor'));
    const family = ' ' + style.getPropertyValue('--gdg-font-family').trim();
    const ctx = document.createElement('canvas').getContext('2d');
    ctx.font = style.getPropertyValue('--gdg-header-font-style').trim() + family;
    const labels = [...g.querySelectorAll('th[role=columnheader]')].map(th => th.textContent);
    const headerWidths = labels.map(l => ctx.measureText(l).width);
    ctx.font = style.getPropertyValue('--gdg-base-font-style').trim() + family;
    const cells = [...g.querySelectorAll('tbody tr[role=row]')].map(
        tr => [...tr.querySelectorAll('td')].map(td => ({
          text: td.textContent, width: ctx.measureText(td.textContent).width})));
    // a body row's height: the canvas below the header over the rows drawn
    // (the accessible table holds the rows on screen, perhaps one more)
    const canvas = g.querySelector('canvas');
    const rowHeight = cells.length ? (canvas.clientHeight - 36) / cells.length : 35;
    return {scrollWidth: scroller.scrollWidth, clientWidth: scroller.clientWidth,
            labels, textWidths: headerWidths, cells, rowHeight,
            padding: parseFloat(style.getPropertyValue('--gdg-cell-horizontal-padding'))};
  })
"""


def _image(png: bytes):
    import io

    from PIL import Image
    return Image.open(io.BytesIO(png)).convert("RGB")


def _differs(a, b) -> bool:
    return sum(abs(x - y) for x, y in zip(a, b)) > 24


def _row_height(image) -> int:
    """A body row's height: the distance between the first two horizontal
    lines below the header, read down the first column's left padding
    (where no text is drawn)."""
    background = image.getpixel((3, image.height - 2))

    def differs(y: int) -> bool:
        return _differs(image.getpixel((3, y)), background)

    # thin lines only (the header's fill is many pixels tall)
    lines = [y for y in range(3, image.height - 3)
             if differs(y) and not differs(y - 2) and not differs(y + 2)]
    lines = [y for i, y in enumerate(lines) if not i or y - lines[i - 1] > 3]
    return lines[1] - lines[0] if len(lines) > 1 else 35


def _column_edges(image) -> list[int]:
    """The x of each vertical line in the grid's header (the column edges),
    along a pixel row near its top, where no header text is drawn."""
    background = image.getpixel((image.width // 2, 1))
    edges: list[int] = []
    for x in range(1, image.width - 1):
        colour = image.getpixel((x, 4))
        if _differs(colour, background) and \
                all(image.getpixel((x, y)) == colour for y in (8, 12)):
            if not edges or x - edges[-1] > 3:
                edges.append(x)
    return [0, *edges, image.width]


def grid_findings(page) -> tuple[list[str], int]:
    """What the page's visible grids cut: columns past the right edge, a
    header or an on-screen cell wider than its column (on one line, or in
    the lines of a taller row: Streamlit wraps from 4rem, ~20 px a line).
    The column edges are read from the grid's pixels (it is a canvas).
    Returns the findings and the number of grids checked."""
    grids = page.evaluate(GRIDS_JS)
    elements = [g for g in page.query_selector_all(
        "[data-testid='stMain'] [data-testid='stDataFrame']")
        if g.evaluate("g => g.offsetParent !== null && !!g.querySelector('.dvn-scroller')")]
    found = []
    for number, (grid, element) in enumerate(zip(grids, elements), start=1):
        name = f"grid {number} ({', '.join(grid['labels'])[:80]})"
        if grid["scrollWidth"] > grid["clientWidth"] + 1:
            found.append(f"{name}: {grid['scrollWidth']} px of columns in "
                         f"{grid['clientWidth']} px")
            continue
        image = _image(element.query_selector("[data-testid='data-grid-canvas']").screenshot())
        edges = _column_edges(image)
        widths = [b - a for a, b in zip(edges, edges[1:])]
        if len(widths) != len(grid["labels"]):
            found.append(f"{name}: {len(widths)} column edges for {len(grid['labels'])} "
                         f"headers")
            continue
        padding = 2 * grid["padding"]
        for label, text, width in zip(grid["labels"], grid["textWidths"], widths):
            if text + padding > width + 1:
                found.append(f"{name}: header {label!r} needs {text + padding:.0f} px, "
                             f"has {width}")
        height = max(_row_height(image), grid["rowHeight"])
        lines = max(1, (height - 6) // 20) if height >= 64 else 1
        for row in grid["cells"]:
            for label, cell, width in zip(grid["labels"], row, widths):
                room = (width - padding) * lines * (0.85 if lines > 1 else 1)
                if cell["width"] > room + 1:
                    found.append(f"{name}: {label!r} cell {cell['text'][:40]!r} needs "
                                 f"{cell['width']:.0f} px, has {room:.0f}")
    return found, len(grids)


# Text drawn in charts (titles, axis ticks and titles, legends, annotations)
# whose boxes overlap: one piece of text over another.
CHART_TEXT_JS = r"""
() => {
  const found = [];
  document.querySelectorAll("[data-testid='stMain'] .js-plotly-plot").forEach((plot, n) => {
    const boxes = [...plot.querySelectorAll('text')]
      .filter(t => t.textContent.trim() && getComputedStyle(t).display !== 'none'
                   && t.getAttribute('visibility') !== 'hidden'
                   // a rotated label's box is not its outline: look at the PNG
                   && !/rotate\((?!0[,)])/.test(t.getAttribute('transform') || ''))
      .map(t => { const r = t.getBoundingClientRect();
                  return {text: t.textContent.trim(), l: r.left + 1, r: r.right - 1,
                          t: r.top + 1, b: r.bottom - 1}; })
      .filter(b => b.r > b.l && b.b > b.t);
    for (let i = 0; i < boxes.length; i++)
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i], c = boxes[j];
        if (a.l < c.r && c.l < a.r && a.t < c.b && c.t < a.b)
          found.push(`chart ${n + 1}: "${a.text.slice(0, 40)}" overlaps "${c.text.slice(0, 40)}"`);
      }
  });
  return found;
}
"""


def chart_text_findings(page) -> list[str]:
    return page.evaluate(CHART_TEXT_JS)


_GRID_DOWNLOADS_JS = """
() => [...document.querySelectorAll("[data-testid='stMain'] button[aria-label='Download as CSV']")]
  .map(b => { let e = b; while (e && e !== document.body) {
                if (getComputedStyle(e).display === 'none') return 'hidden';
                e = e.parentElement; }
              return 'shown'; })
"""


def grid_download_states(page) -> list[str]:
    """'shown' or 'hidden' for each data grid's own "Download as CSV" button
    on the page (drawn in a grid's toolbar once the grid is hovered)."""
    return page.evaluate(_GRID_DOWNLOADS_JS)
