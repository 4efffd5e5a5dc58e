"""Small-cell suppression that holds across linked tables (SPEC §4).

A :class:`Tables` holds counts (cells) and the sums that tie them together
(``total = part + part + ...``): a table's total and its rows, a group's n
and its responders and non-responders, ITT n and completers n and the
patients without a follow-up, the same count shown in two tables (one key).
A cell is *published* when some table shows it; a derived count no table
shows (ITT n minus completers n) is a cell too, never published, so that it
is protected like any other.

:meth:`Tables.protect` decides which published cells are withheld:

1. primary suppression: every count from 1 to 10;
2. complementary suppression, until in every sum the hidden cells add up to
   0 or at least 11 (a lone hidden cell, or hidden cells adding up to 1–10,
   would be the total minus the shown parts);
3. until no count from 1 to 10 is determined by the shown cells through any
   chain of sums: each group of hidden cells linked by sums is solved
   exactly (rational arithmetic), and a hidden cell whose value the shown
   ones fix is given a further hidden neighbour.

Complements are the smallest shown non-zero cells in the sum that needs one
(the least information lost), so every hidden cell is either a small count
or a count of 11 or more.  ``tests/test_disclosure.py`` checks the result
against brute force on thousands of random small tables: no hidden cell and
no sum of hidden cells with a value from 1 to 10 is a linear combination of
shown cells, and no hidden small count is pinned by the bounds (counts are
never negative).

Why not a library: ``pytauargus`` (τ-ARGUS) protects crosstabs of
microdata, which would mean writing patient-level rows to its temporary
files, and its protection levels are percentages of a cell rather than the
absolute "no sum from 1 to 10"; ``acro`` (SACRO) checks outputs and applies
primary suppression only, re-computing margins without the suppressed rows.
Neither expresses this product's links (ITT and completers, a safety table's
infusions = the activity table's infusions + boosters).
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from typing import Hashable, Iterable, Mapping

from analysis.core.audience import SMALL_CELL

Key = Hashable


@dataclass(frozen=True)
class Sum:
    total: Key
    parts: tuple[Key, ...]


class Tables:
    """Counts and the sums that link them, protected as one publication."""

    def __init__(self, threshold: int = SMALL_CELL):
        self.threshold = threshold
        self.values: dict[Key, int] = {}
        self.published: set[Key] = set()
        self.sums: list[Sum] = []
        #: Cells taken as a complement only when no other cell can be: the
        #: whole program's figures a reader comes for (a breakdown cell is
        #: withheld before its total).
        self.headline: set[Key] = set()
        self._hidden: set[Key] | None = None

    # -- building ---------------------------------------------------------

    def cell(self, key: Key, value: int, published: bool = True) -> Key:
        """A count; the same key again is the same cell (it must have the
        same value), published if any table shows it."""
        value = int(value)
        if value < 0:
            raise ValueError(f"a count cannot be negative: {key!r} = {value}")
        known = self.values.get(key)
        if known is not None and known != value:
            raise ValueError(f"cell {key!r} has two values: {known} and {value}")
        self.values[key] = value
        if published:
            self.published.add(key)
        self._hidden = None
        return key

    def add_sum(self, total: Key, parts: Iterable[Key]) -> None:
        """``total = sum(parts)``: every key must be a cell already."""
        parts = tuple(parts)
        for key in (total, *parts):
            if key not in self.values:
                raise KeyError(f"not a cell: {key!r}")
        if sum(self.values[p] for p in parts) != self.values[total]:
            raise ValueError(f"{total!r} = {self.values[total]} is not the sum of its parts "
                             f"({sum(self.values[p] for p in parts)})")
        if parts:
            self.sums.append(Sum(total, parts))
            self._hidden = None

    # -- reading ----------------------------------------------------------

    def hidden(self, key: Key) -> bool:
        """Whether a published cell is withheld (an unknown key: True)."""
        if self._hidden is None:
            self.protect()
        return key not in self.values or key in self._hidden

    def shown(self, key: Key) -> int | None:
        """The value of a cell the audience may see, else None."""
        return None if self.hidden(key) else self.values[key]

    def withheld(self) -> set[Key]:
        """The published cells that are withheld."""
        if self._hidden is None:
            self.protect()
        return set(self._hidden & self.published)

    # -- protecting -------------------------------------------------------

    def small(self, key: Key) -> bool:
        return 0 < self.values[key] < self.threshold

    def protect(self) -> set[Key]:
        """Decide what is withheld; returns the withheld published cells."""
        hidden = {k for k in self.values if k not in self.published or self.small(k)}
        self._sum_cells = [(s.total, *s.parts) for s in self.sums]   # each sum's cells
        by_cell: dict[Key, list[int]] = defaultdict(list)
        for i, s in enumerate(self.sums):
            for key in (s.total, *s.parts):
                by_cell[key].append(i)
        # Each group of unknowns solved once: a complement changes only the
        # group it joins, and the others come round again unchanged.
        solved: dict[tuple, list[set[Key]]] = {}
        while True:
            if self._complete_sums(hidden):
                continue
            leaks = self._leaks(hidden, by_cell, solved)
            if not leaks:
                break
            hid = False
            for cells, sums in leaks:
                # A cell hidden for one leak may already close the next.
                if not self._hide_in(sums, hidden, by_cell):
                    if hid:
                        break
                    raise RuntimeError(f"cannot protect {sorted(map(repr, cells))}: "
                                       "no cell left to hide")
                hid = True
        self._hidden = hidden
        return self.withheld()

    def _cells_of(self, i: int) -> tuple[Key, ...]:
        return self._sum_cells[i]

    def _hide_smallest(self, keys: Iterable[Key], hidden: set[Key]) -> bool:
        """Hide the smallest shown non-zero cell among ``keys`` (a zero would
        hide nothing); False when there is none."""
        candidates = [k for k in keys if k not in hidden and self.values[k] > 0]
        if not candidates:
            return False
        hidden.add(min(candidates, key=lambda k: (k in self.headline, self.values[k], repr(k))))
        return True

    def _complete_sums(self, hidden: set[Key]) -> bool:
        """One pass of rule 2; True when a cell was hidden."""
        changed = False
        for s in self.sums:
            hidden_parts = [p for p in s.parts if p in hidden]
            if s.total in hidden:
                if hidden_parts or not self.small(s.total):
                    continue
                # A hidden small total is the sum of its shown parts.
                changed |= self._hide_smallest(s.parts, hidden)
                continue
            derived = sum(self.values[p] for p in hidden_parts)
            if 0 < derived < self.threshold:
                # a part, else the total; a headline cell only when no other will do
                ordinary = [k for k in s.parts if k not in self.headline]
                total = [] if s.total in self.headline else [s.total]
                changed |= (self._hide_smallest(ordinary, hidden)
                            or self._hide_smallest(total, hidden)
                            or self._hide_smallest(s.parts, hidden)
                            or self._hide_smallest([s.total], hidden))
        return changed

    def _leaks(self, hidden: set[Key], by_cell, solved: dict | None = None
               ) -> list[tuple[set[Key], list[int]]]:
        """Rule 3: every small count (or sum of counts) the shown cells
        determine, with the sums to add a hidden cell to.

        First the hidden cells a chain of sums fixes one at a time (a sum
        with a single unknown cell), then, in each group of the remaining
        unknowns linked by sums, an exact solution of the whole system.
        ``solved`` keeps each group's solution by its cells and sums (the
        values do not change while protecting), so a group is solved once."""
        if solved is None:
            solved = {}
        unknown = set(hidden)
        fixed_by: dict[Key, int] = {}
        leaks: list[tuple[set[Key], list[int]]] = []
        queue = list(range(len(self.sums)))
        while queue:
            i = queue.pop()
            open_cells = [k for k in self._cells_of(i) if k in unknown]
            if len(open_cells) != 1:
                continue
            key = open_cells[0]
            unknown.discard(key)
            fixed_by[key] = i
            if self.small(key):
                leaks.append(({key}, self._chain(i, fixed_by, hidden)))
            queue.extend(by_cell[key])
        if leaks:
            return leaks
        for cells, sums in self._components(unknown, by_cell):
            if not any(self.small(k) for k in cells):
                continue
            found = solved.get((tuple(cells), tuple(sums)))
            if found is None:
                found = solved[tuple(cells), tuple(sums)] = self._solve(cells, sums)
            for leak in filter(None, found):
                near = [i for i in sums if any(k in leak for k in self._cells_of(i))]
                leaks.append((leak, near + [i for i in sums if i not in near]))
        return leaks

    def _solve(self, cells: list[Key], sums: list[int]) -> list[set[Key]]:
        """The small counts or sums a group of unknowns and its sums fix."""
        equations = [[(1, self.sums[i].total)] + [(-1, p) for p in self.sums[i].parts]
                     for i in sums]
        if len(cells) <= EXACT_UP_TO:
            return [small_derivable_sum(cells, equations, self.values, self.threshold)]
        return sparse_small_derivable_sums(cells, equations, self.values, self.threshold)

    def _chain(self, i: int, fixed_by: dict[Key, int], hidden: set[Key]) -> list[int]:
        """Where a further hidden cell would help, best first: the sums that
        fixed the hidden cells the sum fixing a small count relies on, the
        earliest link first (a lone hidden complement in its own row is the
        usual culprit, and hiding a second cell there protects the whole
        chain), the sum that fixed the small count last."""
        order, seen, queue = [], set(), [i]
        while queue:
            j = queue.pop(0)
            if j in seen:
                continue
            seen.add(j)
            order.append(j)
            queue.extend(fixed_by[k] for k in self._cells_of(j)
                         if k in hidden and k in fixed_by and fixed_by[k] != j)
        return order[::-1]

    def _components(self, unknown: set[Key], by_cell) -> list[tuple[list[Key], list[int]]]:
        """Groups of unknown cells linked by sums, with the sums linking them."""
        seen: set[Key] = set()
        components = []
        for start in sorted(unknown, key=repr):
            if start in seen or start not in by_cell:
                continue
            cells, sums, stack = [], set(), [start]
            seen.add(start)
            while stack:
                key = stack.pop()
                cells.append(key)
                for i in by_cell[key]:
                    if i in sums:
                        continue
                    sums.add(i)
                    for other in self._cells_of(i):
                        if other in unknown and other not in seen:
                            seen.add(other)
                            stack.append(other)
            components.append((cells, sorted(sums)))
        return components

    def _hide_in(self, sums: list[int], hidden: set[Key], by_cell) -> bool:
        """Hide the smallest shown non-zero cell of the first of ``sums``
        that has one; when none has, of the sums linked to them through
        hidden cells, and so on outwards (zeros around a small count)."""
        seen = set(sums)
        frontier = list(sums)
        while frontier:
            # a breakdown cell anywhere in these sums before a headline one
            for i in frontier:
                if self._hide_smallest([k for k in self._cells_of(i) if k not in self.headline],
                                       hidden):
                    return True
            for i in frontier:
                if self._hide_smallest(self._cells_of(i), hidden):
                    return True
            following = []
            for i in frontier:
                for key in self._cells_of(i):
                    if key in hidden:
                        for j in by_cell[key]:
                            if j not in seen:
                                seen.add(j)
                                following.append(j)
            frontier = following
        return False


def rate_table(groups: Mapping[Key, tuple[int, int]], total: tuple[int, int],
               total_key: Key = "All") -> Tables:
    """One table of responder rates for outsiders, protected: each group's n
    and responders and the total's, with the sums an outsider knows (a
    group's n = its responders + its non-responders; the groups' n,
    responders and non-responders add up to the total's).  ``groups`` maps a
    group to (n, responders), ``total`` is the whole table's.  Ask the result
    ``hidden(("n", group))`` and ``hidden(("k", group))`` (``total_key`` for
    the total)."""
    tables = Tables()
    for name, (n, k) in [(total_key, total), *groups.items()]:
        tables.cell(("n", name), n)
        tables.cell(("k", name), k)
        tables.cell(("other", name), n - k, published=False)
        tables.add_sum(("n", name), [("k", name), ("other", name)])
    for kind in ("n", "k", "other"):
        tables.add_sum((kind, total_key), [(kind, g) for g in groups])
    return tables


def _reduced(rows: list[list[Fraction]], width: int) -> tuple[list[list[Fraction]], list[int]]:
    """Reduced row echelon form over the rationals: (non-zero rows, pivot columns)."""
    matrix = [list(r) for r in rows if any(r)]
    pivots: list[int] = []
    r = 0
    for c in range(width):
        if r == len(matrix):
            break
        pivot = next((i for i in range(r, len(matrix)) if matrix[i][c] != 0), None)
        if pivot is None:
            continue
        matrix[r], matrix[pivot] = matrix[pivot], matrix[r]
        lead = matrix[r][c]
        matrix[r] = [v / lead for v in matrix[r]]
        for i in range(len(matrix)):
            if i != r and matrix[i][c] != 0:
                factor = matrix[i][c]
                matrix[i] = [a - factor * b for a, b in zip(matrix[i], matrix[r])]
        pivots.append(c)
        r += 1
    return matrix[:r], pivots


def _null_space(rows: list[list[Fraction]], width: int) -> list[list[Fraction]]:
    """A basis of {x : rows · x = 0}."""
    matrix, pivots = _reduced(rows, width)
    basis = []
    for free in (c for c in range(width) if c not in set(pivots)):
        vector = [Fraction(0)] * width
        vector[free] = Fraction(1)
        for row, c in zip(matrix, pivots):
            vector[c] = -row[free]
        basis.append(vector)
    return basis


MOST_FREE = 16   # beyond 2**16 candidate sums a component is treated as leaking


def small_derivable_sum(cells: list[Key], equations: list[list[tuple[int, Key]]],
                        values: dict[Key, int], threshold: int = SMALL_CELL) -> set[Key]:
    """A set of ``cells`` (the unknowns) whose sum the ``equations`` fix at a
    value from 1 to ``threshold`` - 1, or an empty set when there is none.

    ``equations``: each as (coefficient, key) pairs, keys outside ``cells``
    known.  A sum of unknowns is fixed when its indicator lies in the row
    space, i.e. is orthogonal to the null space.  Only unknowns under the
    threshold can be in a small sum (counts are never negative), so the
    search runs over those: their indicators orthogonal to the null space
    form a subspace, whose 0/1 vectors are enumerated from its free
    coordinates.  Exact (rational arithmetic)."""
    index = {k: j for j, k in enumerate(cells)}
    rows = []
    for equation in equations:
        vector = [Fraction(0)] * len(cells)
        for coefficient, key in equation:
            j = index.get(key)
            if j is not None:
                vector[j] += coefficient
        rows.append(vector)
    null = _null_space(rows, len(cells))
    under = [k for k in cells if values[k] < threshold]
    if not any(values[k] > 0 for k in under):
        return set()
    # s (over ``under``) is fixed when sum_i s_i * v[i] = 0 for every null vector v.
    constraints = [[v[index[k]] for k in under] for v in null]
    fixed = _null_space(constraints, len(under))            # a basis of the fixed sums
    if not fixed:
        return set()
    # In reduced form, a vector of the subspace is the sum of the basis rows
    # picked by its values at the pivots: a 0/1 vector picks each row 0 or 1
    # times.  A row that is a single 1 is a single hidden count fixed.
    basis, lead = _reduced(fixed, len(under))
    singles = [under[j] for row, j in zip(basis, lead)
               if values[under[j]] > 0 and sum(v != 0 for v in row) == 1]
    if singles:
        return {min(singles, key=lambda k: values[k])}
    if len(lead) > MOST_FREE:
        return set(k for k in under if values[k] > 0)
    # The rows times the common denominator: integers, a 0/1 vector 0/scale.
    scale = math.lcm(*(v.denominator for row in basis for v in row))
    basis = [[v.numerator * (scale // v.denominator) for v in row] for row in basis]
    for choice in range(1, 2 ** len(lead)):
        vector = [0] * len(under)
        for bit, row in enumerate(basis):
            if choice >> bit & 1:
                vector = [a + b for a, b in zip(vector, row)]
        if all(v == 0 or v == scale for v in vector):
            total = sum(values[k] for k, v in zip(under, vector) if v)
            if 0 < total < threshold:
                return {k for k, v in zip(under, vector) if v}
    return set()


# --------------------------------------------------------------------------
# large groups of hidden cells: sparse elimination over a prime field

PRIME = 2 ** 61 - 1   # arithmetic modulo a large prime: exact for these 0/±1 systems but for
                      # a chance of about (size / PRIME) that a rank comes out one too low
EXACT_UP_TO = 60      # unknowns solved in rational arithmetic; larger groups sparsely


def _sparse_reduced(rows: list[dict[int, int]]) -> dict[int, dict[int, int]]:
    """Reduced row echelon form of sparse rows (column -> coefficient mod
    PRIME): {pivot column: its row}, each row 1 at its pivot and 0 at every
    other pivot column.  Pivots are chosen to keep rows short."""
    rows = [{c: v % PRIME for c, v in r.items() if v % PRIME} for r in rows]
    rows = [r for r in rows if r]
    where: dict[int, set[int]] = defaultdict(set)
    for i, r in enumerate(rows):
        for c in r:
            where[c].add(i)
    active = set(range(len(rows)))
    # The shortest active row next (ties: the lowest index), from a heap of
    # (length when pushed, row): a row is pushed again whenever it changes,
    # and an entry whose length is out of date is skipped.  The same order as
    # min() over the active rows, without scanning them all at every step.
    queue = [(len(r), j) for j, r in enumerate(rows)]
    heapq.heapify(queue)
    pivots: dict[int, int] = {}
    while active:
        length, i = heapq.heappop(queue)
        if i not in active or length != len(rows[i]):
            continue
        active.discard(i)
        row = rows[i]
        if not row:
            continue
        c = min(row, key=lambda col: (len(where[col]), col))
        if row[c] != 1:
            # most pivots are 1 or -1 (their own inverse): no modular power
            inverse = PRIME - 1 if row[c] == PRIME - 1 else pow(row[c], PRIME - 2, PRIME)
            for col in row:
                row[col] = row[col] * inverse % PRIME
        for j in list(where[c]):
            if j == i:
                continue
            other = rows[j]
            factor = other[c]
            for col, v in row.items():
                value = (other.get(col, 0) - factor * v) % PRIME
                if value:
                    if col not in other:
                        where[col].add(j)
                    other[col] = value
                elif col in other:
                    del other[col]
                    where[col].discard(j)
            if j in active:
                heapq.heappush(queue, (len(other), j))
        pivots[c] = i
    return {c: rows[i] for c, i in pivots.items()}


def sparse_small_derivable_sums(cells: list[Key], equations: list[list[tuple[int, Key]]],
                                values: dict[Key, int], threshold: int = SMALL_CELL
                                ) -> list[set[Key]]:
    """:func:`small_derivable_sum` for a large group of unknowns, every leak
    it finds at once (disjoint sets; none when the list is empty).

    In reduced form every unknown is a constant plus a combination of the
    free unknowns (a pivot's row, negated; a free unknown itself), and a sum
    of unknowns is fixed exactly when those combinations cancel.  Singles
    and pairs are found by hashing the combinations; larger sets within each
    group of small unknowns that share free unknowns, by enumerating the
    group's null space when it has at most MOST_FREE dimensions (a larger
    group is checked for singles and pairs only)."""
    index = {k: j for j, k in enumerate(cells)}
    rows = []
    for equation in equations:
        row: dict[int, int] = defaultdict(int)
        for coefficient, key in equation:
            j = index.get(key)
            if j is not None:
                row[j] += coefficient
        rows.append(dict(row))
    reduced = _sparse_reduced(rows)
    free = set(range(len(cells))) - set(reduced)
    under = [j for j in range(len(cells)) if values[cells[j]] < threshold]
    combination: dict[int, dict[int, int]] = {}
    for j in under:
        if j in reduced:
            combination[j] = {c: (-v) % PRIME for c, v in reduced[j].items() if c != j}
        else:
            combination[j] = {j: 1}
    singles = [{cells[j]} for j in under if not combination[j] and values[cells[j]] > 0]
    if singles:
        return singles
    leaks, used = [], set()
    seen: dict[frozenset, int] = {}
    for j in under:
        negated = frozenset((c, (-v) % PRIME) for c, v in combination[j].items())
        i = seen.get(negated)
        if i is not None and i not in used and j not in used \
                and 0 < values[cells[i]] + values[cells[j]] < threshold:
            leaks.append({cells[i], cells[j]})
            used |= {i, j}
        seen.setdefault(frozenset(combination[j].items()), j)
    if leaks:
        return leaks
    # groups of small unknowns linked through the free unknowns they share
    by_free: dict[int, list[int]] = defaultdict(list)
    for j in under:
        for c in combination[j]:
            by_free[c].append(j)
    done: set[int] = set()
    for start in under:
        if start in done:
            continue
        group, stack = [], [start]
        done.add(start)
        while stack:
            j = stack.pop()
            group.append(j)
            for c in combination[j]:
                for other in by_free[c]:
                    if other not in done:
                        done.add(other)
                        stack.append(other)
        if len(group) < 3 or not any(values[cells[j]] > 0 for j in group):
            continue
        leak = _fixed_subset(group, combination, cells, values, threshold)
        if leak:
            leaks.append(leak)
    return leaks


def _fixed_subset(group: list[int], combination, cells, values, threshold) -> set[Key]:
    """A subset of ``group`` whose combinations cancel (its sum is fixed)
    with a sum from 1 to threshold - 1, else an empty set (mod PRIME)."""
    columns = sorted({c for j in group for c in combination[j]})
    # s is fixed when sum_j s_j * combination[j] = 0: the null space of the
    # matrix with a row per free unknown and a column per member.
    position = {j: i for i, j in enumerate(group)}
    rows = [{position[j]: combination[j][c] for j in group if c in combination[j]}
            for c in columns]
    reduced = _sparse_reduced(rows)
    free = [i for i in range(len(group)) if i not in reduced]
    if not free:
        return set()
    if len(free) > MOST_FREE:
        # Too many ways to combine to enumerate: singles and pairs (above)
        # are all this path checks in such a group.
        return set()
    # each null vector: a free member set to 1 and the pivots it forces
    basis = []
    for f in free:
        vector = {f: 1}
        for pivot, row in reduced.items():
            if f in row:
                vector[pivot] = (-row[f]) % PRIME
        basis.append(vector)
    for choice in range(1, 2 ** len(free)):
        total: dict[int, int] = defaultdict(int)
        for bit, vector in enumerate(basis):
            if choice >> bit & 1:
                for i, v in vector.items():
                    total[i] = (total[i] + v) % PRIME
        if all(v in (0, 1) for v in total.values()):
            members = [group[i] for i, v in total.items() if v == 1]
            value = sum(values[cells[j]] for j in members)
            if 0 < value < threshold:
                return {cells[j] for j in members}
    return set()
