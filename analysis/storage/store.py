"""Read-side snapshots of the outcomes database.

Readers never query the DuckDB file while it may be written: a snapshot
copies the data, holding a read-only connection to the clinic's file only for
the copy, into a private database, builds the SQL models of ``sql/models``
there, and serves every query from it.  A snapshot is rebuilt when the file's
data version changes (a new ingest), so a reader sees either all of an ingest
or none of it, and a writer is never blocked for long.

A small database (under ``IN_MEMORY_BELOW`` bytes) has its tables copied into
an in-memory DuckDB, which builds fastest.  A large one is copied as a file
(byte for byte, into a temporary folder; see ``Snapshot._copy_on_disk``) and
the models are built in that file: compressed on disk, cached by DuckDB's
buffer manager under ``OUTCOMES_MEMORY_LIMIT``, so memory stays bounded at
ten million visits.

When the file holds the models saved for its current data
(:mod:`analysis.storage.saved_models`), a snapshot is the byte copy of the
file at any size (into shared memory when it fits: :mod:`analysis.storage.
scratch`) and only the views are built; :func:`in_place` reads such a file
where it is, without a copy, for a one-off command.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import duckdb

from analysis.storage import db, model_chain, saved_models, scratch

if TYPE_CHECKING:   # pandas is imported by a query's .df(), not by this module
    import pandas as pd

log = logging.getLogger(__name__)

STORED_TABLES = ("visits", "medications", "ingest_log", "quarantine", "value_issues",
                 "dataset_marks")
MEMORY_LIMIT = os.environ.get("OUTCOMES_MEMORY_LIMIT", "3GB")
IN_MEMORY_BELOW = int(os.environ.get("OUTCOMES_IN_MEMORY_BELOW", str(256 * 1024 * 1024)))


@dataclass(frozen=True)
class DataVersion:
    ingests: int
    last_ingest_id: int | None


class _Reader:
    """The reading API of a snapshot and of an in-place reader (``con``,
    ``db_path`` and ``version`` set by them)."""

    con: duckdb.DuckDBPyConnection
    db_path: Path
    version: DataVersion

    def _start_reading(self) -> None:
        self._memo: dict[str, object] = {}
        self._memo_locks: dict[str, threading.Lock] = {}
        self._memo_guard = threading.Lock()

    def query(self, sql: str, params: dict | list | None = None) -> "pd.DataFrame":
        # A cursor is its own connection to the snapshot's database, so
        # sessions query it side by side instead of one after another.
        with self.con.cursor() as cursor:
            return cursor.execute(sql, params or {}).df()

    def rows(self, sql: str, params: dict | list | None = None) -> list[tuple]:
        """The result as plain tuples (no pandas)."""
        with self.con.cursor() as cursor:
            return cursor.execute(sql, params or {}).fetchall()

    def scalar(self, sql: str, params: dict | list | None = None):
        with self.con.cursor() as cursor:
            row = cursor.execute(sql, params or {}).fetchone()
        return row[0] if row else None

    @property
    def synthetic(self) -> bool:
        """The rows are invented: the bundled demo's file, or a file marked
        so (a copy of it).  Every output made from it says so."""
        return db.is_demo_database(self.db_path) or bool(self.memo(
            "synthetic", lambda: self.scalar("SELECT count(*) FROM dataset_marks WHERE mark = $m",
                                             {"m": db.SYNTHETIC})))

    def memo(self, key: str, compute):
        """``compute()`` once per snapshot (that is, per data version), for
        values that depend on the data only; concurrent callers wait for the
        first one instead of computing it again."""
        with self._memo_guard:
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                self._memo[key] = compute()
            return self._memo[key]


class Snapshot(_Reader):
    """A private copy of one database with the outcome models built."""

    def __init__(self, db_path: str | os.PathLike):
        self.db_path = Path(db_path)
        self._lock = threading.RLock()
        self._folder = tempfile.mkdtemp(prefix="outcomes-snapshot-")
        self._folders = [self._folder]   # removed when the snapshot goes
        self._file_folder = self._folder   # where the copy of the file goes
        self.build_timings: dict[str, float] = {}   # step -> seconds (for benchmarks)
        # The file held the models saved for its data (analysis.storage.
        # saved_models): they came with the byte copy, only the views are made.
        self.saved_models = False
        # With saved models there is nothing to build: the byte copy of the
        # file is the fastest at any size (into shared memory when it fits:
        # only views are written to it; analysis.storage.scratch).
        saved = _has_saved_models(self.db_path)
        small = (not self.db_path.exists() or self.db_path.stat().st_size < IN_MEMORY_BELOW) \
            and not saved
        try:
            if saved and scratch.fits_in_shared_memory(self.db_path):
                self._file_folder = scratch.shared_memory_folder()
                self._folders.append(self._file_folder)
            self.con, self.version = (self._copy_in_memory() if small
                                      else self._copy_on_disk())
        except BaseException:
            for folder in self._folders:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        self._finalizer = weakref.finalize(self, _discard, self.con, tuple(self._folders))
        self._build_models()
        self._start_reading()
        self.warming: threading.Thread | None = None

    # -- building ---------------------------------------------------------

    def _connect(self, target: str) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(target)
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.execute("SET enable_progress_bar = false")
        if target != ":memory:":
            # What spills goes to the private folder on disk, even when the
            # file is in shared memory.  A snapshot is thrown away: its
            # checkpoints (at close) never vacuum the row groups the saved
            # models' updates left with deleted rows, which rewrote those
            # tables (3.5 s at ten million visits, 0.5 s without).
            spill = os.path.join(self._folder, "spill").replace("'", "''")
            con.execute(f"SET temp_directory = '{spill}'")
            con.execute("SET max_vacuum_tasks = 0")
        return con

    def _copy_in_memory(self) -> tuple[duckdb.DuckDBPyConnection, DataVersion]:
        """A small database: copy the stored tables into an in-memory DuckDB."""
        con = self._connect(":memory:")
        try:
            return con, self._copy_tables(con)
        except BaseException:
            con.close()
            raise

    def _snapshot_file(self) -> str:
        return os.path.join(self._file_folder, "snapshot.duckdb")

    def _copy_tables(self, con: duckdb.DuckDBPyConnection) -> DataVersion:
        con.execute(db.read_sql("schema.sql"))
        if not self.db_path.exists():
            return DataVersion(0, None)
        path = str(self.db_path).replace("'", "''")
        with db.file_lock(self.db_path):
            db.with_retry(lambda: con.execute(f"ATTACH '{path}' AS source (READ_ONLY)"))
            try:
                return self._copy_from_source(con)
            finally:
                con.execute("DETACH source")

    def _copy_from_source(self, con: duckdb.DuckDBPyConnection) -> DataVersion:
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'source'"
        ).fetchall()}
        for table in STORED_TABLES:
            if table in present:
                started = time.perf_counter()
                con.execute(f"INSERT INTO main.{table} BY NAME SELECT * FROM source.{table}")
                self.build_timings[f"copy {table}"] = time.perf_counter() - started
        return _read_version(con)

    def _copy_on_disk(self) -> tuple[duckdb.DuckDBPyConnection, DataVersion]:
        """A large database: copy the file itself (and its WAL) byte for byte,
        then open the copy, instead of re-compressing every table row by row
        (at ten million visits, ~0.5 s instead of ~35 s).

        The copy is made while a read-only connection is attached: DuckDB
        holds a shared lock on the file for it, so no writer (in any
        process) can change the file during the copy.  Tables the snapshot
        does not serve (none today) are dropped from the copy.  When the
        copy's tables do not have exactly the columns of ``schema.sql`` (a
        file written by another version), the tables are copied by name
        instead, as for a small database.
        """
        started = time.perf_counter()
        target = self._snapshot_file()
        path = str(self.db_path).replace("'", "''")
        with db.file_lock(self.db_path):
            guard = duckdb.connect(":memory:")
            try:
                db.with_retry(lambda: guard.execute(f"ATTACH '{path}' AS source (READ_ONLY)"))
                try:
                    self._copy_file(target)
                except OSError:
                    if self._file_folder == self._folder:
                        raise
                    # Shared memory filled up meanwhile: onto the disk.
                    shutil.rmtree(self._file_folder, ignore_errors=True)
                    self._file_folder = self._folder
                    target = self._snapshot_file()
                    self._copy_file(target)
            finally:
                guard.close()
        self.build_timings["copy file"] = time.perf_counter() - started
        con = self._connect(target)
        try:
            columns, expected = _columns(con), _schema_columns()
            if any(columns[table] != expected[table] for table in columns):
                con.close()
                for stale in (target, target + ".wal"):
                    Path(stale).unlink(missing_ok=True)
                con = self._connect(target)
                return con, self._copy_tables(con)
            self.saved_models = saved_models.usable(con)
            keep = set(STORED_TABLES) | (set(saved_models.materialised_names())
                                         if self.saved_models else set())
            for (schema, name, kind) in con.execute("""
                    SELECT schema_name, table_name, 'TABLE' FROM duckdb_tables() WHERE NOT internal
                    UNION ALL
                    SELECT schema_name, view_name, 'VIEW' FROM duckdb_views() WHERE NOT internal
                    """).fetchall():
                if not (schema == "main" and kind == "TABLE" and name in keep):
                    con.execute(f'DROP {kind} IF EXISTS "{schema}"."{name}" CASCADE')
            con.execute(db.read_sql("schema.sql"))   # the tables the file lacks, empty
            return con, _read_version(con)
        except BaseException:
            con.close()
            raise

    def _copy_file(self, target: str) -> None:
        shutil.copyfile(self.db_path, target)
        wal = Path(str(self.db_path) + ".wal")
        if wal.exists():
            shutil.copyfile(wal, target + ".wal")

    def _build_models(self) -> None:
        """The models of ``sql/models/models.toml``, in dependency order;
        with the tables saved for this very data, only the views."""
        for model in model_chain.build_order():
            if model.materialized and self.saved_models:
                continue
            kind = "TABLE" if model.materialized else "VIEW"
            started = time.perf_counter()
            self.con.execute(f"CREATE OR REPLACE {kind} {model.name} AS {model.sql}")
            self.build_timings[f"model {model.name}"] = time.perf_counter() - started

    def warm_up(self, readers: bool = False) -> threading.Thread:
        """Compute, in the background, what is per data version and slow to
        compute on a page: with ``readers``, what the registered warmers
        prepare (:func:`add_warmer`: the dashboard's pages), then the data
        fingerprint (a sort of every visit) shown by the quarterly report and
        the claim memo.  ``warming.join()`` waits."""
        def work():
            from analysis.storage.fingerprint import data_fingerprint
            if readers:
                _run_warmers(self)
            try:
                data_fingerprint(self)
            except Exception:  # noqa: BLE001 - a page computes it again and reports
                pass

        self.warming = threading.Thread(target=work, name="snapshot-warm-up", daemon=True)
        self.warming.start()
        return self.warming

    def close(self) -> None:
        with self._lock:
            if self.warming is not None:
                self.warming.join()   # its cursor must not outlive the connection
            self._finalizer()


class InPlace(_Reader):
    """The clinic's file itself, attached read-only, with the models saved
    for its current data: nothing copied; views over the file's tables and
    the models' views are made in an in-memory database (views, unlike
    temporary objects, are seen by every cursor).  Made by :func:`in_place`."""

    saved_models = True

    def __init__(self, db_path: Path, con: duckdb.DuckDBPyConnection, seconds: float):
        self.db_path, self.con = db_path, con
        self.version = _read_version(con)
        self.build_timings = {"read in place": seconds}
        self._start_reading()

    def close(self) -> None:
        self.con.close()


def _open_in_place(path: Path) -> InPlace | None:
    """The file attached read-only, or None when it has no usable saved
    models (the caller holds the file's lock)."""
    started = time.perf_counter()
    con = duckdb.connect(":memory:")
    quoted = str(path).replace("'", "''")
    try:
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.execute("SET enable_progress_bar = false")
        db.with_retry(lambda: con.execute(f"ATTACH '{quoted}' AS source (READ_ONLY)"))
        tables = (*STORED_TABLES, *saved_models.materialised_names())
        present = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'source' "
            "AND schema_name = 'main'").fetchall()}
        if not (saved_models.usable(con, "source") and set(tables) <= present):
            con.close()
            return None
        for table in tables:
            con.execute(f"CREATE VIEW main.{table} AS SELECT * FROM source.main.{table}")
        for model in model_chain.build_order():
            if not model.materialized:
                con.execute(f"CREATE VIEW main.{model.name} AS {model.sql}")
    except BaseException:
        con.close()
        raise
    return InPlace(path, con, time.perf_counter() - started)


