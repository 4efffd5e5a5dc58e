"""The cache in front of ``analysis``: a page's call is computed once per data
version, function and arguments, and served from memory after that."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import streamlit as st

#: One DEBUG line per computed (not cached) ``analysis`` call, with its time:
#: ``python bench/bench_pages.py --profile`` prints them.
timing_log = logging.getLogger("outcomes.timing")


def call(snap, data_key: tuple, function: Callable, *args, **kwargs) -> Any:
    """``function(snap, *args, **kwargs)``, cached per ``data_key`` (the
    source and its data version), the function's name and the arguments."""
    name = f"{function.__module__}.{function.__qualname__}"
    return _cached_call(snap, data_key, function, name, args, tuple(sorted(kwargs.items())))


@st.cache_data(show_spinner=False, max_entries=512)
def _cached_call(_snap, data_key, _function, function_name, args, kwargs):
    """Cached per data version, function name and arguments (the snapshot
    and the function object itself are identified by those)."""
    start = time.perf_counter()
    result = _function(_snap, *args, **dict(kwargs))
    timing_log.debug("%.3f s  %s", time.perf_counter() - start, function_name)
    return result
