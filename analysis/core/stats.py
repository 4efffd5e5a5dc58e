"""Statistics for outcome reports (SPEC section 4); time to event (Kaplan-Meier)
is :mod:`analysis.core.survival`'s.

Plain scipy/numpy, no Streamlit; the proportions, their intervals and the
claim test need neither (:mod:`analysis.core.binomial`, plain Python), so a
command that needs only them (``claim --json``, ``responders --json``)
imports no numpy or scipy.  Every public function returns a small frozen
dataclass (or a list of them) with named fields; a quantity that cannot be
computed is ``None`` rather than NaN, so callers can test ``is None``.

* :func:`proportion`     responder rate with a Wilson (default) or
  Clopper-Pearson ("exact") interval.
* :func:`intervals`      the same for many proportions at once (arrays): the
  one implementation both use.
* :func:`claim_test`     one-sided exact binomial check of a marketing claim.
* :func:`median_change`  median paired change, exact order-statistic CI,
  Wilcoxon signed-rank p.
* :func:`holm`           Holm step-down adjusted p-values.
* :func:`compare_groups` each group vs all other groups pooled (Fisher's
  exact, Holm across groups).
* :func:`p_chart`        p-chart control limits.
* :func:`funnel_limits`  funnel-plot control limits around a target rate
  (exact binomial, interpolated).
* :func:`odds_ratio`     2x2 sample odds ratio, Woolf CI, Fisher p.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from analysis.core import binomial


class _OnFirstUse:
    """A module imported when first used: numpy and ``scipy.stats`` take
    about 0.6 s to import, and the claim check (``python -m analysis claim``,
    a cron job) needs only the binomial bounds (:mod:`analysis.core.binomial`)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute):
        return getattr(importlib.import_module(self._name), attribute)


np = _OnFirstUse("numpy")
stats = _OnFirstUse("scipy.stats")
contingency = _OnFirstUse("scipy.stats.contingency")

__all__ = [
    "ClaimTest", "ControlLimits", "GroupComparison", "OddsRatio",
    "PairedChange", "Proportion", "RateResult", "claim_test", "compare_groups", "holm",
    "intervals", "median_change", "median_ranks", "odds_ratio", "p_chart",
    "proportion",
    "funnel_limits", "FUNNEL_LEVELS",
]

_METHODS = {"wilson": "wilson", "exact": "exact"}


# --------------------------------------------------------------------------
# helpers

def _numpy_types(name: str) -> tuple[type, ...]:
    """numpy's ``name`` type when numpy is loaded (a value cannot be one
    otherwise: checking for it must not import numpy)."""
    numpy = sys.modules.get("numpy")
    return (getattr(numpy, name),) if numpy is not None else ()


def _count(value, name: str) -> int:
    """An integer count >= 0 (bools and non-integral floats are refused)."""
    if isinstance(value, (bool, *_numpy_types("bool_"))):
        raise ValueError(f"{name} must be an integer count, got a bool")
    if isinstance(value, (float, *_numpy_types("floating"))):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        value = int(value)
    try:
        ivalue = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer count, got {value!r}") from None
    if ivalue != value:
        raise ValueError(f"{name} must be an integer count, got {value!r}")
    if ivalue < 0:
        raise ValueError(f"{name} must be >= 0, got {ivalue}")
    return ivalue


def _counts(k, n) -> tuple[int, int]:
    k = _count(k, "responders")
    n = _count(n, "n")
    if k > n:
        raise ValueError(f"responders ({k}) cannot exceed n ({n})")
    return k, n


def confidence_level(confidence) -> float:
    """A confidence level strictly between 0 and 1 (ValueError otherwise)."""
    c = float(confidence)
    if not 0.0 < c < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return c


