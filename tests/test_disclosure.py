"""Complementary suppression (analysis.core.disclosure) against the attacks of
issue 14 and against brute force.

The brute-force check is independent of the algorithm: for every protected
random table it builds the linear system an attacker has (every sum, the
shown cells as constants, the hidden ones unknown), computes its null space
exactly (rational arithmetic) and enumerates every sum of hidden cells: a sum
the shown cells determine (its indicator is orthogonal to the null space)
must be 0 or at least 11.  A linear program then bounds each hidden small
count with counts never negative: none may be pinned to one value.
"""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

import numpy as np
import pytest
from scipy.optimize import linprog

from analysis.core import disclosure
from analysis.core.audience import SMALL_CELL
from tests.helpers.disclosure_tables import SHAPES, one_way, rate_table


# --------------------------------------------------------------------------
# the attacker's view


def null_space(matrix: list[list[Fraction]], width: int) -> list[list[Fraction]]:
    """A basis of {x : M x = 0}, by Gauss-Jordan elimination over Q."""
    rows = [list(r) for r in matrix if any(r)]
    pivot_of: dict[int, int] = {}
    r = 0
    for c in range(width):
        found = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if found is None:
            continue
        rows[r], rows[found] = rows[found], rows[r]
        rows[r] = [v / rows[r][c] for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                f = rows[i][c]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[r])]
        pivot_of[c] = r
        r += 1
    basis = []
    for free in (c for c in range(width) if c not in pivot_of):
        vector = [Fraction(0)] * width
        vector[free] = Fraction(1)
        for c, i in pivot_of.items():
            vector[c] = -rows[i][free]
        basis.append(vector)
    return basis


def attacker_system(tables: disclosure.Tables):
    """Unknowns (every hidden or unpublished cell) and the equations over them."""
    unknown = sorted((k for k in tables.values if tables.hidden(k)), key=repr)
    index = {k: j for j, k in enumerate(unknown)}
    rows, rhs = [], []
    for s in tables.sums:
        row = [Fraction(0)] * len(unknown)
        constant = 0
        for coefficient, key in [(1, s.total)] + [(-1, p) for p in s.parts]:
            if key in index:
                row[index[key]] += coefficient
            else:
                constant -= coefficient * tables.values[key]
        rows.append(row)
        rhs.append(constant)
    return unknown, rows, rhs


def derivable_sums(tables: disclosure.Tables, most: int = 14):
    """Every set of hidden cells whose sum the shown cells determine, with
    that sum: all subsets when at most ``most`` are hidden, else all subsets
    of the hidden cells under 11 (only those can add up to 1-10) when at most
    ``most`` are, else every subset of up to four of them."""
    unknown, rows, _ = attacker_system(tables)
    if not unknown:
        return []
    basis = null_space(rows, len(unknown))
    values = np.array([tables.values[k] for k in unknown], dtype=np.int64)
    if basis:
        scale = [np.lcm.reduce([v.denominator for v in b]) for b in basis]
        null = np.array([[int(v * s) for v in b] for b, s in zip(basis, scale)],
                        dtype=np.int64).T                       # unknowns x null dimension
    else:
        null = np.zeros((len(unknown), 1), dtype=np.int64)
    if len(unknown) <= most:
        masks = ((np.arange(1, 2 ** len(unknown))[:, None] >> np.arange(len(unknown))) & 1)
    else:
        # Only cells under 11 can be in a sum from 1 to 10 (counts are never
        # negative): every subset of those when they are few, else every
        # subset of up to four of them.
        under = [j for j, k in enumerate(unknown) if tables.values[k] < SMALL_CELL]
        if len(under) <= most:
            picks = ((np.arange(1, 2 ** len(under))[:, None] >> np.arange(len(under))) & 1)
        else:
            picks = np.array([[1 if j in combo else 0 for j in range(len(under))]
                              for size in range(1, 5)
                              for combo in itertools.combinations(range(len(under)), size)])
        masks = np.zeros((len(picks), len(unknown)), dtype=np.int64)
        masks[:, under] = picks
    determined = np.all(masks @ null == 0, axis=1)
    sums = masks @ values
    return [([unknown[j] for j in np.flatnonzero(mask)], int(total))
            for mask, total, fixed in zip(masks, sums, determined) if fixed]


