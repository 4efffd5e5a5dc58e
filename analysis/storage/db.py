"""Where the database lives and how it is opened.

The DuckDB file is created at run time and never committed.  Its path comes
from ``--db`` (CLI), else the ``OUTCOMES_DB`` environment variable, else
``data/outcomes.duckdb``.  Database files (and their WAL) are their owner's
only (mode 600): :func:`connect` makes them so, and the dashboard and the
command line call :func:`private_files` at start so that everything they
create is.  The bundled demo lives in its own file
(``data/demo.duckdb``) so that it never mixes with a clinic's data.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from analysis.storage.reference import DATA_DIR

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
DEFAULT_DB = DATA_DIR / "outcomes.duckdb"
DEMO_DB = DATA_DIR / "demo.duckdb"
DEMO_EXPORTS = DATA_DIR / "demo"

# DuckDB refuses a read-write and a read-only connection to one file inside
# one process, and allows one writing process per file.  Every opening of a
# file in this process goes through that file's lock; other processes are
# waited for.
_file_locks: dict[str, threading.RLock] = {}
_file_locks_guard = threading.Lock()


def file_lock(path: str | os.PathLike) -> threading.RLock:
    """The in-process lock of one database file."""
    key = os.path.abspath(os.fspath(path))
    with _file_locks_guard:
        return _file_locks.setdefault(key, threading.RLock())


def resolve_db_path(cli_value: str | os.PathLike | None = None) -> Path:
    """``--db`` beats ``OUTCOMES_DB`` beats the default."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get("OUTCOMES_DB")
    return Path(env) if env else DEFAULT_DB


def private_files() -> None:
    """From now on this process creates files readable by their owner only
    (mode 600, folders 700): databases and their WAL, audit logs, uploads,
    reports.  Called once at start by the dashboard and the command line."""
    os.umask(0o077)


def _private(path: Path) -> None:
    for file in (path, path.with_name(path.name + ".wal")):
        try:
            os.chmod(file, 0o600)
        except FileNotFoundError:
            pass


def is_demo_database(path: str | os.PathLike) -> bool:
    """Is ``path`` the bundled demo's database (never written by a user)?"""
    return Path(path).resolve() == Path(DEMO_DB).resolve()


SYNTHETIC = "synthetic"


def mark_synthetic(con) -> None:
    """Mark the database's rows as invented (the demo clinic's)."""
    con.execute("INSERT INTO dataset_marks VALUES ($mark, now()::TIMESTAMP) "
                "ON CONFLICT DO NOTHING", {"mark": SYNTHETIC})


def read_sql(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def connect(path: str | os.PathLike, read_only: bool = False,
            schema: str = "schema.sql") -> duckdb.DuckDBPyConnection:
    """Open the database; a writable connection also creates the schema."""
    path = Path(path)
    if read_only:
        return duckdb.connect(str(path), read_only=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    _private(path)  # created (or left by an older version) with the process's umask
    con.execute(read_sql(schema))
    _private(path)
    return con


def with_retry(action, attempts: int = 100, pause: float = 0.1):
    """Run ``action``, waiting while another process holds the file's lock."""
    for attempt in range(attempts):
        try:
            return action()
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or attempt == attempts - 1:
                raise
            time.sleep(pause)


@contextmanager
def writer(path: str | os.PathLike,
           schema: str = "schema.sql") -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived read-write connection, for ingests and the audit log."""
    with file_lock(path):
        con = with_retry(lambda: connect(path, schema=schema))
        try:
            yield con
        finally:
            con.close()