def _opt(x) -> float | None:
    """A finite or infinite float; NaN (and None) become None."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


# --------------------------------------------------------------------------
# proportions

@dataclass(frozen=True)
class Proportion:
    responders: int
    n: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    method: str  # "wilson" | "exact"


class RateResult:
    """What every rate-shaped result shares: a dataclass with a field
    ``proportion`` (a :class:`Proportion`) beside what it is the rate of (a
    group, a condition, a reading).  Its n, responders, rate and interval read
    through to the proportion, and :meth:`to_dict` / :meth:`columns` give it
    flat (n, responders, rate, ci_low, ci_high where the proportion stands)."""

    proportion: Proportion

    @property
    def n(self) -> int:
        return self.proportion.n

    @property
    def responders(self) -> int:
        return self.proportion.responders

    @property
    def rate(self) -> float | None:
        return self.proportion.rate

    @property
    def ci_low(self) -> float | None:
        return self.proportion.ci_low

    @property
    def ci_high(self) -> float | None:
        return self.proportion.ci_high

    def to_dict(self) -> dict:
        out = {}
        for name, value in dataclasses.asdict(self).items():
            if name == "proportion":
                out.update((k, value[k]) for k in _FLAT_PROPORTION)
            else:
                out[name] = value
        return out

    @classmethod
    def columns(cls) -> list[str]:
        """The keys of :meth:`to_dict`, in order."""
        out = []
        for f in dataclasses.fields(cls):
            out.extend(_FLAT_PROPORTION if f.name == "proportion" else [f.name])
        return out


_FLAT_PROPORTION = ("n", "responders", "rate", "ci_low", "ci_high")


def proportion(responders: int, n: int, method: str = "wilson",
               confidence: float = 0.95) -> Proportion:
    """Responder rate with a two-sided interval.

    ``method="wilson"`` is the Wilson score interval without continuity
    correction (the default, SPEC 4); ``method="exact"`` is Clopper-Pearson:
    the numbers of ``scipy.stats.binomtest(k, n).proportion_ci`` (see
    :func:`_interval`).  ``n == 0`` gives ``rate``/``ci_*`` of ``None``.
    Raises ``ValueError`` unless ``0 <= responders <= n`` are whole numbers,
    ``method`` is known and ``0 < confidence < 1``.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be 'wilson' or 'exact', got {method!r}")
    k, n = _counts(responders, n)
    c = confidence_level(confidence)
    if n == 0:
        return Proportion(k, n, None, None, None, method)
    return Proportion(k, n, *_interval(k, n, method, c), method)


def _interval(k, n, method: str, confidence: float) -> tuple[float, float, float]:
    """Rate and two-sided interval of k of n (n > 0): the one implementation
    of SPEC §4's intervals, behind :func:`proportion` and :func:`intervals`.

    The numbers of scipy's ``binomtest(k, n).proportion_ci`` in plain Python
    (tests/test_stats.py checks both methods against statsmodels and scipy
    within 1e-12): Wilson is scipy's formula term for term; Clopper-Pearson
    the exact bounds of :mod:`analysis.core.binomial`.
    """
    rate = k / n
    if method == "wilson":
        z = binomial.normal_quantile(0.5 + 0.5 * confidence)
        denom = 2 * (n + z**2)
        center = (2 * n * rate + z**2) / denom
        delta = z / denom * math.sqrt(4 * n * rate * (1 - rate) + z**2)
        low = 0.0 if k == 0 else center - delta
        high = 1.0 if k == n else center + delta
    else:
        alpha = (1 - confidence) / 2
        low = binomial.lower_bound(int(k), int(n), alpha)
        high = binomial.upper_bound(int(k), int(n), alpha)
    return rate, low, high


def intervals(responders, n, method: str = "wilson", confidence: float = 0.95):
    """Rate and two-sided interval of many proportions at once (a grid):
    numpy arrays (rate, low, high), NaN where n = 0 or a count is missing
    (NaN); each cell is :func:`proportion`'s."""
    if method not in _METHODS:
        raise ValueError(f"unknown CI method {method!r}; one of wilson, exact")
    k = np.asarray(responders, dtype=float).ravel()
    size = np.asarray(n, dtype=float).ravel()
    known = np.isfinite(k) & np.isfinite(size) & (size != 0)
    if method == "exact" and np.any(known & ((k != np.floor(k)) | (size != np.floor(size)))):
        raise ValueError("exact intervals need whole counts")
    nan = (math.nan, math.nan, math.nan)
    cells = [_interval(a, b, method, confidence) if ok else nan
             for a, b, ok in zip(k.tolist(), size.tolist(), known.tolist())]
    shape = np.shape(np.asarray(n))
    return tuple(np.array([c[i] for c in cells], dtype=float).reshape(shape) for i in range(3))


@dataclass(frozen=True)
class ClaimTest:
    verdict: str  # "supported" | "contradicted" | "inconclusive" | "no data"
    n: int
    responders: int
    rate: float | None
    p_value: float | None       # one-sided exact binomial, H1: rate > target
    lower_bound: float | None   # one-sided exact (Clopper-Pearson) lower bound
    upper_bound: float | None   # one-sided exact (Clopper-Pearson) upper bound
    target: float


