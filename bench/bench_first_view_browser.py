"""The first view of a page after new data, in a real browser (issue 20).

    python bench/bench_first_view_browser.py [--visits 1000000] [--repeat 3]

A second method for ``bench_perf.py --steps page`` (which runs the dashboard
under AppTest): a real ``streamlit run dashboard.py`` on a database of 99% of
the visits (models saved), driven by Debian's Chromium.  Per run, for the
product (pages warmed before and after new data is served, ``ui/warm.py``)
and its peer (``OUTCOMES_WARM_PAGES=off``), alternating:

1. a fresh server; visitors A and B sign in (on the default page,
   Overview) and move to the Audit log (a page that computes nothing);
2. the latest 1% of the visits is ingested with the command line, as a
   clinic's cron job does (the saved models are updated with it);
3. A (moved to the Audit log, which computes nothing) reruns its page
   every second until the status line shows the new data (the dashboard builds the new snapshot in the background, warms it
   and serves it): "served", seconds after the ingest's end;
4. B, a session that has not seen the new data, opens Overview from the
   sidebar: "first view", from the click until the page is drawn whole (its
   title shown, the app not running, and the main area's last change; the
   second of quiet that tells it is not counted).

Printed: each run, then medians and the ratio.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_perf import exports, split_sessions  # noqa: E402
from tests.helpers import browser  # noqa: E402

PASSWORD = "bench password 123"
QUIET = 0.3
SETTLED = 1.0


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def ingest(db_path: Path, *files: Path) -> None:
    subprocess.run([sys.executable, "-m", "analysis", "ingest", *map(str, files), "--db",
                    str(db_path)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def drawn(page, heading: str, timeout: float = 300) -> float:
    """When the page titled ``heading`` was drawn whole (monotonic): its
    title is shown, the app is not running, and nothing in the main area has
    changed for ``SETTLED`` seconds (not counted: the time of its last change
    is returned).  Reading the page, not the "Running" indicator, which a
    short run may finish before it is shown."""
    deadline = time.monotonic() + timeout
    page.wait_for_selector(f"{browser.MAIN} h1:has-text('{heading}')", timeout=timeout * 1000)
    size, changed = None, time.monotonic()
    while time.monotonic() < deadline:
        now = page.evaluate(f"document.querySelector(\"{browser.MAIN}\").innerHTML.length")
        stamp = time.monotonic()
        if now != size:
            size, changed = now, stamp
        elif (stamp - changed >= SETTLED
              and not page.query_selector("[data-testid='stStatusWidget']")):
            return changed
        time.sleep(0.02)
    raise TimeoutError(f"{heading} was never drawn whole")


def data_seen(page) -> list[str]:
    """The status line's source, cutoff and patients in view (a page's own
    setting follows them)."""
    return browser.status_line(page).split(" · ")[:3]


def one_run(base_db: Path, increment: Path, work: Path, warm: bool) -> dict:
    db_path = work / "browser.duckdb"
    for suffix in ("", ".wal"):
        Path(str(db_path) + suffix).unlink(missing_ok=True)
    shutil.copyfile(base_db, db_path)
    os.environ["OUTCOMES_WARM_PAGES"] = "on" if warm else "off"
    folder = Path(tempfile.mkdtemp(dir=work))
    with browser.dashboard_for(db_path, folder, {"bench-a": "clinical", "bench-b": "clinical"},
                               PASSWORD, timeout=180) as url, browser.chromium() as chromium:
        a = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        b = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        browser.sign_in(a, url, "bench-a", PASSWORD, close_dialogs=True)
        a.wait_for_selector(f"{browser.MAIN} >> text=data cutoff", timeout=120_000)
        browser.wait_until_idle(a, quiet=QUIET, timeout=600)
        # A waits on the Audit log (which computes nothing): its reruns must
        # not compute Overview on the new data before B opens it
        a.get_by_role("link", name="Audit log").click()
        browser.wait_until_idle(a, quiet=QUIET, timeout=600)
        browser.sign_in(b, url, "bench-b", PASSWORD, close_dialogs=True)
        b.wait_for_selector(f"{browser.MAIN} >> text=data cutoff", timeout=120_000)
        browser.wait_until_idle(b, quiet=QUIET, timeout=600)
        b.get_by_role("link", name="Audit log").click()
        browser.wait_until_idle(b, quiet=QUIET, timeout=600)
        before = data_seen(a)
        ingest(db_path, increment)
        ingested = time.monotonic()
        while True:   # A's reruns start the background build and see when it is served
            a.locator(browser.STATUS_LINE).first.click()
            a.keyboard.press("r")   # Streamlit's "rerun" key
            browser.wait_until_idle(a, quiet=QUIET, timeout=600)
            if data_seen(a) != before and not a.query_selector(
                    "text=being prepared"):
                break
            if time.monotonic() - ingested > 900:
                raise TimeoutError("the new data was never served")
            time.sleep(1.0)
        served = time.monotonic() - ingested
        clicked = time.monotonic()
        b.get_by_role("link", name="Overview").click()
        finished = drawn(b, "Program overview", timeout=600)
        assert data_seen(b) == data_seen(a), "B did not see the new data"
    shutil.rmtree(folder, ignore_errors=True)
    return {"served": served, "first_view": finished - clicked}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visits", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args(argv)
    sessions, medications = exports(args.out, args.visits)
    base_csv, increment = split_sessions(sessions, sessions.parent)
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    base_db = work / "browser_base.duckdb"
    for suffix in ("", ".wal"):
        Path(str(base_db) + suffix).unlink(missing_ok=True)
    print(f"base database (99% of {args.visits:,} visits), load {load()}", flush=True)
    ingest(base_db, base_csv, medications)
    runs: dict[str, list[dict]] = {"warm-up": [], "no warm-up": []}
    for number in range(args.repeat):
        for name, warm in (("warm-up", True), ("no warm-up", False)):
            result = one_run(base_db, increment, work, warm)
            runs[name].append(result)
            print(f"  run {number + 1} {name}: new data served {result['served']:.1f} s after "
                  f"the ingest; first view of Overview {result['first_view']:.2f} s; "
                  f"load {load()}", flush=True)
    print(f"\nsummary (medians of {args.repeat}; load now {load()})")
    medians = {name: {key: statistics.median(r[key] for r in found) for key in found[0]}
               for name, found in runs.items()}
    for name, median in medians.items():
        each = ", ".join(f"{r['first_view']:.2f}" for r in runs[name])
        print(f"  {name:11}: first view {median['first_view']:.2f} s (of {each}); "
              f"served {median['served']:.1f} s after the ingest")
    print(f"  first view, no warm-up / warm-up: "
          f"{medians['no warm-up']['first_view'] / medians['warm-up']['first_view']:.1f}x")
    for suffix in ("", ".wal"):
        Path(str(base_db) + suffix).unlink(missing_ok=True)
        Path(str(work / "browser.duckdb") + suffix).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
