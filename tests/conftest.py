"""Shared fixtures: a real demo clinic in a real DuckDB file, the real
Streamlit app under AppTest pointed at it, and the real server in Chromium.
The helpers the tests share (builders, AppTest and Chromium drivers,
document readers) are in ``tests/helpers/``."""

from __future__ import annotations

from pathlib import Path

import pytest



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


@pytest.fixture(scope="session")
def demo_snapshot(demo_db):
    from analysis.storage import store
    return store.Snapshot(demo_db)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny clinic (six patients worked out by hand,
    ``helpers.builders.TINY_ROWS``), one snapshot per test module."""
    from analysis.storage import store
    from tests.helpers.builders import build_tiny_clinic
    snap = store.Snapshot(build_tiny_clinic(tmp_path_factory.mktemp("tiny")))
    yield snap
    snap.close()


@pytest.fixture
def fresh_snapshots(monkeypatch):
    """No OUTCOMES_DB from the environment, and no snapshot kept after the
    test (for tests that run the command line on their own databases)."""
    from analysis.storage import store
    monkeypatch.delenv("OUTCOMES_DB", raising=False)
    yield
    store.clear_cache()


@pytest.fixture
def app_db(demo_db, monkeypatch) -> Path:
    """Point the dashboard at the demo database."""
    monkeypatch.setenv("OUTCOMES_DB", str(demo_db))
    return demo_db


# --------------------------------------------------------------------------
# the real server in Chromium (tests/helpers/browser.py)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for one test module."""
    from tests.helpers.browser import chromium
    with chromium() as instance:
        yield instance


@pytest.fixture(scope="module")
def dashboard(demo_db, tmp_path_factory) -> str:
    """The real dashboard on the demo clinic as clinic data (sign-in needed),
    with one clinician (``helpers.browser.CLINICIAN``); its base URL."""
    from tests.helpers.browser import CLINICIAN, dashboard_for
    user, password = CLINICIAN
    folder = tmp_path_factory.mktemp("streamlit")
    with dashboard_for(demo_db, folder, {user: "clinical"}, password) as base:
        yield base


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
