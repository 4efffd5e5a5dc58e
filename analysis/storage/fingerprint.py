"""A fingerprint of the data a number was computed from.

``data_fingerprint(snap)`` is the SHA-256 of the ``visits`` table's content
in a canonical order, so that a memo or report can say exactly which data it
describes, and anyone holding the same database can check it.

* Ingest bookkeeping (``ingest_id``, ``source_line``) is left out: loading
  the same rows again, in another order or from another file split, gives the
  same fingerprint.
* Each row is written as a JSON array of its values cast to text (``null``
  for a missing value), columns in name order; the rows are sorted by that
  text, each followed by a newline, after a header line naming the columns.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # store imports this module to warm a new snapshot up
    from analysis.storage.store import Snapshot

EXCLUDED_COLUMNS = frozenset({"ingest_id", "source_line"})
_BATCH_ROWS = 50_000


def fingerprint_columns(snap: Snapshot) -> list[str]:
    """The ``visits`` columns that enter the fingerprint, in name order."""
    names = snap.query(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = 'visits'")["column_name"]
    return sorted(c for c in names if c not in EXCLUDED_COLUMNS)


def data_fingerprint(snap: Snapshot) -> str:
    """SHA-256 (hex) of the visits table content, canonical order, no bookkeeping.

    Computed once per snapshot (data version): a sort of every visit takes
    seconds at a million visits.  ``store.snapshot`` starts it in the
    background as soon as a snapshot is built."""
    return snap.memo("data_fingerprint", lambda: _compute(snap))


def _compute(snap: Snapshot) -> str:
    columns = fingerprint_columns(snap)
    digest = hashlib.sha256()
    digest.update(("visits:" + ",".join(columns) + "\n").encode("utf-8"))
    values = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in columns)
    sql = f"SELECT to_json([{values}]) AS line FROM visits ORDER BY line"
    # A cursor is a second connection to the same database: it streams
    # without holding up other readers.
    cursor = snap.con.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(_BATCH_ROWS):
            digest.update("".join(row[0] + "\n" for row in rows).encode("utf-8"))
    finally:
        cursor.close()
    return digest.hexdigest()
