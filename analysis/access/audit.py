"""The audit log: who signed in (or failed to), viewed, downloaded, reported
or ingested what, and when.

It is kept in its own DuckDB file beside the clinic's database
(``clinic.duckdb`` -> ``clinic.audit.duckdb``), so that an ingest, which holds
the clinic file's one write lock, never blocks a sign-in or an audit row.

Append-only and tamper-evident: this module is the only writer and it only
INSERTs.  Each row carries a sequence number and a MAC (HMAC-SHA-256 under
the clinic's ``audit`` key, :mod:`analysis.access.keys`, kept outside the database
and the repository) over its content and the previous row's MAC.  After
every append the chain head (last sequence number and MAC) is also written
outside the audit database, to a small file in the keys folder
(:func:`head_path`).  So :func:`verify` (``python -m analysis audit
verify``) catches an edited row, a chain recomputed without the key, rows
cut off the end and a deleted audit file.  A write that finds the log
behind its head (rows removed) records that in an ``audit_gap`` row first,
so the next row never papers over it.

:func:`record` writes at once (sign-ins, downloads, ingests).
:func:`record_soon` is for page views, which come with every click: the row
(time-stamped when called) is queued and a background thread appends
whatever is queued in one transaction, so a page never waits on the audit
file's lock and twenty users' views cost one write instead of twenty.
:func:`record` and :func:`read` write the queue first, and it is written at
exit, so rows keep their order and a reader of this process sees them all.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from analysis.storage import db
from analysis.access import keys

if TYPE_CHECKING:  # pandas is imported where rows are read: recording a row needs none
    import pandas as pd

log = logging.getLogger(__name__)

ACTIONS = ("sign_in", "sign_in_failed", "locked_out", "sign_out", "page_view", "download",
           "report", "ingest", "audit_gap")
KEY = "audit"  # the analysis.access.keys key that signs the rows


def _row_mac(prev_mac: str | None, seq: int, at: dt.datetime, user: str | None,
             role: str | None, action: str, detail: str) -> str:
    payload = json.dumps([prev_mac, seq, at.isoformat(), user, role, action, detail])
    return keys.mac(KEY, payload.encode("utf-8"))


def audit_path(db_path: str | os.PathLike) -> Path:
    """The audit file of a clinic database."""
    path = Path(db_path)
    return path.with_name(f"{path.stem}.audit.duckdb")


def head_path(db_path: str | os.PathLike) -> Path:
    """Where the chain head of a clinic's audit log is kept: in the keys
    folder (outside the database and the repository), named by a hash of
    the audit file's absolute path."""
    where = os.path.abspath(audit_path(db_path))
    return keys.secrets_dir() / f"audit-head-{hashlib.sha256(where.encode()).hexdigest()[:24]}.json"


