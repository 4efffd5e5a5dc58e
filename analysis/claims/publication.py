"""What of the claim check outsiders may see (SPEC §4).

For the external audience (marketing, the memo) the claim check is the whole
program whatever the filters, and every count of every reading (the
sensitivity grid, each reading's breakdowns by condition and by site, each
reading's "who is counted") is registered in one
:class:`analysis.core.disclosure.Tables` (:func:`external_publication`) with the
sums an outsider knows: groups to their total, n = responders +
non-responders, ITT n = completers n + the patients without a follow-up, a
pain or opioid definition's n = the claim's n + the patients with only that
baseline, the responders of a stricter definition among a looser one's, the
patients due at a later timepoint among those due at an earlier one, the
flow's steps to the treated patients.  A reading whose n or responders are
withheld is "too few to tell" (never a verdict, a rate or a bound: a
verdict against a chosen target would give the bound away); a withheld
count reads "too few to report".  Internal audiences see every count
(:data:`INTERNAL`).
"""

from __future__ import annotations

from analysis.core import definitions, disclosure
from analysis.metrics import outcomes
from analysis.core.filters import Filters
from analysis.storage.store import Snapshot


class Shown:
    """What of the claim check a reader may see: every count (``tables``
    None: an internal reader), or what the external publication
    (:func:`external_publication`) leaves shown."""

    def __init__(self, tables: disclosure.Tables | None = None):
        self.tables = tables

    @property
    def external(self) -> bool:
        return self.tables is not None

    def key(self, key) -> bool:
        return self.tables is None or not self.tables.hidden(key)

    def n(self, timepoint, definition, population, dim="all", group="All") -> bool:
        return self.key(("n", timepoint, definition, population, dim, group))

    def reading(self, cell, dim="all", group="All") -> bool:
        """Its n and its responders (so its rate, bounds and verdict)."""
        key = (cell.timepoint, cell.definition, cell.population, dim, group)
        return self.key(("n", *key)) and self.key(("k", *key))

    def missing(self, timepoint, definition) -> bool:
        """The patients who reached the timepoint without a follow-up."""
        return self.key(("missing", timepoint, definition, "all", "All"))


INTERNAL = Shown()


# --------------------------------------------------------------------------
# the external publication: every reading, protected as one


#: Definitions whose responders are among another's (looser, stricter).
NESTED_RESPONDERS = (("pain30", "pain50"), ("mme50", "mme_stop"), ("pain30", "claim"),
                     ("mme50", "claim"))


#: Definitions that count the same patients (the same baselines needed).
SAME_PATIENTS = (("pain30", "pain50"), ("pain30", "pain2pt"), ("mme50", "mme_stop"))


def external_publication(snap: Snapshot) -> disclosure.Tables:
    """Every count the external claim check and memo can show, for every
    reading, with the sums an outsider knows, protected as one publication
    (computed once per data version)."""
    return snap.memo("claim_publication", lambda: _publication(snap))


_PUBLISHED: dict = {}   # (database, data version) -> Tables, for other snapshots of the same data


def _publication(snap: Snapshot) -> disclosure.Tables:
    try:
        key = (str(snap.db_path), snap.version)
        hash(key)
    except TypeError:
        key = None
    if key in _PUBLISHED:
        return _PUBLISHED[key]
    tables = _build_publication(snap)
    if key is not None:
        while len(_PUBLISHED) >= 4:
            _PUBLISHED.pop(next(iter(_PUBLISHED)))
        _PUBLISHED[key] = tables
    return tables


