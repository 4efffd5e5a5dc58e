"""Time to event (SPEC §4: loss of response, first booster): Kaplan-Meier
with right-censoring, its log-log pointwise band and the median with a CI
read off the band (``scipy.stats.ecdf`` on ``CensoredData``).  Plain
scipy/numpy, no Streamlit; results are frozen dataclasses."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analysis.core.stats import confidence_level
from analysis.core.stats import stats as scipy_stats

__all__ = ["KaplanMeier", "kaplan_meier"]

# S(t) is compared with 0.5 with this slack so that a product of fractions
# that is mathematically 1/2 (e.g. 2/4) counts as reaching the median even if
# floating point leaves it at 0.5000000000000001.
_HALF_TOL = 1e-12


@dataclass(frozen=True, eq=False)
class KaplanMeier:
    """A Kaplan-Meier curve.  Arrays are read-only and aligned with ``time``.

    ``time`` holds 0 followed by every distinct event or censoring time (an
    event at time 0 makes ``time[0] == 0`` carry S(0) < 1).  ``survival`` is
    S(t) just after each time (right-continuous steps).  ``ci_low``/``ci_high``
    are scipy's pointwise "log-log" (Greenwood) band; where S(t) == 1 the band
    is set to [1, 1] and where S(t) == 0 to [0, 0] (scipy yields NaN there; this
    is lifelines' convention).  ``at_risk[i]`` = number with duration >=
    ``time[i]`` (at risk just before ``time[i]``).

    ``median`` = smallest t with S(t) <= 0.5 (``None`` if the curve never gets
    there).  ``median_ci_low`` = smallest t with ``ci_low(t) <= 0.5`` and
    ``median_ci_high`` = smallest t with ``ci_high(t) <= 0.5`` (``None`` = not
    reached, i.e. unbounded above): the times where the lower and upper
    pointwise bands cross 0.5.  The lower band falls first, so it gives the
    lower limit.  This is the band-crossing reading used by lifelines'
    ``median_survival_times(kmf.confidence_interval_)``; it approximates, but
    is not identical to, the Brookmeyer-Crowley test-inversion interval.
    """

    time: np.ndarray
    survival: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    at_risk: np.ndarray
    n: int
    events: int
    median: float | None
    median_ci_low: float | None
    median_ci_high: float | None

    def survival_at(self, t: float) -> float:
        """S(t) (right-continuous); 1.0 before time 0; the last value beyond
        the last observed time (the curve is not defined past it); NaN when
        there are no patients."""
        if self.n == 0:
            return float("nan")
        i = int(np.searchsorted(self.time, float(t), side="right")) - 1
        return 1.0 if i < 0 else float(self.survival[i])

    def at_risk_at(self, t: float) -> int:
        """Number at risk at time t = patients with duration >= t (R's
        ``summary(survfit, times=t)`` convention); n for t <= 0."""
        if self.n == 0:
            return 0
        j = int(np.searchsorted(self.time, float(t), side="left"))
        return 0 if j >= self.time.size else int(self.at_risk[j])


def _first_time_at_or_below_half(time: np.ndarray, curve: np.ndarray) -> float | None:
    hit = np.flatnonzero(curve <= 0.5 + _HALF_TOL)
    return float(time[hit[0]]) if hit.size else None


def _ro(a) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


def _ro_int(a) -> np.ndarray:
    a = np.array(a, dtype=np.int64)
    a.setflags(write=False)
    return a


def kaplan_meier(durations: Sequence[float], observed: Sequence[bool],
                 confidence: float = 0.95) -> KaplanMeier:
    """Kaplan-Meier estimate with right-censoring (SPEC 4).

    ``durations`` are times >= 0 (e.g. days from index); ``observed[i]`` is
    True for an event, False for censoring at that time.  Uses
    ``scipy.stats.ecdf(scipy.stats.CensoredData(uncensored=..., right=...)).sf``
    and its ``confidence_interval(confidence, method="log-log")``.  See
    :class:`KaplanMeier` for the median and its interval.  ``n == 0`` gives
    empty arrays; all-censored data gives a flat S = 1 and median ``None``.
    """
    d = np.asarray(durations, dtype=float).ravel()
    obs_raw = np.asarray(observed).ravel()
    c = confidence_level(confidence)
    if d.shape != obs_raw.shape:
        raise ValueError(f"durations ({d.size}) and observed ({obs_raw.size}) differ in length")
    if d.size and (not np.all(np.isfinite(d)) or np.any(d < 0)):
        raise ValueError("durations must be finite and >= 0")
    if obs_raw.size and not np.all(np.isin(obs_raw, (0, 1, True, False))):
        raise ValueError("observed must be booleans (or 0/1)")
    obs = obs_raw.astype(bool)
    n, events = int(d.size), int(obs.sum())
    if n == 0:
        empty = _ro([])
        return KaplanMeier(empty, empty, empty, empty, empty, 0, 0, None, None, None)

    sf = scipy_stats.ecdf(scipy_stats.CensoredData(uncensored=d[obs], right=d[~obs])).sf
    t = np.asarray(sf.quantiles, dtype=float)
    s = np.asarray(sf.probabilities, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        band = sf.confidence_interval(confidence_level=c, method="log-log")
    lo = np.asarray(band.low.probabilities, dtype=float).copy()
    hi = np.asarray(band.high.probabilities, dtype=float).copy()
    # Greenwood's variance is 0 while S == 1 and undefined at S == 0: scipy
    # returns NaN there; use the degenerate band instead (as lifelines does).
    lo[s >= 1.0], hi[s >= 1.0] = 1.0, 1.0
    lo[s <= 0.0], hi[s <= 0.0] = 0.0, 0.0
    if t[0] > 0:
        t, s = np.r_[0.0, t], np.r_[1.0, s]
        lo, hi = np.r_[1.0, lo], np.r_[1.0, hi]
    d_sorted = np.sort(d)
    at_risk = n - np.searchsorted(d_sorted, t, side="left")

    return KaplanMeier(
        time=_ro(t), survival=_ro(s), ci_low=_ro(lo), ci_high=_ro(hi),
        at_risk=_ro_int(at_risk),
        n=n, events=events,
        median=_first_time_at_or_below_half(t, s),
        median_ci_low=_first_time_at_or_below_half(t, lo),
        median_ci_high=_first_time_at_or_below_half(t, hi),
    )
