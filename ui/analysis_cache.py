"""The cache in front of ``analysis``: a page's call is computed once per data
version, function and arguments, and served from memory after that.

It also keeps, for ``ui.warm``, the most recent calls made on each database
(:func:`recent`, at most :data:`REMEMBERED`), to make again on new data, and
which entries it holds per data version, so that once a new version is
served the previous one's results leave memory (:func:`drop_other_versions`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

import streamlit as st

from ui import visitors

#: One DEBUG line per computed (not cached) ``analysis`` call, with its time:
#: ``python bench/bench_pages.py --profile`` prints them.
timing_log = logging.getLogger("outcomes.timing")

#: How many recent calls are remembered (all databases together) to be made
#: again on new data; the cache itself holds at most ``MAX_ENTRIES`` results.
REMEMBERED = 256
MAX_ENTRIES = 512

_lock = threading.Lock()
#: (database, function name, arguments) -> (function, args, kwargs), most recent last.
_recent: OrderedDict[tuple, tuple] = OrderedDict()
#: data key -> {call: (function name, args, kwargs)} of the results computed for it.
_held: dict[tuple, OrderedDict[tuple, tuple]] = {}


def data_key(snap) -> tuple:
    """What a cached result belongs to: the snapshot's database and data version."""
    return (str(snap.db_path), snap.version)


def call(snap, data_key: tuple, function: Callable, *args, **kwargs) -> Any:
    """``function(snap, *args, **kwargs)``, cached per ``data_key`` (the
    source and its data version), the function's name and the arguments."""
    name = f"{function.__module__}.{function.__qualname__}"
    kwargs = tuple(sorted(kwargs.items()))
    _remember(data_key[0], function, name, args, kwargs)
    visitors.yield_to_visitors()   # background work waits while a visitor's page is drawn
    return _cached_call(snap, data_key, function, name, args, kwargs)


@st.cache_data(show_spinner=False, max_entries=MAX_ENTRIES)
def _cached_call(_snap, data_key, _function, function_name, args, kwargs):
    """Cached per data version, function name and arguments (the snapshot
    and the function object itself are identified by those)."""
    start = time.perf_counter()
    result = _function(_snap, *args, **dict(kwargs))
    timing_log.debug("%.3f s  %s", time.perf_counter() - start, function_name)
    _hold(data_key, function_name, args, kwargs)
    return result


def _remember(database: str, function: Callable, name: str, args: tuple, kwargs: tuple) -> None:
    key = (database, name, repr(args), repr(kwargs))
    with _lock:
        _recent[key] = (function, args, kwargs)
        _recent.move_to_end(key)
        while len(_recent) > REMEMBERED:
            _recent.popitem(last=False)


def _hold(data_key: tuple, name: str, args: tuple, kwargs: tuple) -> None:
    with _lock:
        held = _held.setdefault(data_key, OrderedDict())
        held[(name, repr(args), repr(kwargs))] = (name, args, kwargs)
        while len(held) > MAX_ENTRIES:   # older ones have left the cache by now
            held.popitem(last=False)


def recent(database: str) -> list[tuple[Callable, tuple, tuple]]:
    """The remembered calls on ``database`` (a snapshot's ``db_path``), most
    recent first: (function, args, kwargs as sorted pairs)."""
    with _lock:
        return [value for key, value in reversed(_recent.items()) if key[0] == database]


def drop_other_versions(snap) -> int:
    """Remove from the cache the results of the snapshot's database computed
    for any other data version (a session still on the previous snapshot
    computes what it asks again); the number removed."""
    keep = data_key(snap)
    with _lock:
        stale = [key for key in _held if key[0] == keep[0] and key != keep]
        dropped = [(key, _held.pop(key)) for key in stale]
    removed = 0
    for key, held in dropped:
        for name, args, kwargs in held.values():
            _cached_call.clear(None, key, None, name, args, kwargs)
            removed += 1
    return removed


def forget() -> None:
    """Forget the remembered calls and held entries (tests)."""
    with _lock:
        _recent.clear()
        _held.clear()
