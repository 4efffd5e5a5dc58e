"""The binomial distribution in plain Python (``math`` only): its tails and
the exact (Clopper-Pearson) bounds that :mod:`analysis.core.stats` reports.

Why not scipy: ``python -m analysis claim --json`` (a cron job, the
quarterly report's command) needs only these, and importing numpy and
``scipy.special`` for them took about 0.35 s of a call that otherwise takes
0.2-0.4 s (bench/bench_perf.py, step claim).  The numbers are scipy's
within a few units in the last place: ``tests/test_stats.py`` checks them
against ``scipy.stats.binom``, ``binomtest`` and statsmodels'
``proportion_confint`` for n from 0 to 20,000.

* :func:`pmf`  P(X = k) by Loader's saddle-point formula ("Fast and
  accurate computation of binomial probabilities", 2000): no cancellation
  of large log-factorials, so it keeps full precision at any n.
* :func:`sf`   P(X >= k), the terms summed from k away from the mean (the
  short side), so both tails keep their precision.
* :func:`lower_bound` the exact lower bound L of k of n at one-sided level
  1 - alpha: P(X >= k | L) = alpha, found by Newton's method on log P.
"""

from __future__ import annotations

import functools
import math

_LOG_2PI = math.log(2.0 * math.pi)
_EPS = 2.0 ** -52
_TINY = 1e-17    # a term this small next to the sum no longer changes it


def _stirling_error(n: int) -> float:
    """log(n!) - log(sqrt(2 pi n) (n / e)^n) for n >= 1: computed in 40
    digits for small n (in doubles the difference of logs near 35 loses two
    digits), the Stirling series (error below 1e-17) above."""
    if n <= 15:
        return _small_stirling_errors()[n]
    inverse2 = 1.0 / (n * n)
    # 1/12n - 1/360n^3 + 1/1260n^5 - 1/1680n^7 + 1/1188n^9
    series = 1.0 / 1188
    for coefficient in (1.0 / 1680, 1.0 / 1260, 1.0 / 360):
        series = coefficient - series * inverse2
    return (1.0 / 12 - series * inverse2) / n


@functools.cache
def _small_stirling_errors() -> tuple[float, ...]:
    from decimal import Decimal, localcontext
    with localcontext() as context:
        context.prec = 40
        half_log_2pi = (2 * Decimal(_PI_40)).ln() / 2
        return (math.nan, *(float(Decimal(math.factorial(n)).ln()
                                  - (n + Decimal("0.5")) * Decimal(n).ln() + n - half_log_2pi)
                            for n in range(1, 16)))


_PI_40 = "3.141592653589793238462643383279502884197"


def _deviance(x: float, m: float) -> float:
    """x log(x / m) + m - x, accurately also when x is close to m."""
    if abs(x - m) < 0.1 * (x + m):
        v = (x - m) / (x + m)
        total = (x - m) * v
        term = 2.0 * x * v
        v2 = v * v
        j = 3
        while True:
            term *= v2
            following = total + term / j
            if following == total:
                return total
            total = following
            j += 2
    return x * math.log(x / m) + m - x


def pmf(k: int, n: int, p: float) -> float:
    """P(X = k) for X ~ Binomial(n, p)."""
    if k < 0 or k > n:
        return 0.0
    q = 1.0 - p
    if p == 0.0:
        return 1.0 if k == 0 else 0.0
    if q == 0.0:
        return 1.0 if k == n else 0.0
    if k == 0:
        return math.exp(n * math.log1p(-p))
    if k == n:
        return math.exp(n * math.log(p))
    log_core = (_stirling_error(n) - _stirling_error(k) - _stirling_error(n - k)
                - _deviance(k, n * p) - _deviance(n - k, n * q))
    log_width = _LOG_2PI + math.log(k) + math.log1p(-k / n)
    return math.exp(log_core - 0.5 * log_width)