def claim_test(responders: int, n: int, target: float = 0.70,
               confidence: float = 0.95) -> ClaimTest:
    """Check a claimed responder rate ``target`` (SPEC 4, "claim check").

    * ``p_value``: exact one-sided binomial test, H1: rate > target
      (equal to ``binomtest(k, n, target, alternative="greater").pvalue``).
    * ``lower_bound``/``upper_bound``: one-sided exact Clopper-Pearson bounds
      at ``confidence`` (each is one end of the two-sided interval at level
      ``2 * confidence - 1``, i.e. 90% two-sided for 95% one-sided).
    * verdict: ``"supported"`` when ``lower_bound > target``,
      ``"contradicted"`` when ``upper_bound < target``, else
      ``"inconclusive"``; ``n == 0`` gives ``"no data"``.  Both comparisons
      are strict: a bound exactly equal to the target is inconclusive.

    By the duality of the exact test and the Clopper-Pearson bound,
    ``"supported"`` happens exactly when ``p_value < 1 - confidence``.
    """
    k, n = _counts(responders, n)
    c = confidence_level(confidence)
    t = float(target)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"target must be in [0, 1], got {target!r}")
    if n == 0:
        return ClaimTest("no data", 0, 0, None, None, None, None, t)
    lower, upper = exact_one_sided_bounds(k, n, c)
    if lower > t:
        verdict = "supported"
    elif upper < t:
        verdict = "contradicted"
    else:
        verdict = "inconclusive"
    # P(X >= k) for X ~ Binomial(n, t): the regularized incomplete beta
    # I_t(k, n - k + 1), what binom.sf(k - 1, n, t) computes.
    p_value = 1.0 if k == 0 else binomial.sf(k, n, t)
    return ClaimTest(verdict, n, k, k / n, p_value, lower, upper, t)


def exact_one_sided_bounds(k: int, n: int, confidence: float) -> tuple[float, float]:
    """One-sided exact (Clopper-Pearson) bounds of k of n at ``confidence``
    (:mod:`analysis.core.binomial`; what ``scipy.stats.binomtest(...)
    .proportion_ci`` finds by root search, within 1e-12, tests/test_perf.py)."""
    alpha = 1.0 - confidence
    return binomial.lower_bound(k, n, alpha), binomial.upper_bound(k, n, alpha)


# --------------------------------------------------------------------------
# paired change

@dataclass(frozen=True)
class PairedChange:
    n: int
    median: float | None
    ci_low: float | None
    ci_high: float | None
    wilcoxon_p: float | None