@contextmanager
def in_place(db_path: str | os.PathLike) -> Iterator[_Reader]:
    """The data of a database for a one-off command (``claim``,
    ``responders``, a cron job), with the reading API of a snapshot.

    When the file holds the models saved for its current data, it is read
    where it is, read-only, nothing copied: the file's lock is held and the
    file open until the block ends, so an ingest (in this process or
    another) waits meanwhile and can never change the data under the reader.
    Otherwise a :class:`Snapshot` is taken (the file is let go once copied).
    Either is closed when the block ends.
    """
    path = Path(db_path)
    if path.exists() and saved_models.enabled():
        with db.file_lock(path):
            reader = _open_in_place(path)
            if reader is not None:
                try:
                    yield reader
                finally:
                    reader.close()
                return
    snap = Snapshot(path)
    try:
        yield snap
    finally:
        snap.close()


def _has_saved_models(path: Path) -> bool:
    """The file holds usable saved models now (checked again on the copy)."""
    if not path.exists() or not saved_models.enabled():
        return False
    con = duckdb.connect(":memory:")
    quoted = str(path).replace("'", "''")
    try:
        with db.file_lock(path):
            try:
                db.with_retry(lambda: con.execute(f"ATTACH '{quoted}' AS source (READ_ONLY)"))
                return saved_models.usable(con, "source")
            finally:
                con.close()   # before the lock goes: a writer may open the file then
    except duckdb.Error:
        return False