def _upper_sum(k: int, n: int, p: float, first: float) -> float:
    """sum of P(X = j) for j >= k, from ``first`` = P(X = k) upwards."""
    total = term = first
    ratio = p / (1.0 - p)
    j = k
    while j < n and term > total * _TINY:
        term *= (n - j) / (j + 1) * ratio
        total += term
        j += 1
    return total


def _lower_sum(k: int, n: int, p: float) -> float:
    """sum of P(X = j) for j <= k, from P(X = k) downwards."""
    total = term = pmf(k, n, p)
    ratio = (1.0 - p) / p
    j = k
    while j > 0 and term > total * _TINY:
        term *= j / (n - j + 1) * ratio
        total += term
        j -= 1
    return total


def sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p) (the regularized incomplete beta
    I_p(k, n - k + 1)); the upper tail summed when k is above the mean,
    else one minus the lower tail, so the sum is always the short side."""
    return _tail(k, n, p)[0]


def _tail(k: int, n: int, p: float) -> tuple[float, float]:
    """(P(X >= k), P(X = k))."""
    if k <= 0:
        return 1.0, pmf(0, n, p)
    if k > n:
        return 0.0, 0.0
    if p <= 0.0:
        return 0.0, 0.0
    if p >= 1.0:
        return 1.0, 1.0 if k == n else 0.0
    first = pmf(k, n, p)
    if k > n * p:
        return _upper_sum(k, n, p, first), first
    return 1.0 - _lower_sum(k - 1, n, p), first


def lower_bound(k: int, n: int, alpha: float) -> float:
    """The exact (Clopper-Pearson) one-sided lower bound of k of n at level
    1 - alpha: the p with P(X >= k | p) = alpha (0 when k = 0).

    Newton's method on log P(X >= k | p), whose derivative is
    P(X = k | p) k / p / P(X >= k | p), kept inside a bracket that
    bisection narrows when a step would leave it; it starts from the normal
    approximation and stops when a step is below a few units in the last
    place (five to eight steps)."""
    if k <= 0:
        return 0.0
    if k == n:
        return alpha ** (1.0 / n)        # P(X = n | p) = p^n
    target = math.log(alpha)
    low, high = 0.0, k / n               # P(X >= k | k / n) > 1/2 > alpha
    p = min(max(_wilson_lower(k - 0.5, n, alpha), high * 1e-3), high * 0.999)
    for _ in range(200):
        tail, first = _tail(k, n, p)
        step = None
        if tail <= 0.0:
            low = p
        else:
            gap = math.log(tail) - target
            if gap > 0:
                high = p
            else:
                low = p
            if first > 0:
                step = gap * tail * p / (first * k)
                if abs(step) <= 4 * _EPS * p:
                    return p - step
        following = p - step if step is not None else None
        if following is None or not low < following < high:
            following = 0.5 * (low + high)
            if high - low <= 4 * _EPS * high:
                return following
        p = following
    return p


def _wilson_lower(k: float, n: int, alpha: float) -> float:
    """The Wilson score lower bound (Newton's starting point)."""
    z = -normal_quantile(alpha)
    rate = k / n
    centre = rate + z * z / (2 * n)
    spread = z * math.sqrt(rate * (1.0 - rate) / n + z * z / (4 * n * n))
    return (centre - spread) / (1.0 + z * z / n)


def upper_bound(k: int, n: int, alpha: float) -> float:
    """The exact one-sided upper bound of k of n at level 1 - alpha: the p
    with P(X <= k | p) = alpha (1 when k = n); by symmetry one minus the
    lower bound of the n - k others."""
    if k >= n:
        return 1.0
    if k == 0:
        return -math.expm1(math.log(alpha) / n)      # P(X = 0 | p) = (1 - p)^n
    return 1.0 - lower_bound(n - k, n, alpha)


@functools.lru_cache(maxsize=16)
def normal_quantile(p: float) -> float:
    """The standard normal quantile (``statistics.NormalDist``; within one
    unit in the last place of scipy's ``ndtri``), cached per p."""
    from statistics import NormalDist
    return NormalDist().inv_cdf(p)
