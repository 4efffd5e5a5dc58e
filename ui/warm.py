"""New data is served with its pages already computed (issue 20).

When an ingest lands, the dashboard builds the new snapshot in the background
and serves the previous one meanwhile (``analysis.storage.store``); before the
new one is served, :func:`warm` runs in that background thread and computes
on it, through the page cache (``ui.analysis_cache``):

1. the default view of every page, for every role that may open it: the
   page's own script runs with the context a new session of that role gets
   (the sidebar's defaults, ``Chosen()``), the status line with it, off
   screen: in this thread there is no session, so Streamlit draws nothing and
   every widget answers its default, and the calls made are exactly the
   page's own (there is no list of them to keep in step with the pages);
2. the calls visitors made on the previous data (the most recent
   ``analysis_cache.REMEMBERED``), with their own arguments.

Each role's landing page comes first.  Warming before serving is bounded by
:func:`budget` (``OUTCOMES_WARM_SECONDS``, default 30 s): new data is not
held back for minutes behind pages few visitors open (at 1 M visits every
page for every role is about a minute of CPU).  What is left when the budget
runs out is warmed right after the new data is served, in the background,
giving way to visitors (``ui.visitors``: it waits while a visitor's page is
drawn); a visitor who opens such a page first computes it as without a
warm-up.

Every call is computed on the new snapshot and cached under its data version
and the call's arguments, the reader's audience among them, so one role's
view is never served to another and nothing of the previous data is kept
under the new version.  Once warm, the previous version's results leave the
cache.  ``OUTCOMES_WARM_PAGES=off`` turns it off (the first visitor of each
page then computes it).
"""

from __future__ import annotations

import atexit
import logging
import os
import runpy
import threading
import time
from pathlib import Path

from analysis.core import audience
from analysis.metrics import outcomes
from analysis.sources import DataSource
from analysis.storage import db, store
from ui import analysis_cache, page_context, pages, status_line, visitors
from ui.filters_in_url import Chosen

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent

#: Pages that compute nothing ahead: the audit log is read as it is at each view.
LIVE = frozenset({"pages/audit.py"})

#: Set at exit: warming stops after the page or call under way, so that no
#: thread is still inside DuckDB while the interpreter shuts down (it aborts).
_stopping = threading.Event()
_running: set[threading.Thread] = set()
_running_lock = threading.Lock()


@atexit.register
def _stop() -> None:
    _stopping.set()
    visitors.wake()
    with _running_lock:
        running = list(_running)
    for thread in running:
        thread.join(timeout=120)


def enabled() -> bool:
    return os.environ.get("OUTCOMES_WARM_PAGES", "on").strip().lower() != "off"


def budget() -> float:
    """Seconds of warming before new data is served (the rest follows it)."""
    try:
        return max(0.0, float(os.environ.get("OUTCOMES_WARM_SECONDS", "30")))
    except ValueError:
        return 30.0


#: The newest warm-up's number: a warm-up going on after its data was served
#: stops once newer data is being warmed.
_generation = 0


class _OffScreen(logging.Filter):
    """Streamlit warns once per element drawn without a session; a page run
    off screen draws many, on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(page_context._warm, "context", None) is None


for _name in ("streamlit.runtime.scriptrunner_utils.script_run_context",
              "streamlit.runtime.state.session_state_proxy"):
    logging.getLogger(_name).addFilter(_OffScreen())


def default_context(snap, spec: pages.PageSpec, role: str) -> page_context.PageContext:
    """What the sidebar gives a new session of ``role`` on ``spec``'s page."""
    source = DataSource(snap.db_path, is_demo=db.is_demo_database(snap.db_path))
    options = analysis_cache.call(snap, analysis_cache.data_key(snap), outcomes.filter_options)
    chosen = Chosen().valid(options)
    controls = pages.controls_for(spec, audience.for_role(role))
    return page_context.PageContext(source, snap, chosen.filters(controls), chosen.timepoint,
                                    chosen.definition, chosen.population, chosen.ci, role=role,
                                    controls=controls)


