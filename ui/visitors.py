"""Visitors first: a visitor's page run and the background warm-up share the
machine's cores, so the warm-up waits while anyone's page is being drawn.

``dashboard.py`` runs every visitor's page inside :func:`page_run`; the work
``ui.warm`` does after new data is served runs inside :func:`background`, and
the page cache (``ui.analysis_cache.call``) asks :func:`yield_to_visitors`
before each call: in a background thread it waits until no page run is under
way (a call already being computed finishes first).  Before new data is
served the warm-up does not wait: its time is bounded by its budget, and the
first visitors of the new data need what it computes.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

_idle = threading.Condition()
_page_runs = 0
_thread = threading.local()


@contextmanager
def page_run() -> Iterator[None]:
    """A visitor's page is being drawn (whatever ends it: the end of the
    script, ``st.stop()``, a rerun or an error)."""
    global _page_runs
    with _idle:
        _page_runs += 1
    try:
        yield
    finally:
        with _idle:
            _page_runs -= 1
            if _page_runs == 0:
                _idle.notify_all()


def page_runs() -> int:
    """How many visitors' pages are being drawn now."""
    with _idle:
        return _page_runs


@contextmanager
def background(stop: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """This thread's work gives way to visitors until ``stop()`` says it is
    to end (then it no longer waits)."""
    _thread.stop = stop
    try:
        yield
    finally:
        _thread.stop = None


def wake() -> None:
    """Background threads waiting for visitors look at their ``stop`` again."""
    with _idle:
        _idle.notify_all()


def yield_to_visitors() -> None:
    """In a background thread: wait while a visitor's page is being drawn.
    Elsewhere (a visitor's own run, warming before serving): return at once."""
    stop = getattr(_thread, "stop", None)
    if stop is None:
        return
    with _idle:
        # (woken when the last page run ends or by ``wake``; the timeout only
        # guards against a missed ``stop`` that no one announced)
        while _page_runs and not stop():
            _idle.wait(timeout=1.0)
