"""Load test: concurrent headless-Chromium users clicking through the
dashboard while an ingest writes to the same database.  Loopback only,
bounded in sessions, pages and time; stops by itself.

    python bench/load_test.py [--sessions 20] [--rounds 2] [--patients 2000] [--time-limit 600]

Reports p50/p95/max page-load time (click to page drawn and idle) and every
error seen.  Target on a 2-core machine: p95 < 3 s with 20 sessions, no errors.
Needs Debian's chromium (/usr/bin/chromium) and the playwright package.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analysis import auth, db, ingest  # noqa: E402
from analysis.demo import generate_demo  # noqa: E402
from ui.pages import PAGES as PAGE_SPECS  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
PAGES = ["Conditions", "Pain over time", "Opioid tapering", "Patient flow", "Claim check",
         "Overview"]
PASSWORD = "load-test-password"
RAMP_UP = 0.5  # seconds between two users' arrivals


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_idle(page, timeout: float = 60.0) -> None:
    """Drawn and idle: the status line is there and nothing runs for 0.3 s."""
    await page.wait_for_selector("[data-testid='stMain'] >> text=data cutoff",
                                 timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    quiet_since = None
    while time.monotonic() < deadline:
        running = await page.query_selector("[data-testid='stStatusWidget']")
        if running:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 0.3:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("page did not become idle")


async def user_session(browser, base: str, number: int, rounds: int, loads: list, errors: list):
    await asyncio.sleep(number * RAMP_UP)  # users arrive over a few seconds, not at once
    context = await browser.new_context(viewport={"width": 1366, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(60_000)
    try:
        await page.goto(base, wait_until="domcontentloaded", timeout=60_000)
        await page.get_by_label("User name").fill(f"user{number}")
        await page.get_by_role("textbox", name="Password").fill(PASSWORD)
        start = time.monotonic()
        await page.get_by_role("button", name="Sign in").click()
        await wait_idle(page)
        loads.append(("Overview (sign-in)", time.monotonic() - start))
        for _ in range(rounds):
            for title in PAGES:
                start = time.monotonic()
                spec = next(s for s in PAGE_SPECS if s.title == title)
                stem = "" if spec.default else Path(spec.path).stem
                await page.get_by_role("link", name=title).first.click()
                target = f"{base}/{stem}".rstrip("/")
                await page.wait_for_url(
                    lambda url, target=target: url.split("?")[0].rstrip("/") == target,
                    timeout=60_000)
                await wait_idle(page)
                loads.append((title, time.monotonic() - start))
                problems = await page.query_selector_all(
                    "[data-testid='stException'], [data-testid='stAlertContentError']")
                for problem in problems:
                    errors.append(f"session {number} {title}: {(await problem.inner_text())[:200]}")
    except Exception as error:  # noqa: BLE001 - every failure is reported
        errors.append(f"session {number}: {type(error).__name__}: {str(error)[:200]}")
    finally:
        await context.close()


async def drive(base: str, sessions: int, rounds: int, ingest_during, time_limit: float):
    from playwright.async_api import async_playwright
    loads: list[tuple[str, float]] = []
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        tasks = [user_session(browser, base, n, rounds, loads, errors) for n in range(sessions)]
        writer = asyncio.get_running_loop().run_in_executor(None, ingest_during)
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=time_limit)
        except asyncio.TimeoutError:
            errors.append(f"time limit of {time_limit:.0f} s reached")
        ingest_seconds = await writer
        await browser.close()
    return loads, errors, ingest_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--time-limit", type=float, default=600)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="load-test-"))
    exports = generate_demo(work / "exports", patients=args.patients, seed=7)
    later = generate_demo(work / "later", patients=args.patients, seed=8)
    db_path = work / "clinic.duckdb"
    with db.writer(db_path) as con:
        ingest.ingest_files(con, [exports.sessions, exports.medications])
    users = work / "users.toml"
    for n in range(args.sessions):
        auth.add_user(users, f"user{n}", "clinical", PASSWORD)

    port = free_port()
    env = {**os.environ, "OUTCOMES_DB": str(db_path), "OUTCOMES_USERS": str(users)}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"),
         "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                time.sleep(0.5)

        def ingest_during() -> float:
            time.sleep(5)  # let the sessions start, then write while they read
            start = time.monotonic()
            subprocess.run([sys.executable, "-m", "analysis", "ingest", str(later.sessions),
                            "--db", str(db_path)], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            return time.monotonic() - start

        started = time.monotonic()
        loads, errors, ingest_seconds = asyncio.run(
            drive(base, args.sessions, args.rounds, ingest_during, args.time_limit))
        elapsed = time.monotonic() - started
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)

    times = sorted(t for _, t in loads)
    print(f"{args.sessions} sessions × {args.rounds} rounds of {len(PAGES)} pages on "
          f"{args.patients:,} demo patients, ingest of {later.visit_rows:,} visits during the run "
          f"({ingest_seconds:.1f} s); wall time {elapsed:.0f} s")
    if times:
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        print(f"page loads: {len(times)}  p50 {statistics.median(times):.2f} s  "
              f"p95 {p95:.2f} s  max {times[-1]:.2f} s")
        by_page: dict[str, list[float]] = {}
        for title, seconds in loads:
            by_page.setdefault(title, []).append(seconds)
        for title, values in by_page.items():
            print(f"  {title:<22} median {statistics.median(values):.2f} s  n={len(values)}")
    print(f"errors: {len(errors)}")
    for error in errors[:20]:
        print("  " + error)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