def bounds(tables: disclosure.Tables, key) -> tuple[float, float]:
    """The least and greatest value of a hidden cell an attacker can tell,
    counts never negative (a linear program)."""
    unknown, rows, rhs = attacker_system(tables)
    j = unknown.index(key)
    a_eq = np.array([[float(v) for v in row] for row in rows]) if rows else None
    b_eq = np.array(rhs, dtype=float) if rows else None
    objective = np.zeros(len(unknown))
    objective[j] = 1
    low = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    high = linprog(-objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    assert low.status == 0
    return low.fun, (float("inf") if high.status == 3 else -high.fun)


def assert_protected(tables: disclosure.Tables) -> None:
    tables.protect()
    for key in tables.published:
        if 0 < tables.values[key] < SMALL_CELL:
            assert tables.hidden(key), f"small count shown: {key}"
    for cells, total in derivable_sums(tables):
        assert not 0 < total < SMALL_CELL, f"derivable: {cells} = {total}"
    for key in tables.values:
        if tables.hidden(key) and 0 < tables.values[key] < SMALL_CELL:
            low, high = bounds(tables, key)
            assert high - low > 0.5, f"{key} pinned to {low}"


# --------------------------------------------------------------------------
# the attacks of issue 14, by hand


def test_a_lone_small_part_gets_a_complement_so_the_total_does_not_give_it_away():
    # new patients 234 − (74 + 46 + 113) = 1
    tables = one_way({"Boulder": 74, "Denver": 46, "Colorado Springs": 113, "Pueblo": 1})
    assert tables.withheld() == {"Pueblo", "Denver"}
    assert tables.shown("total") == 234
    assert_protected(tables)


def test_two_small_parts_adding_up_to_under_11_get_a_third():
    # the old rule added a complement only when exactly one cell was hidden
    tables = one_way({"a": 3, "b": 4, "c": 50, "d": 80})
    assert tables.withheld() == {"a", "b", "c"}
    assert_protected(tables)


def test_hidden_parts_adding_up_to_11_or_more_need_no_complement():
    tables = one_way({"a": 5, "b": 7, "c": 50})
    assert tables.withheld() == {"a", "b"}
    assert_protected(tables)


def test_a_small_total_is_hidden_with_its_parts():
    tables = one_way({"a": 0, "b": 4, "c": 3})
    assert tables.withheld() == {"b", "c", "total"}
    assert_protected(tables)


def test_itt_minus_completers_cannot_give_the_patients_without_a_follow_up():
    # 59 ITT, 50 completers: 9 patients without a follow-up, never shown
    tables = disclosure.Tables()
    tables.cell("itt", 59)
    tables.cell("completers", 50)
    tables.cell("missing", 9, published=False)
    tables.add_sum("itt", ["completers", "missing"])
    assert tables.withheld() == {"completers"}
    assert tables.shown("itt") == 59
    assert_protected(tables)


def test_a_headline_figure_is_kept_and_the_other_side_of_its_difference_withheld():
    # the claim's n 907 beside mme50's n 916 gives away the 9 patients with one
    # baseline; the claim check's headline (the claim's n) stays, mme50's goes
    tables = disclosure.Tables()
    tables.cell("mme50 n", 916)
    tables.cell("claim n", 907)
    tables.cell("one baseline", 9, published=False)
    tables.add_sum("mme50 n", ["claim n", "one baseline"])
    tables.headline = {"claim n"}
    assert tables.withheld() == {"mme50 n"}
    assert tables.shown("claim n") == 907
    assert_protected(tables)


def test_a_headline_total_keeps_its_place_while_its_parts_complement_each_other():
    tables = one_way({"Boulder": 74, "Denver": 46, "Colorado Springs": 113, "Pueblo": 1})
    tables.headline = {"total"}
    assert tables.shown("total") == 234
    assert "total" not in tables.withheld() and "Pueblo" in tables.withheld()
    assert_protected(tables)


def test_a_numerator_under_11_inside_a_large_group_is_hidden_with_its_rate():
    # "1 of 122" responders: n stays, the numerator (and so the rate) goes
    tables = rate_table({"Migraine": (122, 1), "Neuropathy": (80, 40), "Lupus": (60, 25)})
    assert tables.hidden(("k", "Migraine")) and tables.shown(("n", "Migraine")) == 122
    assert tables.shown(("k", "all")) == 66
    assert_protected(tables)


def test_a_quarter_and_its_months_cannot_be_differenced():
    tables = disclosure.Tables()
    months = {"Jan": 30, "Feb": 4, "Mar": 25, "Apr": 20, "May": 22, "Jun": 18}
    for month, value in months.items():
        tables.cell(month, value)
    tables.cell("Q1", 59)
    tables.cell("Q2", 60)
    tables.cell("H1", 119)
    tables.add_sum("Q1", ["Jan", "Feb", "Mar"])
    tables.add_sum("Q2", ["Apr", "May", "Jun"])
    tables.add_sum("H1", ["Q1", "Q2"])
    assert tables.hidden("Feb") and tables.hidden("Mar")
    assert_protected(tables)


def test_a_bridge_between_two_hidden_patterns_is_caught_by_the_exact_check():
    # In both rows the hidden cells add up to 11 or more, yet row b's single
    # hidden cell is the row total minus its shown cells, and with it the
    # column gives a's small count away: the exact check hides one more.
    tables = rate_table({"a": (40, 3), "b": (30, 20), "c": (50, 25)})
    assert_protected(tables)
    assert not tables.shown(("k", "a"))


# --------------------------------------------------------------------------
# brute force


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__)
def test_brute_force_on_random_small_tables(shape):
    rng = random.Random(f"issue14-{shape.__name__}")
    hidden_somewhere = 0
    for _ in range(250):   # 5 shapes x 250 = 1,250 tables
        tables = shape(rng)
        assert_protected(tables)
        hidden_somewhere += bool(tables.withheld())
    assert hidden_somewhere > 150     # the tables did exercise suppression