def _build_publication(snap: Snapshot) -> disclosure.Tables:
    tables = disclosure.Tables()
    values = tables.values

    def rest(total, parts, key) -> None:
        value = values[total] - sum(values[p] for p in parts)
        if value >= 0:
            if key not in values:
                tables.cell(key, value, published=False)
            if values[key] == value:
                tables.add_sum(total, [*parts, key])

    def same(a, b) -> None:
        if a in values and b in values and values[a] == values[b]:
            tables.add_sum(a, [b])

    readings = [(t, d, p) for t in definitions.TIMEPOINTS for d in definitions.DEFINITIONS
                for p in definitions.POPULATIONS]
    for group_by in ("condition", "site"):
        counts = outcomes.counts_by_condition(snap, Filters(), group_by)
        found = {(r.timepoint, r.definition, r.population, r.group): (int(r.n), int(r.responders))
                 for r in counts.itertuples()}
        groups = sorted({g for *_, g in found} - {"All"}) + ["All"]
        for group in groups:
            dim = "all" if group == "All" else group_by
            for reading in readings:
                if dim != "all" and reading[2] != "itt":
                    continue        # completers-only is not broken down for outsiders
                n, k = found.get((*reading, group), (0, 0))
                n_key, k_key = ("n", *reading, dim, group), ("k", *reading, dim, group)
                tables.cell(n_key, n)
                tables.cell(k_key, k)
                rest(n_key, [k_key], ("not responders", *reading, dim, group))
            for t in definitions.TIMEPOINTS:
                for d in definitions.DEFINITIONS:
                    if dim == "all":
                        rest(("n", t, d, "itt", dim, group),
                             [("n", t, d, "completers", dim, group)], ("missing", t, d, dim, group))
                        same(("k", t, d, "itt", dim, group), ("k", t, d, "completers", dim, group))
                for p in (definitions.POPULATIONS if dim == "all" else ("itt",)):
                    for a, b in SAME_PATIENTS:
                        same(("n", t, a, p, dim, group), ("n", t, b, p, dim, group))
                    for wider in ("pain30", "mme50"):   # the claim needs both baselines
                        rest(("n", t, wider, p, dim, group), [("n", t, "claim", p, dim, group)],
                             ("one baseline", t, wider, p, dim, group))
                    for wider, narrower in NESTED_RESPONDERS:
                        rest(("k", t, wider, p, dim, group), [("k", t, narrower, p, dim, group)],
                             ("responders beyond", t, wider, narrower, p, dim, group))
            for d in definitions.DEFINITIONS:   # due later is due earlier (ITT)
                for earlier, later in zip(definitions.TIMEPOINTS, definitions.TIMEPOINTS[1:]):
                    rest(("n", earlier, d, "itt", dim, group), [("n", later, d, "itt", dim, group)],
                         ("due between", earlier, later, d, dim, group))
        for reading in (r for r in readings if r[2] == "itt"):
            for measure in ("n", "k"):
                tables.add_sum((measure, *reading, "all", "All"),
                               [(measure, *reading, group_by, g) for g in groups if g != "All"])
    # the patient flow of every reading (the whole program)
    flows = outcomes.exclusion_counts(snap)
    treated = None
    for (t, d), row in flows.items():
        if treated is None:
            treated = tables.cell(("treated",), row["treated"])
        parts = []
        for reason in (*definitions.BASELINE_EXCLUSIONS, "not_yet_due"):
            key = ("not_yet_due", t, d) if reason == "not_yet_due" else ("excluded", reason, t, d)
            tables.cell(key, row[reason])
            parts.append(key)
        rest(treated, [*parts, ("n", t, d, "itt", "all", "All")], ("flow rest", t, d))
        missing = ("missing", t, d, "all", "All")    # shown in the flow
        if missing in values:
            tables.cell(missing, values[missing])
        for earlier in definitions.TIMEPOINTS[:definitions.TIMEPOINTS.index(t)]:
            for reason in definitions.BASELINE_EXCLUSIONS:
                same(("excluded", reason, t, d), ("excluded", reason, earlier, d))
    # What the claim check answers first: the claim's own n and responders over
    # the whole program at each timepoint, and the treated patients; a
    # complement is taken from the breakdowns and the other definitions before
    # these (mme50's n 916 beside the claim's 907 would give away the 9 with one
    # baseline: mme50's n is withheld, not the claim's).
    tables.headline = {key for key in values
                       if key[0] == "treated" or (key[0] in ("n", "k") and key[2] == "claim"
                                                  and key[-2:] == ("all", "All"))}
    tables.protect()
    return tables
