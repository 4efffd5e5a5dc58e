"""Visitors first (ui.visitors): what the dashboard computes in the background
after new data is served waits while a visitor's page is being drawn, so the
two do not share the machine's cores.

Each test is a race made deterministic: a background thread asks the page
cache for a call while a visitor's page run is open, and the call must not
be computed until the run ends."""

from __future__ import annotations

import threading
import time

import pytest

from ui import analysis_cache, visitors


class _Snapshot:
    db_path = "visitors-test.duckdb"
    version = ("visitors-test", 1)


def _recording_call(calls: list, name: str):
    def computed(snap, value):
        calls.append((name, value, time.monotonic()))
        return value
    computed.__qualname__ = f"computed_{name}"
    return computed


def _background_call(function, value, stop=lambda: False) -> threading.Thread:
    """A background thread (as ui.warm's after-serving work) asking the page cache."""
    def work():
        with visitors.background(stop=stop):
            analysis_cache.call(_Snapshot(), analysis_cache.data_key(_Snapshot()), function, value)
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


@pytest.fixture(autouse=True)
def _nothing_cached():
    import streamlit as st
    st.cache_data.clear()
    yield
    st.cache_data.clear()
    assert visitors.page_runs() == 0


def test_a_background_call_waits_until_the_visitors_page_is_drawn():
    calls: list = []
    function = _recording_call(calls, "waits")
    with visitors.page_run():
        thread = _background_call(function, 1)
        time.sleep(0.5)
        assert calls == [], "the background call ran while a visitor's page was being drawn"
        ended = time.monotonic()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert [c[:2] for c in calls] == [("waits", 1)]
    assert calls[0][2] >= ended


def test_it_waits_for_every_open_page_run_not_only_the_first():
    calls: list = []
    function = _recording_call(calls, "two_visitors")
    first, second = visitors.page_run(), visitors.page_run()
    first.__enter__()
    second.__enter__()
    thread = _background_call(function, 2)
    first.__exit__(None, None, None)
    time.sleep(0.3)
    assert calls == [], "one visitor's page was still being drawn"
    second.__exit__(None, None, None)
    thread.join(timeout=10)
    assert [c[:2] for c in calls] == [("two_visitors", 2)]


def test_with_no_visitor_a_background_call_runs_at_once():
    calls: list = []
    thread = _background_call(_recording_call(calls, "idle"), 3)
    thread.join(timeout=10)
    assert [c[:2] for c in calls] == [("idle", 3)]


def test_a_visitors_own_calls_and_warming_before_serving_never_wait():
    """Outside ``background`` (a visitor's run, the budgeted warm-up before
    new data is served) a call is made at once, even while pages are drawn."""
    calls: list = []
    function = _recording_call(calls, "own")
    with visitors.page_run(), visitors.page_run():
        started = time.monotonic()
        assert analysis_cache.call(_Snapshot(), analysis_cache.data_key(_Snapshot()),
                                   function, 4) == 4
        assert time.monotonic() - started < 0.5
    assert [c[:2] for c in calls] == [("own", 4)]


def test_a_stopped_background_thread_stops_waiting():
    """Newer data or the process's exit ends an older warm-up (ui.warm sets
    its stop and wakes it); it must not wait for visitors forever."""
    calls: list = []
    stop = threading.Event()
    with visitors.page_run():
        thread = _background_call(_recording_call(calls, "stopped"), 5, stop=stop.is_set)
        time.sleep(0.2)
        assert thread.is_alive()
        stop.set()
        visitors.wake()
        thread.join(timeout=5)
        assert not thread.is_alive(), "a stopped warm-up still waited for the visitor"


def test_a_page_run_ended_by_an_error_or_st_stop_is_no_longer_counted():
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException
    for error in (StopException(), ValueError("the page failed")):
        with pytest.raises(type(error)):
            with visitors.page_run():
                assert visitors.page_runs() == 1
                raise error
        assert visitors.page_runs() == 0


def test_the_dashboard_draws_each_page_inside_a_page_run(tmp_path, monkeypatch):
    """Every call the dashboard (sidebar, status line, the page) makes is made
    while its run is counted, and the count is back to zero after it."""
    from streamlit.testing.v1 import AppTest

    from analysis.storage import store
    from tests.helpers.apptest import DASHBOARD, assert_no_errors, signed_in
    from tests.helpers.builders import build_tiny_clinic

    monkeypatch.setenv("OUTCOMES_DB", str(build_tiny_clinic(tmp_path)))
    store.clear_cache()
    counted: list[int] = []
    real = analysis_cache._cached_call

    def cached_call(*args, **kwargs):
        counted.append(visitors.page_runs())
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis_cache, "_cached_call", cached_call)
    for page in ("pages/overview.py", "pages/safety.py"):
        app = signed_in(AppTest.from_file(DASHBOARD, default_timeout=300), "clinical")
        app.switch_page(page)
        app.run()
        assert_no_errors(app)
    assert counted and min(counted) >= 1, counted
    assert visitors.page_runs() == 0
    store.clear_cache()
