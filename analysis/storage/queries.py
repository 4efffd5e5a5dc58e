"""Running the named queries of ``sql/queries/`` with the shared filters.

A query file marks where the patient filter goes with ``{{ patient_filter }}``;
it becomes the caller's ``filters.sql(alias)`` (any object with that method,
:class:`analysis.metrics.outcomes.Filters` in practice; no filter: every
patient) for the given table alias — column names and
``$parameters`` only, never a user's value.  A query that aggregates another
one's rows reads it as a subquery with ``{{ include <name> }}`` (the included
file's own filter token is filled in the same way), so the row-level rules
are written once.
"""

from __future__ import annotations

import re
from typing import Protocol

import pandas as pd

from analysis.storage import db
from analysis.storage.store import Snapshot

FILTER_TOKEN = "{{ patient_filter }}"
INCLUDE = re.compile(r"\{\{\s*include\s+([a-z0-9_]+)\s*\}\}")


class PatientFilter(Protocol):
    """What a query needs of the shared filters: a WHERE predicate over a
    patient-level model (column names and ``$parameters`` only) and its
    parameters.  Storage sits below the definitions, so it asks for the
    method rather than importing the class."""

    def sql(self, alias: str = "") -> tuple[str, dict]: ...


def query_text(name: str, depth: int = 0) -> str:
    """``sql/queries/<name>.sql`` with its includes expanded."""
    if depth > 5:
        raise ValueError(f"query {name!r}: includes nested too deep")
    sql = db.read_sql(f"queries/{name}.sql")
    return INCLUDE.sub(lambda m: query_text(m.group(1), depth + 1), sql)


def run_query(snap: Snapshot, name: str, filters: PatientFilter | None = None,
              params: dict | None = None, alias: str = "") -> pd.DataFrame:
    """Run ``sql/queries/<name>.sql`` on the snapshot."""
    sql = query_text(name)
    params = dict(params or {})
    if FILTER_TOKEN in sql:
        where, filter_params = filters.sql(alias) if filters is not None else ("true", {})
        sql = sql.replace(FILTER_TOKEN, where)
        params.update(filter_params)
    return snap.query(sql, params)
