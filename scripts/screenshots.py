"""Screenshots of every page, for each role that can open it, at 1600 and 1280 px.

    .venv/bin/python scripts/screenshots.py [--out DIR] [--widths 1600,1280]
        [--roles clinical,analyst,marketing] [--pages overview,conditions,...]

Starts ``streamlit run dashboard.py`` on the bundled demo clinic (no clinic
database is read: ``OUTCOMES_DB`` is cleared and the demo's own file is
used), picks each role with the demo's "View as" switch, clicks through the
pages that role's navigation offers and saves one full-height PNG per page,
role and width: ``DIR/<width>/<role>/<nn>-<page>.png`` (default DIR:
``artifacts/screenshots/pages``).  Then look at every one.

The browser also reports what it can see of cut text (``clipped.txt`` beside
the PNGs): an element whose text is wider or taller than its box while the
box hides or scrolls the rest (an ellipsis, a scroll box), error boxes, data
grids with columns past their edge or a header or on-screen cell wider than
its column (measured in the grid's font against the column edges in its
pixels: ``tests.helpers.browser.grid_findings``), and chart text (labels,
ticks, titles, legends) drawn over other chart text.  Overlaps with lines
and points, and grids' rows scrolled out of view, are what the PNGs are for.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.browser import (chart_text_findings, chromium, grid_findings,  # noqa: E402
                                    running_dashboard, wait_until_idle)
from ui.pages import PAGES, ROLES, pages_for  # noqa: E402

WIDTHS = (1600, 1280)
HEIGHT = 1000

# Elements whose text does not fit their box while the box hides or scrolls
# the rest (ellipsis, overflow hidden/clip/auto/scroll), in the page and the
# sidebar.  Canvas-drawn grids and SVG charts are outside its reach.
_CLIPPED_JS = """
() => {
  const found = [];
  const roots = document.querySelectorAll("[data-testid='stMain'], [data-testid='stSidebar']");
  for (const root of roots) {
    for (const el of root.querySelectorAll('*')) {
      if (el.closest('svg, canvas, .js-plotly-plot, [data-testid="stDataFrame"], '
                     + '[data-testid="stSidebarNav"]')) continue;   // nav: Streamlit's own
      const cs = getComputedStyle(el);
      if (cs.display === 'none' || cs.visibility === 'hidden') continue;
      const text = (el.innerText || '').trim();
      if (!text) continue;
      const hides = v => ['hidden', 'clip', 'auto', 'scroll'].includes(v);
      const wide = hides(cs.overflowX) && el.scrollWidth > el.clientWidth + 2;
      const tall = hides(cs.overflowY) && el.scrollHeight > el.clientHeight + 2
                   && el.clientHeight > 0;
      const ellipsis = cs.textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth + 1;
      if (wide || tall || ellipsis) {
        // report the innermost box only
        if ([...el.querySelectorAll('*')].some(c => found.some(f => f.el === c))) continue;
        found.push({el, kind: ellipsis ? 'ellipsis' : wide ? 'wider than its box'
                                                     : 'taller than its box',
                    text: text.replace(/\\s+/g, ' ').slice(0, 90)});
      }
    }
  }
  // the page's own scroll container is not a clip
  return found.filter(f => !['stMain', 'stSidebarContent', 'stSidebar', 'stAppViewContainer',
                             'stSidebarUserContent', 'stSidebarNav', 'stSidebarNavItems']
                             .includes(f.el.getAttribute('data-testid')))
              .map(f => {
                const id = f.el.getAttribute('data-testid');
                return `${f.kind}: ${f.el.tagName.toLowerCase()}${id ? '[' + id + ']' : ''}`
                       + ` "${f.text}"`;
              });
}
"""

# The height the page needs: the main column scrolls inside the window.
_HEIGHT_JS = """
() => Math.max(...["[data-testid='stMain']", "[data-testid='stAppViewContainer']",
                   "[data-testid='stSidebarContent']"]
        .map(s => document.querySelector(s)).filter(Boolean).map(e => e.scrollHeight),
        document.documentElement.scrollHeight)
"""


def _settle(page) -> None:
    page.wait_for_selector("[data-testid='stMain'] >> text=data cutoff", timeout=120_000)
    wait_until_idle(page, quiet=1.0, timeout=120)
    if page.query_selector(".js-plotly-plot"):
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
    time.sleep(1.0)   # data grids paint after the run


def _choose_role(page, role: str) -> None:
    box = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first
    box.click()
    page.get_by_role("option", name=role, exact=True).click()
    time.sleep(0.5)
    _settle(page)


def _open(page, spec) -> None:
    page.get_by_role("link", name=spec.title, exact=True).first.click()
    time.sleep(0.5)
    _settle(page)


def _shoot(page, path: Path, width: int) -> list[str]:
    height = max(HEIGHT, int(page.evaluate(_HEIGHT_JS)) + 40)
    page.set_viewport_size({"width": width, "height": height})
    time.sleep(1.2)   # charts and grids redraw at the new size
    wait_until_idle(page, quiet=0.5, timeout=60)
    clipped = page.evaluate(_CLIPPED_JS) + grid_findings(page)[0] + chart_text_findings(page)
    errors = [e.inner_text()[:200] for e in
              page.query_selector_all("[data-testid='stException'], "
                                      "[data-testid='stAlertContentError']")]
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": width, "height": HEIGHT})
    return clipped + [f"error box: {e}" for e in errors]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "screenshots" / "pages")
    parser.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--pages", default="", help="page file names (overview,...); all if empty")
    args = parser.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    roles = [r for r in args.roles.split(",") if r]
    wanted = {p for p in args.pages.split(",") if p}
    unknown = wanted - {Path(s.path).stem for s in PAGES}
    if unknown or not set(roles) <= set(ROLES):
        parser.error(f"unknown page or role: {sorted(unknown) or roles}")

    env = {k: v for k, v in os.environ.items() if k != "OUTCOMES_DB"}
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    report: list[str] = []
    shots = 0
    log = args.out / "server.log"
    args.out.mkdir(parents=True, exist_ok=True)
    with running_dashboard(env, log=log, timeout=180) as (base, _), chromium() as browser:
        for width in widths:
            for role in roles:
                folder = args.out / str(width) / role
                folder.mkdir(parents=True, exist_ok=True)
                context = browser.new_context(viewport={"width": width, "height": HEIGHT})
                page = context.new_page()
                try:
                    page.goto(base, wait_until="domcontentloaded", timeout=120_000)
                    _settle(page)
                    _choose_role(page, role)
                    for number, spec in enumerate(pages_for(role), start=1):
                        stem = Path(spec.path).stem
                        if wanted and stem not in wanted:
                            continue
                        _open(page, spec)
                        path = folder / f"{number:02d}-{stem}.png"
                        found = _shoot(page, path, width)
                        shots += 1
                        report += [f"{width}/{role}/{path.name}: {line}" for line in found]
                        print(f"{path.relative_to(args.out)}"
                              + (f"  ({len(found)} to look at)" if found else ""), flush=True)
                finally:
                    context.close()
    (args.out / "clipped.txt").write_text("\n".join(report) + "\n")
    print(f"{shots} screenshots under {args.out}; {len(report)} findings in clipped.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
