"""New data is served with its pages already computed (ui.warm, issue 20).

The real dashboard under AppTest on a DuckDB file on disk: a visitor opens it,
new data is ingested, the dashboard builds the new snapshot in the background
(as a visitor's run starts it) and serves it once ready; then a new visitor
opens a page.  The page calls computed during that visit are counted (the
page cache logs one line per computed call)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from analysis.storage import db, store
from tests.helpers.apptest import DASHBOARD, assert_no_errors, signed_in
from tests.helpers.builders import TINY_COLUMNS, TINY_INGEST_DATE, build_tiny_clinic, write_csv

ROLE_PAGES = {"clinical": ["pages/overview.py", "pages/safety.py", "pages/patient_timeline.py",
                           "pages/quarterly_report.py", "pages/data.py"],
              "marketing": ["pages/claim_check.py", "pages/site_comparison.py"]}


class _Computed(logging.Handler):
    """The page calls computed (not served from the cache) while it is open."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.names: list[str] = []

    def emit(self, record):
        self.names.append(record.getMessage().split()[-1])

    def __enter__(self):
        log = logging.getLogger("outcomes.timing")
        self.level = log.level
        log.setLevel(logging.DEBUG)
        log.addHandler(self)
        return self

    def __exit__(self, *exc):
        log = logging.getLogger("outcomes.timing")
        log.removeHandler(self)
        log.setLevel(self.level)


def _new_patient_export(folder: Path, patient: str) -> Path:
    """A session export of one more treated patient (new data)."""
    rows = [[patient, "2029-03-10", "intake", f"{patient}-V1", "Migraine", "Denver", "", "9", "", "80",
             "no", "", ""],
            [patient, "2029-03-11", "infusion", f"{patient}-V2", "", "Denver", "IV", "9", "5", "", "", "",
             ""],
            [patient, "2029-06-10", "follow_up", f"{patient}-V3", "", "Denver", "", "3", "", "20", "no", "",
             ""]]
    return write_csv(folder / f"sessions_{patient}.csv", [row + [""] for row in rows],
                     TINY_COLUMNS)


def _ingest(db_path: Path, export: Path) -> None:
    from analysis.ingest.pipeline import ingest_file
    with db.writer(db_path) as con:
        assert ingest_file(con, export, ingest_date=TINY_INGEST_DATE).status == "ingested"


def _served(db_path: Path, timeout: float = 300) -> store.DataVersion:
    """Ask for the snapshot as a visitor's run does (the new one is built in
    the background) until the file's current data is served."""
    deadline = time.monotonic() + timeout
    while True:
        snap = store.snapshot(db_path, warm=True, background=True)
        if snap.version == store.read_version(db_path) and not store.building(db_path):
            return snap.version
        assert time.monotonic() < deadline, "the new snapshot was never served"
        time.sleep(0.05)


def _visit(page: str = "pages/overview.py", role: str = "clinical"):
    """A new visitor of ``role`` opens ``page``: the app and the calls computed."""
    from streamlit.testing.v1 import AppTest
    app = signed_in(AppTest.from_file(DASHBOARD, default_timeout=300), role)
    app.switch_page(page)   # its first view: dashboard.py, then the page
    with _Computed() as computed:
        app.run()
    assert_no_errors(app)
    return app, computed.names


@pytest.fixture
def clinic(tmp_path, monkeypatch):
    """The tiny clinic in a file of its own, the dashboard's data source, with
    nothing cached."""
    import streamlit as st

    from ui import analysis_cache
    path = build_tiny_clinic(tmp_path)
    monkeypatch.setenv("OUTCOMES_DB", str(path))
    monkeypatch.delenv("OUTCOMES_WARM_PAGES", raising=False)
    store.clear_cache()
    st.cache_data.clear()
    analysis_cache.forget()
    yield path
    store.clear_cache()


def _status_line(app) -> str:
    return next(c.value for c in app.caption if "data cutoff" in c.value)


def test_first_visit_after_new_data_computes_nothing_once_warmed(clinic, tmp_path, monkeypatch):
    """Without the warm-up the first visitor after new data computes the
    page's calls; with it they were computed before the new data was served,
    on every page a role opens first, and the visitor computes none."""
    _, computed = _visit()
    assert computed, "a cold cache computes the page's calls"

    monkeypatch.setenv("OUTCOMES_WARM_PAGES", "off")
    _ingest(clinic, _new_patient_export(tmp_path, "G"))
    _served(clinic)
    _, computed = _visit()
    assert "analysis.metrics.program_overview.overview" in computed, \
        "new data, no warm-up: the first visitor computes the page"

    monkeypatch.setenv("OUTCOMES_WARM_PAGES", "on")
    previous = store.snapshot(clinic)
    _ingest(clinic, _new_patient_export(tmp_path, "H"))
    version = _served(clinic)
    # The previous data's results left the cache once the new data was warm.
    from analysis.metrics import outcomes
    from ui import analysis_cache
    with _Computed() as computed:
        analysis_cache.call(previous, analysis_cache.data_key(previous), outcomes.filter_options)
    assert computed.names == ["analysis.metrics.outcomes.filter_options"]
    for role, role_pages in ROLE_PAGES.items():
        for page in role_pages:
            app, computed = _visit(page, role)
            assert computed == [], f"{role} on {page} computed {computed}"
    # ... and what they were served is the new data.
    assert store.snapshot(clinic).version == version
    assert "7 treated patients" in _status_line(_visit()[0])