def _read_version(con: duckdb.DuckDBPyConnection) -> DataVersion:
    return DataVersion(*con.execute(
        "SELECT count(*), max(ingest_id) FROM main.ingest_log").fetchone())


def _columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """The columns (name, type, in order) of the stored tables present."""
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in con.execute("""
            SELECT table_name, column_name, data_type FROM duckdb_columns()
            WHERE database_name = current_database() AND schema_name = 'main'
              AND list_contains($tables, table_name)
            ORDER BY table_name, column_index""", {"tables": list(STORED_TABLES)}).fetchall():
        found.setdefault(table, []).append((column, data_type))
    return found


_expected_columns: dict[str, list[tuple[str, str]]] | None = None


def _schema_columns() -> dict[str, list[tuple[str, str]]]:
    """The columns ``schema.sql`` gives the stored tables."""
    global _expected_columns
    if _expected_columns is None:
        con = duckdb.connect(":memory:")
        try:
            con.execute(db.read_sql("schema.sql"))
            _expected_columns = _columns(con)
        finally:
            con.close()
    return _expected_columns


def _discard(con: duckdb.DuckDBPyConnection, folders: tuple[str, ...]) -> None:
    try:
        con.close()
    except duckdb.Error:
        pass  # a background warm-up still reading it at exit: the exit closes it
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


