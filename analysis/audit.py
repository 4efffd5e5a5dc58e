"""The audit log: who signed in (or failed to), viewed, downloaded, reported
or ingested what, and when.

It is kept in its own DuckDB file beside the clinic's database
(``clinic.duckdb`` -> ``clinic.audit.duckdb``), so that an ingest, which holds
the clinic file's one write lock, never blocks a sign-in or an audit row.

Append-only: this module is the only writer and it only INSERTs.  Each row's
hash covers the previous row's hash, so :func:`verify` notices a row that
was edited or deleted afterwards.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from analysis import db

ACTIONS = ("sign_in", "sign_in_failed", "locked_out", "sign_out", "page_view", "download",
           "report", "ingest")


def _row_hash(prev_hash: str | None, seq: int, at: dt.datetime, user: str | None,
              role: str | None, action: str, detail: str) -> str:
    payload = json.dumps([prev_hash, seq, at.isoformat(), user, role, action, detail])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def audit_path(db_path: str | os.PathLike) -> Path:
    """The audit file of a clinic database."""
    path = Path(db_path)
    return path.with_name(f"{path.stem}.audit.duckdb")


def record(db_path: str | os.PathLike, action: str, user: str | None = None,
           role: str | None = None, at: dt.datetime | None = None, **detail) -> None:
    """Append one audit row (its own short transaction)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    at = at or dt.datetime.now()
    detail_json = json.dumps(detail, sort_keys=True, default=str)
    with db.writer(audit_path(db_path), schema="audit_schema.sql") as con:
        con.execute("BEGIN TRANSACTION")
        try:
            last = con.execute(
                "SELECT seq, row_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq = (last[0] + 1) if last else 1
            prev_hash = last[1] if last else None
            row_hash = _row_hash(prev_hash, seq, at, user, role, action, detail_json)
            con.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [seq, at, user, role, action, detail_json, prev_hash, row_hash])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def read(db_path: str | os.PathLike, since: dt.datetime | None = None,
         actions: tuple[str, ...] = (), user: str | None = None) -> pd.DataFrame:
    """Audit rows, newest first."""
    path = audit_path(db_path)
    columns = ["seq", "logged_at", "user_name", "role", "action", "detail", "prev_hash", "row_hash"]
    if not path.exists():
        return pd.DataFrame(columns=columns)
    clauses, params = ["true"], {}
    if since:
        clauses.append("logged_at >= $since")
        params["since"] = since
    if actions:
        clauses.append("list_contains($actions, action)")
        params["actions"] = list(actions)
    if user:
        clauses.append("user_name = $user")
        params["user"] = user

    def query():
        con = duckdb.connect(str(path), read_only=True)
        try:
            return con.execute(f"SELECT * FROM audit_log WHERE {' AND '.join(clauses)} "
                               "ORDER BY seq DESC", params).df()
        except duckdb.CatalogException:
            return pd.DataFrame(columns=columns)
        finally:
            con.close()

    with db.file_lock(path):
        return db.with_retry(query)


@dataclass(frozen=True)
class ChainCheck:
    rows: int
    intact: bool
    first_broken_seq: int | None


def verify(db_path: str | os.PathLike) -> ChainCheck:
    """Recompute the hash chain; report the first row that does not fit."""
    rows = read(db_path).sort_values("seq")
    prev = None
    expected_seq = 1
    for row in rows.itertuples():
        at = pd.Timestamp(row.logged_at).to_pydatetime()
        if row.seq != expected_seq or row.prev_hash != prev or row.row_hash != _row_hash(
                prev, int(row.seq), at, row.user_name, row.role, row.action, row.detail):
            return ChainCheck(len(rows), False, int(row.seq))
        prev = row.row_hash
        expected_seq += 1
    return ChainCheck(len(rows), True, None)


def failures_since_last_success(db_path: str | os.PathLike, user: str,
                                window: dt.timedelta, now: dt.datetime | None = None) -> int:
    """Failed sign-ins for ``user`` inside ``window``, since their last success."""
    now = now or dt.datetime.now()
    rows = read(db_path, since=now - window, actions=("sign_in", "sign_in_failed"), user=user)
    count = 0
    for action in rows["action"]:  # newest first
        if action == "sign_in":
            break
        count += 1
    return count