def read_head(db_path: str | os.PathLike) -> tuple[int, str] | None:
    """(last sequence number, its MAC) as last written, or None."""
    try:
        head = json.loads(head_path(db_path).read_text(encoding="utf-8"))
        return int(head["seq"]), str(head["mac"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return (-1, "")  # unreadable: never matches a real row


def _write_head(db_path: Path, seq: int, mac: str) -> None:
    """Replace the head file atomically (mode 600): a reader sees the old or
    the new head, never half of one."""
    target = head_path(db_path)
    keys.private_folder(target.parent)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, json.dumps({"audit_file": os.path.abspath(audit_path(db_path)),
                                 "seq": seq, "mac": mac}).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, target)


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
    """Append rows, in order, in one short transaction, each chained to the
    last; then write the new head (still holding the file, so heads are
    written in the order of the rows)."""
    with db.writer(audit_path(db_path), schema="audit_schema.sql") as con:
        con.execute("BEGIN TRANSACTION")
        try:
            last = con.execute(
                "SELECT seq, row_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev_mac = (last[0], last[1]) if last else (0, None)
            gap = _gap(read_head(db_path), seq, prev_mac)
            if gap:
                rows = [_row("audit_gap", None, None, None, gap), *rows]
            values = []
            for at, user, role, action, detail_json in rows:
                seq += 1
                mac = _row_mac(prev_mac, seq, at, user, role, action, detail_json)
                values.append([seq, at, user, role, action, detail_json, prev_mac, mac])
                prev_mac = mac
            con.executemany("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        _write_head(db_path, seq, prev_mac)


def _gap(head: tuple[int, str] | None, last_seq: int, last_mac: str | None) -> dict | None:
    """What an append finds wrong with the log it appends to: rows removed
    since the head was written (or the head itself gone), else None.  Rows
    *after* the head are fine: a write that stopped before its head."""
    if head is None:
        return {"found": "no head for an existing audit log", "log_seq": last_seq} \
            if last_seq else None
    head_seq, head_mac = head
    if last_seq < head_seq:
        return {"found": "rows removed", "head_seq": head_seq, "log_seq": last_seq}
    if last_seq == head_seq and last_mac != head_mac:
        return {"found": "last row differs from the head", "head_seq": head_seq,
                "log_seq": last_seq}
    return None


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


_COLUMNS = ["seq", "logged_at", "user_name", "role", "action", "detail", "prev_hash", "row_hash"]


def read(db_path: str | os.PathLike, since: dt.datetime | None = None,
         actions: tuple[str, ...] = (), user: str | None = None) -> pd.DataFrame:
    """Audit rows, newest first (queued rows written first, if they can be)."""
    import pandas as pd
    with _write_lock:
        _write_queued_or_log()
    path = audit_path(db_path)
    columns = _COLUMNS
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
    """What :func:`verify` checked and found."""
    rows: int
    intact: bool
    first_broken_seq: int | None
    problem: str | None = None         # one sentence: what is wrong
    head_seq: int | None = None        # the last sequence number the head records
    checked: tuple[str, ...] = field(default_factory=tuple)  # what was checked, line by line

    @property
    def verdict(self) -> str:
        return "intact" if self.intact else f"NOT intact: {self.problem}"

    def report(self) -> str:
        """What was checked and the verdict, as ``audit verify`` prints it."""
        return "\n".join([*self.checked, f"verdict: {self.verdict}"])


def verify(db_path: str | os.PathLike) -> ChainCheck:
    """Check the audit log of ``db_path``: contiguous sequence numbers from
    1, each row's MAC under the audit key, each row chained to the one
    before, no ``audit_gap`` row, and the last row equal to the head kept
    outside the database.  Never creates a key."""
    import pandas as pd
    with _write_lock:
        _write_queued_or_log()
    path = audit_path(db_path)
    key_file = keys.key_path(KEY)
    checked = [f"audit log: {path}", f"key: {key_file}", f"head: {head_path(db_path)}"]

    def result(intact, problem=None, rows=0, broken=None, head_seq=None, more=()):
        return ChainCheck(rows, intact, broken, problem, head_seq, tuple([*checked, *more]))

    with db.file_lock(path):
        # Rows and head are read while the file is held (read-only: no
        # writer of any process can append in between).
        def load():
            if not path.exists():
                return None, read_head(db_path)
            con = duckdb.connect(str(path), read_only=True)
            try:
                frame = con.execute("SELECT * FROM audit_log ORDER BY seq").df()
            except duckdb.CatalogException:
                frame = pd.DataFrame(columns=_COLUMNS)
            finally:
                con.close()
            return frame, read_head(db_path)
        rows, head = db.with_retry(load)

    head_seq = head[0] if head else None
    if rows is None:
        if head is None:
            return result(False, f"no audit log for {Path(db_path).name} (and no head): nothing "
                                 "was recorded for this database, or both were removed")
        return result(False, f"the audit file is missing; its head records {head_seq} rows",
                      head_seq=head_seq)
    count = len(rows)
    if count and not key_file.exists():
        return result(False, f"the audit key {key_file} is missing: restore it from the "
                             "backup of the keys folder to verify the log", count,
                      head_seq=head_seq)
    prev, expected = None, 1
    for row in rows.itertuples():
        at = pd.Timestamp(row.logged_at).to_pydatetime()
        if row.seq != expected:
            gap = (f"rows {expected}–{row.seq - 1} are" if row.seq - 1 > expected
                   else f"row {expected} is")
            return result(False, f"{gap} missing from the middle of the log", count, expected,
                          head_seq)
        if row.prev_hash != prev or row.row_hash != _row_mac(
                prev, int(row.seq), at, row.user_name, row.role, row.action, row.detail):
            return result(False, f"row {row.seq} was altered after it was written (its MAC "
                                 "does not match)", count, int(row.seq), head_seq)
        if row.action == "audit_gap":
            return result(False, _gap_text(row), count, int(row.seq), head_seq)
        prev, expected = row.row_hash, expected + 1
    last_seq = expected - 1
    span = f"{count} rows (seq 1–{last_seq})" if count else "0 rows"
    more = [f"checked {span}: sequence numbers contiguous, every row's HMAC-SHA-256 valid "
            "and chained to the row before"]
    if head is None:
        return result(False, "the head file is missing (removed, or the keys folder is not the "
                             "one this log was written with)", count, None, None, more)
    if last_seq < head_seq:
        missing = (f"rows {last_seq + 1}–{head_seq} are" if head_seq > last_seq + 1
                   else f"row {head_seq} is")
        return result(False, f"{missing} missing: the log ends at {last_seq or 'no row'}, its "
                             f"head records {head_seq}", count, last_seq + 1, head_seq, more)
    head_row = rows[rows.seq == head_seq]
    if head_seq and (head_row.empty or head_row.iloc[0].row_hash != head[1]):
        return result(False, f"row {head_seq} differs from the head kept outside the database",
                      count, head_seq, head_seq, more)
    more.append(f"head: seq {head_seq} matches row {head_seq}"
                + (f" (rows {head_seq + 1}–{last_seq} were written by a process that stopped "
                   "before updating the head)" if last_seq > head_seq else ""))
    return result(True, None, count, None, head_seq, more)


def _gap_text(row) -> str:
    import pandas as pd
    detail = json.loads(row.detail or "{}")
    found = detail.get("found")
    when = f"{pd.Timestamp(row.logged_at):%Y-%m-%d %H:%M}"
    if found == "rows removed":
        first, last = detail.get("log_seq", 0) + 1, detail.get("head_seq")
        span = f"rows {first}–{last} were" if last != first else f"row {first} was"
        ended = (f"the audit file ended at row {first - 1}" if first > 1
                 else "the audit file was missing or empty")
        return f"{span} removed ({ended} when row {row.seq} was written, {when})"
    return f"{found} (noticed when row {row.seq} was written, {when})"


def failures_since_last_success(db_path: str | os.PathLike, user: str,
                                window: dt.timedelta, now: dt.datetime | None = None,
                                attempt: str | None = None) -> int:
    """Failed sign-ins for ``user`` inside ``window``, since their last
    success; for an unknown user, those of one typed name (``attempt``, its
    keyed hash)."""
    import pandas as pd
    now = now or dt.datetime.now()
    rows = read(db_path, since=now - window, actions=("sign_in", "sign_in_failed"), user=user)
    if attempt is not None:
        rows = rows.loc[pd.Series([json.loads(d or "{}").get("attempt") == attempt
                                   for d in rows["detail"]], index=rows.index, dtype=bool)]
    count = 0
    for action in rows["action"]:  # newest first
        if action == "sign_in":
            break
        count += 1
    return count