class FileBusy(Exception):
    """Another connection holds the file right now."""


def read_version(db_path: str | os.PathLike, wait: bool = True) -> DataVersion:
    """The data version of the file, read with a short read-only connection.

    With ``wait=False`` it raises :class:`FileBusy` at once instead of
    waiting while this process or another one is writing the file.
    """
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

    lock = db.file_lock(path)
    if not lock.acquire(blocking=wait):
        raise FileBusy(str(path))
    try:
        if wait:
            return db.with_retry(read)
        try:
            return read()
        except (duckdb.IOException, duckdb.ConnectionException) as error:
            raise FileBusy(str(error)) from None
    finally:
        lock.release()


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


_build_locks: dict[Path, threading.Lock] = {}
_warmers: list = []


def add_warmer(warmer) -> None:
    """``warmer(snapshot)`` prepares each new data version for its readers
    (the dashboard registers its pages: ``ui.warm``).  It runs when a
    snapshot built with ``warm`` replaces a served one: before the new one is
    served when built in the background, else in its warm-up thread."""
    if warmer not in _warmers:
        _warmers.append(warmer)


def _run_warmers(snap: Snapshot) -> None:
    for warmer in list(_warmers):
        try:
            warmer(snap)
        except Exception:  # noqa: BLE001 - a reader computes what it needs itself
            log.exception("preparing the new snapshot of %s for its readers failed", snap.db_path)


