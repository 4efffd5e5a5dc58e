"""Shared fixtures: a real demo clinic in a real DuckDB file, and the real
Streamlit app under AppTest pointed at it."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = str(ROOT / "dashboard.py")


@pytest.fixture(scope="session", autouse=True)
def private_secrets_dir(tmp_path_factory):
    """The clinic's keys (pseudonyms, audit MACs) live in a temporary folder
    for the whole run, never in the tester's ~/.config; set in the
    environment so that the CLI and dashboard processes the tests start use
    the same keys."""
    import os

    from analysis.access import keys
    folder = tmp_path_factory.mktemp("secrets") / "keys"
    previous = os.environ.get("OUTCOMES_SECRETS_DIR")
    os.environ["OUTCOMES_SECRETS_DIR"] = str(folder)
    keys.forget()
    yield folder
    keys.forget()
    if previous is None:
        os.environ.pop("OUTCOMES_SECRETS_DIR", None)
    else:
        os.environ["OUTCOMES_SECRETS_DIR"] = previous


@pytest.fixture(scope="session")
def demo_exports(tmp_path_factory):
    from analysis.ingest.demo.generate import generate_demo
    out = tmp_path_factory.mktemp("demo_exports")
    return generate_demo(out, patients=500, seed=11)


@pytest.fixture(scope="session")
def demo_db(demo_exports, tmp_path_factory) -> Path:
    """A demo clinic ingested into a DuckDB file on disk (read it, don't write it)."""
    from analysis.storage import db
    from analysis.ingest.pipeline import ingest_files
    path = tmp_path_factory.mktemp("demo_db") / "demo.duckdb"
    con = db.connect(path)
    summary = ingest_files(con, [demo_exports.sessions, demo_exports.medications])
    con.close()
    assert summary.ok, summary.to_dict()
    return path


def ingested_snapshot(db_path, files):
    """Ingest ``files`` into a new DuckDB file at ``db_path`` (every file
    must be accepted) and return a snapshot of it."""
    from analysis.storage import db, store
    from analysis.ingest.pipeline import ingest_files
    con = db.connect(db_path)
    summary = ingest_files(con, files)
    con.close()
    assert summary.ok, summary.to_dict()
    return store.Snapshot(db_path)


@pytest.fixture(scope="session")
def demo_snapshot(demo_db):
    from analysis.storage import store
    return store.Snapshot(demo_db)


@pytest.fixture
def app_db(demo_db, monkeypatch) -> Path:
    """Point the dashboard at the demo database."""
    monkeypatch.setenv("OUTCOMES_DB", str(demo_db))
    return demo_db


def signed_in(app, role: str = "clinical", user: str | None = None):
    """Start an AppTest session as a signed-in user of ``role``."""
    import datetime as dt
    from ui.auth import SESSION_KEY, Session
    app.session_state[SESSION_KEY] = Session(user or f"test-{role}", role,
                                             dt.datetime.now(), "password")
    return app


def write_grant(db_path, role: str = "clinical"):
    """What a signed-in user of ``role`` gets from ``analysis.access.auth.may_write``
    for the clinic database ``db_path``."""
    from analysis.access import auth
    from analysis.sources import DataSource
    return auth.may_write(DataSource(Path(db_path), is_demo=False), f"test-{role}", role,
                          signed_in=True)


def run_page(page: str, query: dict | None = None, timeout: float = 120,
             role: str = "clinical"):
    """Run the real app (dashboard.py) on one page, signed in as ``role``,
    with URL query parameters."""
    from streamlit.testing.v1 import AppTest
    app = signed_in(AppTest.from_file(DASHBOARD, default_timeout=timeout), role)
    for key, value in (query or {}).items():
        app.query_params[key] = value
    app.run()
    if page != "pages/overview.py":
        app.switch_page(page)
        app.run()
    return app


def assert_no_errors(app) -> None:
    assert not app.exception, [e.message for e in app.exception]
    assert not app.error, [e.value for e in app.error]


# Non-default filters used by every page's second AppTest.
NON_DEFAULT_QUERY = {"site": ["Denver", "Boulder"], "tp": "6m", "def": "pain50", "pop": "completers"}


@pytest.fixture
def hold_snapshot_builds(monkeypatch):
    """``hold()`` makes every snapshot build from then on wait until the
    returned event is set (to look at what readers get meanwhile)."""
    import threading

    from analysis.storage import store

    def hold() -> threading.Event:
        release = threading.Event()
        real_snapshot = store.Snapshot

        class HeldSnapshot(real_snapshot):
            def __init__(self, db_path):
                release.wait(60)
                super().__init__(db_path)

        monkeypatch.setattr(store, "Snapshot", HeldSnapshot)
        return release

    return hold


def wait_until_built(db_path, timeout: float = 60) -> None:
    """Wait for a background snapshot build of ``db_path`` to end."""
    import time

    from analysis.storage import store
    deadline = time.monotonic() + timeout
    while store.building(db_path) and time.monotonic() < deadline:
        time.sleep(0.1)


# --------------------------------------------------------------------------
# reading what an AppTest page drew


def frame_with(app, column: str):
    """The first dataframe (or static table) on the page that has ``column``."""
    return next(d.value for d in [*app.dataframe, *app.table] if column in d.value.columns)


def caption_text(app) -> str:
    return "\n".join(c.value for c in app.caption)


def markdown_text(app) -> str:
    return "\n".join(m.value for m in app.markdown)


def metric_values(app) -> dict:
    return {m.label: m.value for m in app.metric}


def plotly_figures(app) -> list:
    """Every Plotly chart on the page, as a Figure."""
    import plotly.io as pio
    return [pio.from_json(chart.proto.spec) for chart in app.get("plotly_chart")]


def trace_values(data) -> list:
    """A trace's x, y or customdata as a plain list (None for a missing
    point); Plotly ships numeric arrays as base64 ({"dtype", "bdata"})."""
    import base64

    import numpy as np
    if data is None:
        return []
    if isinstance(data, dict) and "bdata" in data:
        values = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
        if "shape" in data:
            values = values.reshape([int(n) for n in str(data["shape"]).split(",")])
        data = values.tolist()
    return [list(v) if isinstance(v, (list, tuple)) else None if v is None or v != v else v
            for v in data]
