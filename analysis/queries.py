"""Running the named queries of ``sql/queries/`` with the shared filters.

A query file marks where the patient filter goes with ``{{ patient_filter }}``;
it becomes :meth:`Filters.sql` for the given table alias — column names and
``$parameters`` only, never a user's value.
"""

from __future__ import annotations

import pandas as pd

from analysis import db
from analysis.outcomes import Filters
from analysis.store import Snapshot

FILTER_TOKEN = "{{ patient_filter }}"


def run_query(snap: Snapshot, name: str, filters: Filters | None = None,
              params: dict | None = None, alias: str = "") -> pd.DataFrame:
    """Run ``sql/queries/<name>.sql`` on the snapshot."""
    sql = db.read_sql(f"queries/{name}.sql")
    params = dict(params or {})
    if FILTER_TOKEN in sql:
        where, filter_params = (filters or Filters()).sql(alias)
        sql = sql.replace(FILTER_TOKEN, where)
        params.update(filter_params)
    return snap.query(sql, params)
