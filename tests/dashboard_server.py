"""A real ``streamlit run dashboard.py`` on a free loopback port, and the
Chromium that drives it: shared by the end-to-end test and the load test."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