def test_a_roles_warmed_view_is_not_served_to_another_role(clinic, tmp_path, monkeypatch):
    """Marketing sees the external view (no count under 11 shown): a view
    warmed for the clinical team is never served to it.  Warmed for the
    clinical team only, marketing's first visit computes its own; warmed for
    every role, marketing is served its own, external one."""
    from ui import analysis_cache, pages
    _visit()
    monkeypatch.setattr(pages, "ROLES", ("clinical",))
    analysis_cache.forget()          # no call remembered from earlier visitors
    _ingest(clinic, _new_patient_export(tmp_path, "G"))
    _served(clinic)
    app, computed = _visit("pages/claim_check.py", "marketing")
    assert "analysis.claims.claim.claim_report" in computed
    assert "no count under 11 shown" in _status_line(app)
    assert "This is the external view" in " ".join(c.value for c in app.caption)

    monkeypatch.setattr(pages, "ROLES", ("clinical", "analyst", "marketing"))
    _ingest(clinic, _new_patient_export(tmp_path, "H"))
    _served(clinic)
    app, computed = _visit("pages/claim_check.py", "marketing")
    assert computed == []
    assert "no count under 11 shown" in _status_line(app)
    assert "This is the external view" in " ".join(c.value for c in app.caption)
    app, computed = _visit("pages/claim_check.py", "clinical")
    assert computed == []
    assert "7 treated patients" in _status_line(app)
    assert "This is the external view" not in " ".join(c.value for c in app.caption)


def test_an_ingest_landing_while_warming_is_not_served_as_the_warmed_version(
        clinic, tmp_path, monkeypatch):
    """New data lands while the previous new data is being warmed: what is
    served under each version is that version's data, and the latest is
    served (warm) in the end."""
    from ui import warm
    _visit()
    landed = []
    real = warm.run_off_screen

    def run_off_screen(context, spec):
        if not landed:   # the first page being warmed: one more ingest lands
            landed.append(context.snap.version)
            _ingest(clinic, _new_patient_export(tmp_path, "H"))
        return real(context, spec)

    monkeypatch.setattr(warm, "run_off_screen", run_off_screen)
    _ingest(clinic, _new_patient_export(tmp_path, "G"))
    seven = store.read_version(clinic)
    deadline = time.monotonic() + 300
    while store.snapshot(clinic, warm=True, background=True).version != seven:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert landed == [seven]
    app, _ = _visit()       # G's version, served while H's is being built
    if store.snapshot(clinic).version == seven:
        assert "6 treated patients" in _status_line(app)
    final = _served(clinic)
    assert final != seven
    app, computed = _visit()
    assert computed == []
    assert "7 treated patients" in _status_line(app)


def test_new_data_is_served_when_the_budget_runs_out_and_warmed_after(clinic, tmp_path,
                                                                       monkeypatch):
    """Warming before serving is bounded (OUTCOMES_WARM_SECONDS): with no
    budget the new data is served at once, while its pages are still being
    warmed; those finish after it is served, and then a visitor computes
    nothing."""
    import threading

    from ui import warm
    _visit()
    monkeypatch.setenv("OUTCOMES_WARM_SECONDS", "0")
    release = threading.Event()
    real = warm.run_off_screen

    def run_off_screen(context, spec):
        assert release.wait(timeout=300), "the test never let warming go on"
        return real(context, spec)

    monkeypatch.setattr(warm, "run_off_screen", run_off_screen)
    _ingest(clinic, _new_patient_export(tmp_path, "G"))
    version = _served(clinic, timeout=120)     # served while warming is held
    assert version == store.read_version(clinic)
    after = [t for t in threading.enumerate() if t.name == "warm-after-serving"]
    assert after, "what the budget left is warmed after serving"
    release.set()
    for thread in after:
        thread.join(timeout=300)
        assert not thread.is_alive()
    for role, role_pages in ROLE_PAGES.items():
        for page in role_pages:
            app, computed = _visit(page, role)
            assert computed == [], f"{role} on {page} computed {computed}"
    assert "6 treated patients" in _status_line(_visit()[0])