def run_off_screen(context: page_context.PageContext, spec: pages.PageSpec) -> None:
    """The status line and the page's script with ``context``, drawing nothing."""
    with page_context.off_screen(context):
        status_line.draw(context)
        runpy.run_path(str(ROOT / spec.path), run_name="__page__")


def warm(snap) -> dict:
    """Compute the default views of every page for every role, then the
    calls visitors made on the previous data, on ``snap``, for at most
    :func:`budget` seconds; what is left goes on in a thread of its own once
    this returns (``done["after_serving"]``: how many views and calls).  The
    previous versions' results are dropped when everything is warm.  What
    was done: pages run, remembered calls made, results dropped, seconds."""
    global _generation
    started = time.perf_counter()
    done = {"pages": 0, "remembered": 0, "dropped": 0, "after_serving": 0}
    if not enabled() or _stopping.is_set():
        return done
    with _running_lock:
        _generation += 1
        generation = _generation
    visitors.wake()   # an older warm-up waiting for visitors stops
    work = _work(snap)
    deadline = started + budget()
    left = _do(snap, work, done, until=deadline, generation=generation)
    if left:
        done["after_serving"] = len(left)
        thread = threading.Thread(target=_finish, args=(snap, left, generation),
                                  name="warm-after-serving", daemon=True)
        with _running_lock:
            _running.add(thread)
        thread.start()
    else:
        done["dropped"] = analysis_cache.drop_other_versions(snap)
    done["seconds"] = time.perf_counter() - started
    log.info("new data of %s warmed: %s", snap.db_path, done)
    return done


def _work(snap) -> list[tuple]:
    """What to warm, in order: ("page", spec, role), each role's landing page
    first, then ("call", function, args, kwargs) for the remembered calls."""
    remembered = analysis_cache.recent(str(snap.db_path))
    views = sorted(((spec, role) for role in pages.ROLES for spec in pages.pages_for(role)
                    if spec.path not in LIVE),
                   key=lambda view: view[0] is not pages.pages_for(view[1])[0])
    return ([("page", spec, role) for spec, role in views]
            + [("call", function, args, kwargs) for function, args, kwargs in remembered])


def _do(snap, work: list[tuple], done: dict, until: float | None, generation: int) -> list:
    """Warm ``work`` in order until the time ``until`` (None: no limit), or
    until the process exits or newer data is being warmed; what is left."""
    with _running_lock:
        _running.add(threading.current_thread())
    try:
        key = analysis_cache.data_key(snap)
        for position, item in enumerate(work):
            if _stopping.is_set() or generation != _generation:
                return []
            if until is not None and time.perf_counter() >= until:
                return work[position:]
            if item[0] == "page":
                _, spec, role = item
                try:
                    run_off_screen(default_context(snap, spec, role), spec)
                except Exception as error:  # noqa: BLE001 - its visitor sees what it says
                    # st.stop() does not stop a page run off screen: a page with
                    # nothing to show (no data) goes on and fails here; its first
                    # visitor is shown the page's own message.
                    log.debug("warming %s for %s stopped: %s", spec.path, role,
                              type(error).__name__)
                done["pages"] += 1
            else:
                _, function, args, kwargs = item
                try:
                    analysis_cache.call(snap, key, function, *args, **dict(kwargs))
                except Exception as error:  # noqa: BLE001 - e.g. a patient no longer in the data
                    log.debug("warming %s stopped: %s", function.__qualname__,
                              type(error).__name__)
                done["remembered"] += 1
        return []
    finally:
        with _running_lock:
            _running.discard(threading.current_thread())


def _finish(snap, left: list, generation: int) -> None:
    """The views the budget left, warmed after the new data is served, each
    call waiting while a visitor's page is being drawn (``ui.visitors``)."""
    done = {"pages": 0, "remembered": 0}
    with visitors.background(stop=lambda: _stopping.is_set() or generation != _generation):
        _do(snap, left, done, until=None, generation=generation)
    if generation == _generation and not _stopping.is_set():
        done["dropped"] = analysis_cache.drop_other_versions(snap)
    log.info("new data of %s warmed after serving: %s", snap.db_path, done)


def register() -> None:
    """The dashboard's pages are warmed for every new snapshot before it is served."""
    store.add_warmer(warm)