def test_the_check_catches_the_old_rule():
    """The brute-force check is not blind: the old rule (one complement only
    when exactly one cell is hidden) fails it."""
    tables = one_way({"a": 3, "b": 4, "c": 50, "d": 80})
    tables._hidden = {"a", "b"}
    with pytest.raises(AssertionError, match="derivable"):
        for cells, total in derivable_sums(tables):
            assert not 0 < total < SMALL_CELL, f"derivable: {cells} = {total}"


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__)
def test_brute_force_with_the_sparse_solver_for_every_group(shape, monkeypatch):
    """Large publications (the claim check's every reading) solve their
    groups of hidden cells by sparse elimination modulo a prime: forced on
    for every group here, it must pass the same brute force (60 tables a
    shape, 300 in all)."""
    monkeypatch.setattr(disclosure, "EXACT_UP_TO", 0)
    rng = random.Random(f"issue14-sparse-{shape.__name__}")
    for _ in range(60):
        assert_protected(shape(rng))


# --------------------------------------------------------------------------
# one table: its rows and their total (what privacy.suppress did, asked of
# Tables directly), and a table of rates (disclosure.rate_table)


def _one_table(ns: list[int]) -> set[str]:
    """The rows of one table withheld, beside a total the reader knows."""
    tables = disclosure.Tables()
    rows = [tables.cell(f"g{i}", n) for i, n in enumerate(ns)]
    tables.cell("All", sum(ns))
    tables.add_sum("All", rows)
    return {key for key in rows if tables.hidden(key)}


def test_cells_under_11_are_withheld_and_10_is_small_11_is_not():
    assert _one_table([10, 11, 50, 60]) == {"g0", "g1"}   # 11 hidden as the complement


def test_one_hidden_cell_beside_a_total_hides_the_next_smallest():
    assert _one_table([4, 30, 20]) == {"g0", "g2"}   # 4 and the smallest visible (20)


def test_two_hidden_cells_adding_up_to_under_11_get_a_complement():
    # Issue 14: the old rule left 3 and 5 hidden beside a total of 48 and a
    # shown 40, so 48 - 40 = 8 gave their sum away; now 40 is hidden too.
    assert _one_table([3, 5, 40]) == {"g0", "g1", "g2"}
    assert _one_table([40, 50, 60]) == set()


def test_hidden_cells_adding_up_to_11_or_more_need_no_complement():
    assert _one_table([5, 7, 40]) == {"g0", "g1"}


def test_a_rate_table_withholds_small_responders_and_their_complements():
    """A group's responders from 1 to 10 are withheld as its n is (SPEC §4:
    no numerator from 1 to 10), with a complement, and no withheld count can
    be worked out from the shown ones."""
    groups = {"a": (40, 3), "b": (50, 30), "c": (60, 40), "d": (5, 5)}
    total = (155, 78)
    tables = disclosure.rate_table(groups, total)
    hidden_k = {g for g in groups if tables.hidden(("k", g))}
    hidden_n = {g for g in groups if tables.hidden(("n", g))}
    assert "a" in hidden_k                               # 3 responders of 40
    assert "d" in hidden_n and "d" in hidden_k           # 5 patients
    assert len(hidden_k) >= 2 and len(hidden_n) >= 2    # each with a complement
    shown_k = sum(groups[g][1] for g in groups if g not in hidden_k)
    assert total[1] - shown_k == 0 or total[1] - shown_k >= SMALL_CELL
    shown_n = sum(groups[g][0] for g in groups if g not in hidden_n)
    assert total[0] - shown_n == 0 or total[0] - shown_n >= SMALL_CELL