def median_ranks(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """The 1-based ranks (l, u) of the exact distribution-free interval
    [x_(l), x_(u)] for the median of n values, u = n + 1 - l: the largest l
    with P(B <= l - 1) <= (1 - confidence) / 2 for B ~ Binomial(n, 1/2), so
    the interval covers the population median with probability at least
    ``confidence`` for any distribution, discrete ones included.  None when
    even [x_(1), x_(n)] falls short (n <= 5 at 95%)."""
    alpha = (1 - confidence_level(confidence)) / 2
    if n < 1:
        return None
    # binom.cdf(l - 1) is increasing in l: the last l that keeps it <= alpha.
    l = int(stats.binom.ppf(alpha, n, 0.5))          # smallest k with cdf(k) >= alpha
    while l >= 1 and stats.binom.cdf(l - 1, n, 0.5) > alpha:
        l -= 1
    while stats.binom.cdf(l, n, 0.5) <= alpha:
        l += 1
    return None if l < 1 else (l, n + 1 - l)


def median_change(changes: Sequence[float], confidence: float = 0.95) -> PairedChange:
    """Median of paired changes (follow-up minus baseline) with its exact
    95% interval and the Wilcoxon signed-rank p-value (SPEC §4).

    * CI: the exact distribution-free (order-statistic, sign-test inversion)
      interval of :func:`median_ranks`, the interval
      ``scipy.stats.quantile_test(x, p=0.5).confidence_interval`` gives.
      Chosen over the percentile bootstrap because pain scores are whole or
      half points: many patients share a change, the bootstrap distribution
      of the median is then a handful of values and its percentiles
      collapse (or wander with the seed), and its coverage on discrete data
      is not guaranteed.  The order-statistic interval needs no resampling
      (the same data always give the same interval) and covers the median
      with at least 95% probability for any distribution, discrete ones
      included.  Its ends are data values: when so many patients changed by
      exactly the median's value that both ends land on it, the interval is
      that single value, which then is the statement that the median *is*
      that value with at least 95% confidence.  ``None`` for n <= 5.
    * ``wilcoxon_p``: two-sided Wilcoxon signed-rank p from
      ``scipy.stats.wilcoxon`` with its defaults: zero differences are
      dropped (``zero_method="wilcox"``); scipy 1.17 picks the exact null
      distribution when n <= 50 with no ties and no zeros, an exhaustive
      (hence deterministic) permutation test when there are ties/zeros and
      n <= 13, and the normal approximation (tie-corrected, no continuity
      correction) otherwise.  ``None`` when every difference is zero.

    ``n == 0`` -> everything ``None``; ``n == 1`` -> median only (the
    p-value of a single non-zero difference is 1.0).  Missing values are not
    dropped silently: NaN/inf raise ``ValueError``, so filter first.
    """
    x = np.asarray(changes, dtype=float).ravel()
    c = confidence_level(confidence)
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError("changes must be finite numbers (drop missing values first)")
    n = int(x.size)
    if n == 0:
        return PairedChange(0, None, None, None, None)
    med = float(np.median(x))
    p = None if np.all(x == 0) else _opt(stats.wilcoxon(x).pvalue)
    ranks = median_ranks(n, c)
    if ranks is None:
        return PairedChange(n, med, None, None, p)
    ordered = np.sort(x)
    return PairedChange(n, med, float(ordered[ranks[0] - 1]), float(ordered[ranks[1] - 1]), p)


# --------------------------------------------------------------------------
# multiplicity and group comparisons

def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values, in input order.

    ``None`` (and NaN) entries stay ``None`` and do not count towards the
    number of tests m.  With the present p-values sorted ascending,
    ``adj_(i) = max_{j <= i} min(1, (m - j + 1) * p_(j))`` (1-based), which is
    monotone and capped at 1.  Raises ``ValueError`` for p outside [0, 1].
    """
    present: list[tuple[int, float]] = []
    for i, p in enumerate(p_values):
        if p is None:
            continue
        p = float(p)
        if math.isnan(p):
            continue
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-value out of [0, 1]: {p!r}")
        present.append((i, p))
    out: list[float | None] = [None] * len(p_values)
    m = len(present)
    running = 0.0
    for rank, (i, p) in enumerate(sorted(present, key=lambda ip: ip[1])):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


@dataclass(frozen=True)
class GroupComparison:
    group: str
    responders: int
    n: int
    other_responders: int
    other_n: int
    odds_ratio: float | None  # sample OR (a*d)/(b*c) of the group vs the rest; may be 0 or inf
    p_value: float | None     # two-sided Fisher's exact
    p_holm: float | None      # Holm-adjusted across the groups that have a p


def compare_groups(counts: Mapping[str, tuple[int, int]]) -> list[GroupComparison]:
    """Each group's responder rate against all other groups pooled.

    ``counts`` maps group name -> ``(responders, n)``.  For every group the
    2x2 table ``[[k, n - k], [K - k, N - n]]`` (K, N = totals over all
    groups) goes to ``scipy.stats.fisher_exact`` (two-sided); the p-values
    are then Holm-adjusted across groups.  A group with ``n == 0`` or whose
    "others" have ``n == 0`` gets ``odds_ratio``/``p_value``/``p_holm`` of
    ``None`` and is not counted by Holm.  ``odds_ratio`` is the sample odds
    ratio reported by ``fisher_exact`` (0 or inf with a zero cell, ``None``
    when undefined, e.g. every patient a responder).  Output keeps input order.
    """
    parsed = [(str(g), *_counts(*kn)) for g, kn in counts.items()]
    total_k = sum(k for _, k, _ in parsed)
    total_n = sum(n for _, _, n in parsed)
    rows = []
    for g, k, n in parsed:
        ok, on = total_k - k, total_n - n
        if n == 0 or on == 0:
            rows.append((g, k, n, ok, on, None, None))
            continue
        res = stats.fisher_exact([[k, n - k], [ok, on - ok]], alternative="two-sided")
        rows.append((g, k, n, ok, on, _opt(res.statistic), float(res.pvalue)))
    adjusted = holm([r[6] for r in rows])
    return [GroupComparison(*r, p_holm=a) for r, a in zip(rows, adjusted)]


# --------------------------------------------------------------------------
# control charts and 2x2 tables

@dataclass(frozen=True)
class ControlLimits:
    centre: float | None        # pooled rate sum(k) / sum(n); None when sum(n) == 0
    lower: list[float | None]   # per subgroup; None where n_i == 0
    upper: list[float | None]


def p_chart(responders: Sequence[int], n: Sequence[int], sigma: float = 3.0) -> ControlLimits:
    """p-chart limits: ``centre +/- sigma * sqrt(centre * (1 - centre) / n_i)``
    clipped to [0, 1], with centre the pooled rate.  Subgroups with
    ``n_i == 0`` get ``None`` limits; if every ``n_i`` is 0 the centre is
    ``None`` too.  Raises ``ValueError`` on mismatched lengths or bad counts.
    """
    if len(responders) != len(n):
        raise ValueError("responders and n differ in length")
    sigma = float(sigma)
    if not sigma >= 0:
        raise ValueError("sigma must be >= 0")
    pairs = [_counts(k, m) for k, m in zip(responders, n)]
    total_n = sum(m for _, m in pairs)
    if total_n == 0:
        return ControlLimits(None, [None] * len(pairs), [None] * len(pairs))
    centre = sum(k for k, _ in pairs) / total_n
    lower: list[float | None] = []
    upper: list[float | None] = []
    for _, m in pairs:
        if m == 0:
            lower.append(None)
            upper.append(None)
            continue
        half = sigma * math.sqrt(centre * (1.0 - centre) / m)
        lower.append(max(0.0, centre - half))
        upper.append(min(1.0, centre + half))
    return ControlLimits(centre, lower, upper)


FUNNEL_LEVELS = (0.95, 0.998)   # "about 2 and 3 standard deviations" (Spiegelhalter 2005)


def funnel_limits(target: float, n, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Funnel-plot control limits for a proportion: the range of observed
    rates k/n that a unit of volume ``n`` shows with probability ``level``
    when its true rate is ``target`` (Spiegelhalter, Stat Med 2005;24:1185).

    Exact binomial, not the normal approximation (which is poor at the small
    volumes a funnel plot is for): for the lower limit p = (1 - level) / 2
    and the upper p = (1 + level) / 2, r is the smallest count with
    F(r) >= p under Binomial(n, target), interpolated between counts as
    ``(r - a) / n`` with ``a = (F(r) - p) / (F(r) - F(r - 1))``, so that the
    limits are smooth in n; clipped to [0, 1].  Returns (lower, upper)
    arrays, one value per n (n >= 1).
    """
    target = float(target)
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target must be a proportion, got {target!r}")
    c = confidence_level(level)
    volume = np.asarray(n, dtype=float)
    if np.any(volume < 1) or np.any(volume != np.floor(volume)):
        raise ValueError("volumes must be whole numbers of at least 1")
    if target in (0.0, 1.0):
        flat = np.full(volume.shape, target)
        return flat, flat.copy()

    def limit(p: float) -> np.ndarray:
        r = stats.binom.ppf(p, volume, target)
        at = stats.binom.cdf(r, volume, target)
        below = stats.binom.cdf(r - 1, volume, target)
        a = (at - p) / (at - below)
        return np.clip((r - a) / volume, 0.0, 1.0)

    return limit((1.0 - c) / 2.0), limit((1.0 + c) / 2.0)


@dataclass(frozen=True)
class OddsRatio:
    odds_ratio: float | None  # (a*d)/(b*c); 0 or inf with zero cells; None if undefined (0/0)
    ci_low: float | None      # Woolf (log) interval; None where scipy gives NaN
    ci_high: float | None
    p_value: float            # two-sided Fisher's exact


def odds_ratio(a: int, b: int, c: int, d: int, confidence: float = 0.95) -> OddsRatio:
    """Sample odds ratio of the 2x2 table ``[[a, b], [c, d]]``.

    ``scipy.stats.contingency.odds_ratio(table, kind="sample")`` gives the
    estimate (a*d)/(b*c) and its Woolf interval
    ``exp(log OR +/- z * sqrt(1/a + 1/b + 1/c + 1/d))``; the p-value is
    two-sided ``scipy.stats.fisher_exact``.  Zero cells never raise: scipy's
    values are kept as they come (OR 0 or inf, bounds 0 or inf) except NaN,
    which becomes ``None`` (e.g. a zero row or column makes the OR 0/0 ->
    ``None`` with the interval (0, inf); a zero in ``b`` or ``c`` only gives
    OR inf with ``ci_low`` ``None``).  Negative or non-integer counts raise
    ``ValueError``.
    """
    table = [[_count(a, "a"), _count(b, "b")], [_count(c, "c"), _count(d, "d")]]
    level = confidence_level(confidence)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = contingency.odds_ratio(table, kind="sample")
        ci = res.confidence_interval(confidence_level=level)
        p = stats.fisher_exact(table, alternative="two-sided").pvalue
    return OddsRatio(_opt(res.statistic), _opt(ci.low), _opt(ci.high), float(p))
