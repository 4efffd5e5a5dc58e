"""Linked tables for the disclosure tests: one-way tables and random small
publications of five shapes (one-way, two-way, rates, a hierarchy, ITT and
completers), with counts that are often 0 or 1-10."""

from __future__ import annotations

import random

from analysis.core import disclosure


def one_way(values: dict[str, int], total: str = "total") -> disclosure.Tables:
    tables = disclosure.Tables()
    for key, value in values.items():
        tables.cell(key, value)
    tables.cell(total, sum(values.values()))
    tables.add_sum(total, list(values))
    return tables


def rate_table(groups: dict[str, tuple[int, int]]) -> disclosure.Tables:
    """Groups with n and responders k (non-responders n − k), and the total."""
    tables = disclosure.Tables()
    for g, (n, k) in groups.items():
        tables.cell(("n", g), n)
        tables.cell(("k", g), k)
        tables.cell(("nr", g), n - k)
        tables.add_sum(("n", g), [("k", g), ("nr", g)])
    for measure in ("n", "k", "nr"):
        tables.cell((measure, "all"), sum(tables.values[(measure, g)] for g in groups))
        tables.add_sum((measure, "all"), [(measure, g) for g in groups])
    tables.add_sum(("n", "all"), [("k", "all"), ("nr", "all")])
    return tables


def random_count(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.15:
        return 0
    if roll < 0.55:
        return rng.randint(1, 10)
    return rng.randint(11, 60)


def random_one_way(rng):
    return one_way({f"p{i}": random_count(rng) for i in range(rng.randint(2, 7))})


def random_two_way(rng):
    rows, columns = rng.randint(2, 4), rng.randint(2, 4)
    tables = disclosure.Tables()
    grid = {(r, c): random_count(rng) for r in range(rows) for c in range(columns)}
    for key, value in grid.items():
        tables.cell(key, value)
    for r in range(rows):
        tables.cell((r, "all"), sum(grid[(r, c)] for c in range(columns)))
        tables.add_sum((r, "all"), [(r, c) for c in range(columns)])
    for c in range(columns):
        tables.cell(("all", c), sum(grid[(r, c)] for r in range(rows)))
        tables.add_sum(("all", c), [(r, c) for r in range(rows)])
    tables.cell(("all", "all"), sum(grid.values()))
    tables.add_sum(("all", "all"), [(r, "all") for r in range(rows)])
    tables.add_sum(("all", "all"), [("all", c) for c in range(columns)])
    return tables


def random_rates(rng):
    groups = {}
    for g in range(rng.randint(2, 5)):
        n = random_count(rng)
        groups[f"g{g}"] = (n, rng.randint(0, n))
    return rate_table(groups)


def random_hierarchy(rng):
    tables = disclosure.Tables()
    quarters = []
    for q in range(rng.randint(2, 3)):
        months = [tables.cell((q, m), random_count(rng)) for m in range(3)]
        quarters.append(tables.cell(("Q", q), sum(tables.values[m] for m in months)))
        tables.add_sum(("Q", q), months)
    tables.cell("year", sum(tables.values[q] for q in quarters))
    tables.add_sum("year", quarters)
    return tables


def random_itt_completers(rng):
    """Groups with ITT n = completers n + missing (never shown) and shared responders."""
    tables = disclosure.Tables()
    groups = [f"g{i}" for i in range(rng.randint(1, 4))]
    for g in groups:
        completers = random_count(rng)
        missing = random_count(rng)
        k = rng.randint(0, completers)
        tables.cell(("itt", g), completers + missing)
        tables.cell(("completers", g), completers)
        tables.cell(("missing", g), missing, published=False)
        tables.cell(("k", g), k)
        tables.cell(("nr_itt", g), completers + missing - k)
        tables.cell(("nr_completers", g), completers - k)
        tables.add_sum(("itt", g), [("completers", g), ("missing", g)])
        tables.add_sum(("itt", g), [("k", g), ("nr_itt", g)])
        tables.add_sum(("completers", g), [("k", g), ("nr_completers", g)])
    for measure in ("itt", "completers", "missing", "k", "nr_itt", "nr_completers"):
        total = sum(tables.values[(measure, g)] for g in groups)
        tables.cell((measure, "all"), total, published=measure != "missing")
        tables.add_sum((measure, "all"), [(measure, g) for g in groups])
    tables.add_sum(("itt", "all"), [("completers", "all"), ("missing", "all")])
    return tables


SHAPES = [random_one_way, random_two_way, random_rates, random_hierarchy, random_itt_completers]