def snapshot(db_path: str | os.PathLike, warm: bool = False,
             background: bool = False) -> Snapshot:
    """The current snapshot of a database, rebuilt only when its data changed.

    Never makes a reader wait for a writer when there is a snapshot to serve:
    while an ingest holds the file, or while another session rebuilds the
    snapshot, the previous one is served.  ``warm`` (the dashboard) starts a
    new snapshot's :meth:`Snapshot.warm_up`; a one-off command does not.

    ``background`` (the dashboard): when the data changed and there is a
    snapshot to serve, the new one is built in a background thread and the
    previous one served until it is ready (:func:`building` says so), so no
    reader waits for a build (39 s at ten million visits).  Without it the
    caller builds it, as a command or the session that just ingested wants.
    """
    path = Path(db_path).resolve()
    with _cache_lock:
        cached = _cache.get(path)
        build_lock = _build_locks.setdefault(path, threading.Lock())
    state = _file_state(path)
    if cached:
        if cached[0] == state:
            return cached[1]
        try:
            if read_version(path, wait=False) == cached[1].version:
                with _cache_lock:
                    _cache[path] = (state, cached[1])
                return cached[1]
        except FileBusy:
            return cached[1]  # a writer holds the file: serve what we have
        if not build_lock.acquire(blocking=False):
            return cached[1]  # another session is building the new one
        if background:
            threading.Thread(target=_build, args=(path, cached, warm, build_lock, True),
                             name="snapshot-build", daemon=True).start()
            return cached[1]
    else:
        build_lock.acquire()
    return _build(path, cached, warm, build_lock)


def _build(path: Path, cached: tuple | None, warm: bool, build_lock: threading.Lock,
           background: bool = False) -> Snapshot:
    """Build and cache a new snapshot (the caller holds ``build_lock``).  New
    data built in the background is served only once the warmers have
    prepared it (the previous snapshot is served meanwhile, and
    :func:`building` says so), so its first reader does not wait for them."""
    try:
        with _cache_lock:
            current = _cache.get(path)
        if current and current is not cached and current[0] == _file_state(path):
            return current[1]  # built by another session meanwhile
        state = _file_state(path)
        fresh = Snapshot(path)
        if warm and cached and background:
            _run_warmers(fresh)
        if warm:
            fresh.warm_up(readers=bool(cached) and not background)
        with _cache_lock:
            _cache[path] = (state, fresh)
        if cached:
            # The old snapshot (a copy of the data) goes once no session reads
            # it; Streamlit's post-run collection is off, so collect here, on
            # this rare change of data version, in case a cycle still holds it.
            gc.collect()
        return fresh
    except Exception:
        if threading.current_thread().name != "snapshot-build":
            raise
        # In the background nobody waits for it: say so, serve the previous
        # snapshot, and let the next reader try again.
        log.exception("building the snapshot of %s failed; serving the previous one", path)
        return cached[1] if cached else None
    finally:
        build_lock.release()


def building(db_path: str | os.PathLike) -> bool:
    """A new snapshot of this database is being built (the data changed)."""
    with _cache_lock:
        lock = _build_locks.get(Path(db_path).resolve())
    return bool(lock and lock.locked())


def clear_cache() -> None:
    """Forget cached snapshots.  They are not closed here: another session may
    be reading one; each closes (and removes its files) once unreferenced."""
    with _cache_lock:
        _cache.clear()
