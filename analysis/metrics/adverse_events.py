"""Adverse events counted by controlled category (SPEC §2 ``adverse_event``;
§4: free text never reaches anyone outside the clinical team).

The export's ``adverse_event`` is free text ("Nausea; headache", "emergence
reaction", "called John Smith 555-123-4567").  Every count, rate, table and
chart counts its *categories* instead, from ``data/adverse_event_categories.csv``
(``category,synonyms``: the category's own name and each ``;``-separated
synonym map to it).  Dissociation and emergence reactions are one category.
Text no row names counts as ``other``, so a name or a phone number typed into
the field is counted, never shown.

The rule (``sql/queries/adverse_event_categories.sql``, the one place it is
written; :func:`categorise` runs the same SQL):

* text in parentheses is dropped, then the cell is split on ``;`` and ``,``
  (several events in one cell each count);
* each part is folded like a column name (:func:`analysis.storage.reference.fold`):
  "Emergence-Reaction", "emergence reaction" and "EMERGENCE  REACTION" are one;
* an empty part or one saying none ("none", "no", "n/a", ...) is no event;
* a listed text takes its category, any other ``other``.

**A clinic's own rows.** A CSV with the same two columns beside the database,
named ``<database name>.adverse_event_categories.csv`` (for
``data/outcomes.duckdb``: ``data/outcomes.adverse_event_categories.csv``),
adds synonyms or categories: ``nausea,sick to stomach`` adds a synonym,
``nystagmus,nystagmus;eye flicker`` a category.  Its rows win over the
bundled table where both name one text.  The command line reads it on every
run; the dashboard from the next load of an export or restart (its results
are cached per data version).

The raw text itself is for the clinical team alone: :func:`texts` refuses
any other audience.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from analysis.storage import queries, reference
from analysis.core.audience import Audience
from analysis.core.filters import Filters
from analysis.storage.reference import DATA_DIR, fold
from analysis.storage.store import Snapshot

BUNDLED = DATA_DIR / "adverse_event_categories.csv"
CLINIC_SUFFIX = ".adverse_event_categories.csv"
OTHER = "other"
_PARENTHESES = re.compile(r"\([^)]*\)")


class CategoriesFileError(ValueError):
    """A categories file that cannot be read (named by file and line)."""


@dataclass(frozen=True)
class Categories:
    """Folded text -> category, and the categories in table order."""
    mapping: tuple[tuple[str, str], ...]
    names: tuple[str, ...]

    @functools.cached_property
    def _by_text(self) -> dict[str, str]:
        return dict(self.mapping)

    def category(self, folded_text: str) -> str:
        return self._by_text.get(folded_text, OTHER)


def clinic_file(db_path: str | os.PathLike) -> Path:
    """Where a clinic's own rows live for the database ``db_path``."""
    path = Path(db_path)
    return path.with_name(path.stem + CLINIC_SUFFIX)


def load(db_path: str | os.PathLike | None = None) -> Categories:
    """The bundled table, with the clinic's own rows for ``db_path`` (if that
    file exists) added over it."""
    extra = clinic_file(db_path) if db_path is not None else None
    if extra is None or not extra.exists():
        return _load(None, None)
    stat = extra.stat()
    return _load(str(extra), (stat.st_mtime_ns, stat.st_size))


def _rows(path: Path) -> list[tuple[int, str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [fold(h) for h in (reader.fieldnames or [])]
        if "category" not in header:
            raise CategoriesFileError(
                f"{path.name}: expected the columns category,synonyms; found "
                f"{', '.join(reader.fieldnames or []) or 'none'}")
        reader.fieldnames = header
        return [(reader.line_num, row.get("category") or "", row.get("synonyms") or "")
                for row in reader]


@functools.lru_cache(maxsize=16)
def _load(extra: str | None, version: tuple | None) -> Categories:
    mapping: dict[str, str] = {}
    names: list[str] = []
    for path in (BUNDLED, *([Path(extra)] if extra else [])):
        for line, category, synonyms in _rows(path):
            name = " ".join(category.split()).lower()
            if not fold(name):
                if synonyms.strip():
                    raise CategoriesFileError(f"{path.name} line {line}: synonyms without a "
                                              "category")
                continue
            if name not in names:
                names.append(name)
            for text in (name, *synonyms.split(";")):
                folded = fold(text)
                if folded:
                    mapping[folded] = name   # a later row (the clinic's) wins
    if OTHER not in names:
        names.append(OTHER)
    return Categories(tuple(mapping.items()), tuple(names))


def sql_params(db_path: str | os.PathLike | None = None) -> dict:
    """The ``$parameters`` of ``adverse_event_categories.sql``."""
    table = load(db_path)
    return {"category_texts": [t for t, _ in table.mapping],
            "category_names": [c for _, c in table.mapping],
            "other_category": OTHER,
            "not_events": list(reference.NO_ADVERSE_EVENT)}


def category(text: str | None, db_path: str | os.PathLike | None = None) -> str:
    """The category of one event as written (one part of a cell, not a cell
    listing several: :func:`categorise` splits those): its folded text looked
    up in the table, ``other`` when no row names it.  A category's own name
    is its category."""
    folded = fold(_PARENTHESES.sub(" ", str(text or "")))
    return load(db_path).category(folded)


def categorise(cells: list[str | None], db_path: str | os.PathLike | None = None
               ) -> list[list[str]]:
    """Each cell's categories (sorted, each once; [] for no event), by the
    same SQL the counts use."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("CREATE TEMP TABLE adverse_event_text "
                    "(natural_key BIGINT, adverse_event VARCHAR)")
        if cells:
            con.executemany("INSERT INTO adverse_event_text VALUES (?, ?)",
                            list(enumerate(cells)))
        frame = con.execute(queries.query_text("adverse_event_categories"),
                            sql_params(db_path)).df()
    finally:
        con.close()
    found = {int(k): list(v) for k, v in zip(frame["natural_key"], frame["adverse_events"])}
    return [found.get(i, []) for i in range(len(cells))]


def texts(snap: Snapshot, audience: Audience, filters: Filters = Filters(),
          visits_from: dt.date | None = None, visits_to: dt.date | None = None
          ) -> pd.DataFrame:
    """The adverse-event text as exported on the treatment sessions in view,
    with the categories it counts under and how many sessions recorded it
    (most first): for the clinical team only, to check the table and add
    rows for text counted as ``other``.  ``PermissionError`` for any other
    audience."""
    if not audience.sees_free_text:
        raise PermissionError("adverse-event text as exported is for the clinical team only")
    return queries.run_query(snap, "safety_event_texts", filters,
                             {"visits_from": visits_from, "visits_to": visits_to,
                              **sql_params(snap.db_path)}, alias="p")
