"""The audit log: who signed in (or failed to), viewed, downloaded, reported
or ingested what, and when.

It is kept in its own DuckDB file beside the clinic's database
(``clinic.duckdb`` -> ``clinic.audit.duckdb``), so that an ingest, which holds
the clinic file's one write lock, never blocks a sign-in or an audit row.

Append-only: this module is the only writer and it only INSERTs.  Each row's
hash covers the previous row's hash, so :func:`verify` notices a row that
was edited or deleted afterwards.

:func:`record` writes at once (sign-ins, downloads, ingests).
:func:`record_soon` is for page views, which come with every click: the row
(time-stamped when called) is queued and a background thread appends
whatever is queued in one transaction, so a page never waits on the audit
file's lock and twenty users' views cost one write instead of twenty.
:func:`record` and :func:`read` write the queue first, and it is written at
exit, so rows keep their order and a reader of this process sees them all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from analysis import db

log = logging.getLogger(__name__)

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


def _row(action: str, user: str | None, role: str | None, at: dt.datetime | None,
         detail: dict) -> tuple:
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    return (at or dt.datetime.now(), user, role, action,
            json.dumps(detail, sort_keys=True, default=str))


def record(db_path: str | os.PathLike, action: str, user: str | None = None,
           role: str | None = None, at: dt.datetime | None = None, **detail) -> None:
    """Append one audit row now (after any queued ones).  Raises if this row
    cannot be written; queued rows that cannot be written stay queued."""
    row = _row(action, user, role, at, detail)
    with _write_lock:
        _write_queued_or_log()
        _append(Path(db_path), [row])


def record_soon(db_path: str | os.PathLike, action: str, user: str | None = None,
                role: str | None = None, at: dt.datetime | None = None, **detail) -> None:
    """Queue one audit row; the background writer appends it within moments."""
    row = _row(action, user, role, at, detail)
    with _queue_lock:
        _queue.append((Path(db_path), row))
    _wake.set()
    _start_writer()


def flush() -> None:
    """Append every queued row now (raises if some could not be: they stay queued)."""
    with _write_lock:
        _write_queued()


def queued() -> int:
    """Rows waiting to be written (shown on the audit page when not zero)."""
    with _queue_lock:
        return len(_queue)


def _write_queued_or_log() -> None:
    try:
        _write_queued()
    except Exception as error:  # noqa: BLE001 - one bad file must not stop other writes
        log.error("audit log: %d queued row(s) not written yet (%s); retrying", queued(), error)


def _append(db_path: Path, rows: list[tuple]) -> None:
    """Append rows, in order, in one short transaction, each chained to the last."""
    with db.writer(audit_path(db_path), schema="audit_schema.sql") as con:
        con.execute("BEGIN TRANSACTION")
        try:
            last = con.execute(
                "SELECT seq, row_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev_hash = (last[0], last[1]) if last else (0, None)
            values = []
            for at, user, role, action, detail_json in rows:
                seq += 1
                row_hash = _row_hash(prev_hash, seq, at, user, role, action, detail_json)
                values.append([seq, at, user, role, action, detail_json, prev_hash, row_hash])
                prev_hash = row_hash
            con.executemany("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


# -- the queue of page views -------------------------------------------------

_queue: list[tuple[Path, tuple]] = []
_queue_lock = threading.Lock()   # guards _queue
_write_lock = threading.RLock()  # one writer at a time in this process, in order
_wake = threading.Event()
_writer: threading.Thread | None = None


def _write_queued() -> None:
    """Write what is queued (the caller holds _write_lock).  Rows that could
    not be written go back to the front of the queue for the next try."""
    with _queue_lock:
        pending, _queue[:] = list(_queue), []
    by_file: dict[Path, list[tuple]] = {}
    for path, row in pending:
        by_file.setdefault(path, []).append(row)
    for number, (path, rows) in enumerate(by_file.items()):
        try:
            _append(path, rows)
        except BaseException:
            unwritten = [(p, r) for p, rs in list(by_file.items())[number:] for r in rs]
            with _queue_lock:
                _queue[:0] = unwritten
            raise


def _writer_loop() -> None:
    delay = 1.0
    while True:
        _wake.wait()
        _wake.clear()
        try:
            flush()
            delay = 1.0
        except Exception as error:  # noqa: BLE001 - kept queued, retried with backoff
            log.error("audit log: %d queued row(s) not written (%s); retrying in %.0f s",
                      queued(), error, delay)
            time.sleep(delay)
            delay = min(delay * 2, 60.0)
            _wake.set()


def _start_writer() -> None:
    global _writer
    with _queue_lock:
        if _writer is None or not _writer.is_alive():
            _writer = threading.Thread(target=_writer_loop, name="audit-writer", daemon=True)
            _writer.start()


def _flush_at_exit() -> None:
    try:
        flush()
    except Exception as error:  # noqa: BLE001 - say so; never a traceback at exit
        import sys
        print(f"audit log: {len(_queue)} queued row(s) could not be written: {error}",
              file=sys.stderr)


atexit.register(_flush_at_exit)


def read(db_path: str | os.PathLike, since: dt.datetime | None = None,
         actions: tuple[str, ...] = (), user: str | None = None) -> pd.DataFrame:
    """Audit rows, newest first (queued rows written first, if they can be)."""
    with _write_lock:
        _write_queued_or_log()
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
