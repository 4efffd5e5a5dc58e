"""Read-side snapshots of the outcomes database.

Readers never query the DuckDB file while it may be written: a snapshot
copies the tables, inside one read transaction, into a private DuckDB file
in a temporary folder (holding a read-only connection to the clinic's file
only for the copy), builds the SQL models of ``sql/models`` there, and
serves every query from it.  A snapshot is rebuilt when the file's data
version changes (a new ingest), so a reader sees either all of an ingest or
none of it, and a writer is never blocked for long.  Being a file (compressed
on disk, cached by DuckDB's buffer manager under ``OUTCOMES_MEMORY_LIMIT``)
rather than an in-memory database keeps memory bounded at ten million visits;
a small database (under ``IN_MEMORY_BELOW`` bytes) is copied into memory,
which builds about twice as fast.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from analysis import db

MODEL_DIR = db.SQL_DIR / "models"
STORED_TABLES = ("visits", "medications", "ingest_log", "quarantine", "value_issues")
# Models kept as tables (everything else is a view): the ones many queries read.
MATERIALISED = {"stg_visits", "patients", "baselines", "patient_timepoints"}
MEMORY_LIMIT = os.environ.get("OUTCOMES_MEMORY_LIMIT", "3GB")
IN_MEMORY_BELOW = 256 * 1024 * 1024


@dataclass(frozen=True)
class DataVersion:
    ingests: int
    last_ingest_id: int | None


class Snapshot:
    """An in-memory copy of one database with the outcome models built."""

    def __init__(self, db_path: str | os.PathLike):
        self.db_path = Path(db_path)
        self._lock = threading.RLock()
        self._folder = tempfile.mkdtemp(prefix="outcomes-snapshot-")
        small = not self.db_path.exists() or self.db_path.stat().st_size < IN_MEMORY_BELOW
        self.con = duckdb.connect(
            ":memory:" if small else os.path.join(self._folder, "snapshot.duckdb"))
        self._finalizer = weakref.finalize(self, _discard, self.con, self._folder)
        self.con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        self.con.execute("SET enable_progress_bar = false")
        self.version = self._copy_tables()
        self._build_models()

    # -- building ---------------------------------------------------------

    def _copy_tables(self) -> DataVersion:
        self.con.execute(db.read_sql("schema.sql"))
        if not self.db_path.exists():
            return DataVersion(0, None)
        path = str(self.db_path).replace("'", "''")
        with db.FILE_LOCK:
            db.with_retry(lambda: self.con.execute(f"ATTACH '{path}' AS source (READ_ONLY)"))
            try:
                return self._copy_from_source()
            finally:
                self.con.execute("DETACH source")

    def _copy_from_source(self) -> DataVersion:
        present = {r[0] for r in self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'source'"
        ).fetchall()}
        for table in STORED_TABLES:
            if table in present:
                self.con.execute(f"INSERT INTO main.{table} BY NAME SELECT * FROM source.{table}")
        version = self.con.execute(
            "SELECT count(*), max(ingest_id) FROM main.ingest_log").fetchone()
        return DataVersion(*version)

    def _build_models(self) -> None:
        for path in sorted(MODEL_DIR.glob("*.sql")):
            name = path.stem.split("_", 1)[1]
            kind = "TABLE" if name in MATERIALISED else "VIEW"
            self.con.execute(f"CREATE OR REPLACE {kind} {name} AS {path.read_text()}")

    # -- reading ----------------------------------------------------------

    def query(self, sql: str, params: dict | list | None = None) -> pd.DataFrame:
        with self._lock:
            return self.con.execute(sql, params or {}).df()

    def scalar(self, sql: str, params: dict | list | None = None):
        with self._lock:
            row = self.con.execute(sql, params or {}).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        with self._lock:
            self._finalizer()


def _discard(con: duckdb.DuckDBPyConnection, folder: str) -> None:
    try:
        con.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_version(db_path: str | os.PathLike) -> DataVersion:
    """The data version of the file, read with a short read-only connection."""
    path = Path(db_path)
    if not path.exists():
        return DataVersion(0, None)

    def read():
        con = duckdb.connect(str(path), read_only=True)
        try:
            return DataVersion(*con.execute(
                "SELECT count(*), max(ingest_id) FROM ingest_log").fetchone())
        except duckdb.CatalogException:
            return DataVersion(0, None)
        finally:
            con.close()

    with db.FILE_LOCK:
        return db.with_retry(read)


_cache: dict[Path, tuple[tuple, Snapshot]] = {}
_cache_lock = threading.Lock()


def _file_state(path: Path) -> tuple:
    state = []
    for candidate in (path, Path(str(path) + ".wal")):
        try:
            stat = candidate.stat()
            state.append((stat.st_mtime_ns, stat.st_size))
        except FileNotFoundError:
            state.append(None)
    return tuple(state)


def snapshot(db_path: str | os.PathLike) -> Snapshot:
    """The current snapshot of a database, rebuilt only when its data changed."""
    path = Path(db_path).resolve()
    with _cache_lock:
        state = _file_state(path)
        cached = _cache.get(path)
        if cached and cached[0] == state:
            return cached[1]
        if cached:
            try:
                if read_version(path) == cached[1].version:
                    _cache[path] = (state, cached[1])
                    return cached[1]
            except duckdb.IOException:
                return cached[1]  # a writer holds the file: serve what we have
        fresh = Snapshot(path)
        _cache[path] = (_file_state(path), fresh)
        return fresh


def clear_cache() -> None:
    """Forget cached snapshots.  They are not closed here: another session may
    be reading one; each closes (and removes its files) once unreferenced."""
    with _cache_lock:
        _cache.clear()
