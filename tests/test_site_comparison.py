"""Sites and providers on a funnel plot (issue 18): the control limits
against hand-worked binomial values, the rates against an independent
reading of the patient-outcome rows, the provider rule, and the external
audience's fixed, suppressed sites table."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from analysis.metrics import site_comparison
from analysis.core import stats
from analysis.core.audience import Audience
from analysis.core.filters import Filters
from tests.helpers.builders import ingested_snapshot


# --------------------------------------------------------------------------
# control limits


def test_limits_hand_worked():
    """n = 20, target 0.5, 95%: F(k) = sum C(20, i) / 2^20.
    Upper: F(13) = 988116 / 2^20 < 0.975 <= F(14) = 1026876 / 2^20, so r = 14
    and a = (1026876 - 0.975 * 2^20) / C(20, 14) = 4514.4 / 38760; the limit
    is (14 - a) / 20.  Lower: F(5) = 21700 / 2^20 < 0.025 <= F(6) = 60460 /
    2^20, a = (60460 - 0.025 * 2^20) / 38760 = 34245.6 / 38760."""
    low, high = stats.funnel_limits(0.5, [20], 0.95)
    assert high[0] == pytest.approx((14 - 4514.4 / 38760) / 20, abs=1e-12)
    assert low[0] == pytest.approx((6 - 34245.6 / 38760) / 20, abs=1e-12)
    # n = 10, target 0.3, 99.8%: the lower count would be 0 - a < 0: clipped
    low, high = stats.funnel_limits(0.3, [10], 0.998)
    f8 = sum(math.comb(10, i) * 0.3**i * 0.7**(10 - i) for i in range(9))
    f7 = f8 - math.comb(10, 8) * 0.3**8 * 0.7**2
    assert high[0] == pytest.approx((8 - (f8 - 0.999) / (f8 - f7)) / 10, abs=1e-12)
    assert low[0] == 0.0


def test_limits_by_brute_force_and_against_the_normal_approximation():
    for target, n in itertools.product((0.1, 0.37, 0.7), (1, 2, 5, 11, 40, 150)):
        for level in stats.FUNNEL_LEVELS:
            low, high = stats.funnel_limits(target, [n], level)
            pmf = [math.comb(n, k) * target**k * (1 - target)**(n - k) for k in range(n + 1)]
            cdf = list(itertools.accumulate(pmf))
            for p, limit in (((1 - level) / 2, low[0]), ((1 + level) / 2, high[0])):
                r = next(k for k in range(n + 1) if cdf[k] >= p - 1e-12)
                below = cdf[r - 1] if r else 0.0
                expected = (r - (cdf[r] - p) / (cdf[r] - below)) / n
                assert limit == pytest.approx(min(1.0, max(0.0, expected)), abs=1e-9)
    # large volumes: close to target +/- z sqrt(target (1 - target) / n)
    n = np.array([5000, 20000])
    for level in stats.FUNNEL_LEVELS:
        z = scipy_stats.norm.ppf((1 + level) / 2)
        low, high = stats.funnel_limits(0.4, n, level)
        half = z * np.sqrt(0.4 * 0.6 / n)
        assert np.allclose(high, 0.4 + half, atol=0.6 / n + 1e-4)
        assert np.allclose(low, 0.4 - half, atol=0.6 / n + 1e-4)
    # the funnel narrows as volume grows
    low, high = stats.funnel_limits(0.5, np.arange(1, 300), 0.95)
    assert np.all(np.diff(high - low)[20:] <= 1e-9)


def test_limits_refuse_nonsense():
    with pytest.raises(ValueError):
        stats.funnel_limits(1.2, [10], 0.95)
    with pytest.raises(ValueError):
        stats.funnel_limits(0.5, [0], 0.95)
    with pytest.raises(ValueError):
        stats.funnel_limits(0.5, [10], 1.5)
    flat_low, flat_high = stats.funnel_limits(0.0, [5, 10], 0.95)
    assert list(flat_low) == list(flat_high) == [0.0, 0.0]


def test_position():
    limits = (0.3, 0.7, 0.2, 0.8)
    assert site_comparison.position(0.85, *limits) == "above the 99.8% limit"
    assert site_comparison.position(0.75, *limits) == "above the 95% limit"
    assert site_comparison.position(0.7, *limits) == site_comparison.INSIDE
    assert site_comparison.position(0.3, *limits) == site_comparison.INSIDE
    assert site_comparison.position(0.25, *limits) == "below the 95% limit"
    assert site_comparison.position(0.1, *limits) == "below the 99.8% limit"


# --------------------------------------------------------------------------
# the comparison on the demo clinic


def _independent(snap, by, timepoint, definition, population, filters=Filters()):
    rows = snap.query("SELECT po.*, p.provider FROM patient_outcomes po "
                      "JOIN patients p USING (patient_id) "
                      "WHERE timepoint = $t AND definition = $d",
                      {"t": timepoint, "d": definition})
    if filters.sites:
        rows = rows[rows.site.isin(filters.sites)]
    chosen = rows[rows.eligible & rows.due] if population == "itt" else \
        rows[rows.eligible & rows.complete & rows.due]
    return chosen.groupby(by).agg(n=("responder", "size"), k=("responder", "sum"))


@pytest.mark.parametrize("by,timepoint,definition", [("site", "3m", "pain30"),
                                                      ("provider", "6m", "pain50"),
                                                      ("provider", "3m", "mme50")])
def test_rates_and_positions(demo_snapshot, by, timepoint, definition):
    result = site_comparison.compare(demo_snapshot, by, timepoint, definition)
    expected = _independent(demo_snapshot, by, timepoint, definition, "itt")
    got = result.groups.set_index("group")
    assert sorted(got.index) == sorted(expected.index)
    for group, row in expected.iterrows():
        assert (got.loc[group, "n"], got.loc[group, "responders"]) == (row.n, row.k)
        ci = stats.proportion(int(row.k), int(row.n))
        assert got.loc[group, "ci_low"] == pytest.approx(ci.ci_low)
        low95, high95 = stats.funnel_limits(result.program.rate, [row.n], 0.95)
        low998, high998 = stats.funnel_limits(result.program.rate, [row.n], 0.998)
        rate = row.k / row.n
        inside = low95[0] <= rate <= high95[0]
        assert (got.loc[group, "position"] == site_comparison.INSIDE) == inside
        if not low998[0] <= rate <= high998[0]:
            assert "99.8%" in got.loc[group, "position"]
    assert result.program.n == expected.n.sum() and result.program.responders == expected.k.sum()
    curve = result.funnel.set_index("n")
    assert curve.index.max() == expected.n.max()
    assert (curve.lower_998 <= curve.lower_95).all() and (curve.upper_95 <= curve.upper_998).all()
    assert not result.groups.suppressed.any()


def test_provider_is_the_clinician_of_the_first_treatment_session(tmp_path):
    rows = [
        # intake by A, first infusion by B: B
        ("P1", "2026-01-05", "intake", "A"), ("P1", "2026-01-10", "infusion", "B"),
        ("P1", "2026-01-12", "infusion", "A"),
        # no provider on treatment sessions, the intake's: C
        ("P2", "2026-01-05", "intake", "C"), ("P2", "2026-01-09", "infusion", ""),
        # a booster before ... the first session recording one
        ("P3", "2026-01-05", "infusion", ""), ("P3", "2026-01-07", "booster", "D"),
        ("P3", "2026-01-04", "intake", "E"),
        # none at all
        ("P4", "2026-01-05", "infusion", ""),
    ]
    path = tmp_path / "providers.csv"
    pd.DataFrame(rows, columns=["patient_id", "visit_date", "visit_type", "clinician"]).to_csv(
        path, index=False)
    snap = ingested_snapshot(tmp_path / "p.duckdb", [path])
    got = dict(snap.query("SELECT patient_id, provider FROM patients").values.tolist())
    assert got == {"P1": "B", "P2": "C", "P3": "D", "P4": "Unknown"}


def test_external_audience_gets_a_fixed_suppressed_sites_table(demo_snapshot):
    with pytest.raises(PermissionError, match="sites only"):
        site_comparison.compare(demo_snapshot, "provider", audience=Audience.EXTERNAL)
    for timepoint, definition in itertools.product(("3m", "12m"), ("pain30", "claim", "mme_stop")):
        # filters are ignored: one fixed table
        result = site_comparison.compare(demo_snapshot, "site", timepoint, definition,
                                         filters=Filters(sites=("Denver",)),
                                         audience=Audience.EXTERNAL)
        full = site_comparison.compare(demo_snapshot, "site", timepoint, definition)
        assert result.funnel is None
        assert list(result.groups.group) == list(full.groups.group)
        shown_n = [v for v in result.groups.n if v is not None]
        shown_k = [v for v in result.groups.responders if v is not None]
        assert all(not 1 <= v <= 10 for v in shown_n + shown_k)
        # nothing small by subtraction: total minus the shown parts
        for total, shown, every in ((result.program.n, shown_n, full.groups.n),
                                    (result.program.responders, shown_k,
                                     full.groups.responders)):
            if total is not None and len(shown) < len(every):
                assert not 1 <= total - sum(shown) <= 10
        for r in result.groups.itertuples():
            if r.n is not None and r.responders is not None:
                assert not 1 <= r.n - r.responders <= 10
            if r.suppressed:
                assert r.rate is None and r.position is None
    assert any(site_comparison.compare(demo_snapshot, "site", "12m", d,
                                       audience=Audience.EXTERNAL).groups.suppressed.any()
               for d in ("claim", "mme_stop"))
