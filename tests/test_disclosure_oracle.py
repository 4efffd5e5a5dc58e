"""The faster protect() (analysis.core.disclosure) takes exactly the decisions
of the reference implementation it replaced (tests/helpers/
disclosure_reference.py, the module before it was made faster): the same
cells hidden, on random linked tables small and large (groups of unknowns
solved exactly and sparsely) and on the demo clinic's external publication.

tests/test_disclosure.py checks that the decisions protect; this file checks
that making protect() faster changed none of them.
"""

from __future__ import annotations

import random

import pytest

from analysis.core import disclosure
from tests.helpers import disclosure_reference as reference
from tests.helpers.disclosure_tables import SHAPES, random_count


def reference_copy(tables: disclosure.Tables) -> reference.Tables:
    """The same cells, sums and headline figures, in the reference's Tables."""
    copy = reference.Tables(tables.threshold)
    copy.values = dict(tables.values)
    copy.published = set(tables.published)
    copy.sums = [reference.Sum(s.total, s.parts) for s in tables.sums]
    copy.headline = set(tables.headline)
    return copy


def decisions(tables) -> tuple[str, object]:
    """Every hidden cell (published or not), or the error protect() raised."""
    try:
        tables.protect()
    except RuntimeError as error:
        return "error", str(error)
    return "hidden", frozenset(tables._hidden)


def assert_same_decisions(tables: disclosure.Tables) -> None:
    expected = decisions(reference_copy(tables))
    assert decisions(tables) == expected
    if expected[0] == "hidden":
        assert tables.withheld() == expected[1] & tables.published


def clinic_count(rng: random.Random) -> int:
    """Mostly 11 or more, as in a clinic: small counts here and there."""
    roll = rng.random()
    return 0 if roll < 0.04 else rng.randint(1, 10) if roll < 0.16 else rng.randint(11, 150)


def random_clinic(rng: random.Random, sites: int, conditions: int,
                  timepoints: int) -> disclosure.Tables:
    """Linked tables the size of a small clinic's publication: for each site
    and condition an ITT n shared by every timepoint, and at each timepoint
    completers (ITT minus those without a follow-up, never shown),
    responders and non-responders of both, with every margin over sites and
    over conditions; some grand totals are headline figures."""
    tables = disclosure.Tables()
    groups = [(s, c) for s in range(sites) for c in range(conditions)]
    itt = {g: clinic_count(rng) for g in groups}
    for g in groups:
        tables.cell(("itt", *g), itt[g])

    def margins(measure, published=True):
        for s in range(sites):
            parts = [(measure, s, c) for c in range(conditions)]
            tables.cell((measure, s, "all"), sum(tables.values[p] for p in parts), published)
            tables.add_sum((measure, s, "all"), parts)
        for c in range(conditions):
            parts = [(measure, s, c) for s in range(sites)]
            tables.cell((measure, "all", c), sum(tables.values[p] for p in parts), published)
            tables.add_sum((measure, "all", c), parts)
        total = sum(tables.values[(measure, *g)] for g in groups)
        tables.cell((measure, "all", "all"), total, published)
        tables.add_sum((measure, "all", "all"), [(measure, s, "all") for s in range(sites)])
        tables.add_sum((measure, "all", "all"), [(measure, "all", c) for c in range(conditions)])
        if rng.random() < 0.3:
            tables.headline.add((measure, "all", "all"))

    margins("itt")
    for t in range(timepoints):
        for g in groups:
            completers = itt[g] - rng.randint(0, itt[g] // 3 + 2) if itt[g] > 2 else itt[g]
            k = rng.randint(0, completers)
            tables.cell((f"completers{t}", *g), completers)
            tables.cell((f"missing{t}", *g), itt[g] - completers, published=False)
            tables.cell((f"k{t}", *g), k)
            tables.cell((f"nr_itt{t}", *g), itt[g] - k)
            tables.cell((f"nr_completers{t}", *g), completers - k)
        for measure in ("completers", "missing", "k", "nr_itt", "nr_completers"):
            margins(f"{measure}{t}", published=measure != "missing")
        for g in [*groups, *((s, "all") for s in range(sites)),
                  *(("all", c) for c in range(conditions)), ("all", "all")]:
            tables.add_sum(("itt", *g), [(f"completers{t}", *g), (f"missing{t}", *g)])
            tables.add_sum(("itt", *g), [(f"k{t}", *g), (f"nr_itt{t}", *g)])
            tables.add_sum((f"completers{t}", *g), [(f"k{t}", *g), (f"nr_completers{t}", *g)])
    return tables


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__)
def test_same_decisions_on_random_small_tables(shape):
    rng = random.Random(f"oracle-{shape.__name__}")
    for _ in range(150):
        assert_same_decisions(shape(rng))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__)
def test_same_decisions_when_every_group_is_solved_sparsely(shape, monkeypatch):
    monkeypatch.setattr(disclosure, "EXACT_UP_TO", 0)
    monkeypatch.setattr(reference, "EXACT_UP_TO", 0)
    rng = random.Random(f"oracle-sparse-{shape.__name__}")
    for _ in range(60):
        assert_same_decisions(shape(rng))


@pytest.mark.parametrize("seed", range(21))
def test_same_decisions_on_random_clinics(seed):
    """Large linked tables: groups of unknowns beyond EXACT_UP_TO are solved
    sparsely, the smaller ones exactly, over many rounds of complements."""
    rng = random.Random(f"oracle-clinic-{seed}")
    tables = random_clinic(rng, sites=rng.randint(2, 5), conditions=rng.randint(2, 6),
                           timepoints=rng.randint(1, 3))
    assert_same_decisions(tables)


def test_same_decisions_on_mid_sized_clinics_with_a_lower_exact_limit(monkeypatch):
    """Groups of 20-60 unknowns on both paths: solved sparsely here."""
    monkeypatch.setattr(disclosure, "EXACT_UP_TO", 20)
    monkeypatch.setattr(reference, "EXACT_UP_TO", 20)
    rng = random.Random("oracle-mid")
    for _ in range(15):
        assert_same_decisions(random_clinic(rng, sites=rng.randint(2, 3),
                                            conditions=rng.randint(2, 3), timepoints=1))


def test_the_comparison_can_fail(monkeypatch):
    """A protect() that takes one decision differently is caught."""
    rng = random.Random("oracle-fail")
    tables = random_clinic(rng, sites=3, conditions=3, timepoints=1)
    original = disclosure.Tables._hide_smallest

    def largest(self, keys, hidden):
        candidates = [k for k in keys if k not in hidden and self.values[k] > 0]
        if not candidates:
            return False
        hidden.add(max(candidates, key=lambda k: (self.values[k], repr(k))))
        return True

    monkeypatch.setattr(disclosure.Tables, "_hide_smallest", largest)
    with pytest.raises(AssertionError):
        assert_same_decisions(tables)
    monkeypatch.setattr(disclosure.Tables, "_hide_smallest", original)


def test_same_cells_withheld_in_the_demo_external_publication(demo_snapshot):
    from analysis.claims import publication

    tables = publication.external_publication(demo_snapshot)
    expected = reference_copy(tables)
    expected.protect()
    assert tables._hidden == expected._hidden
    assert tables.withheld() == expected.withheld()
    assert len(tables.withheld()) > 100   # the demo has many small cells
