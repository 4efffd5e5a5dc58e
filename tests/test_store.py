"""Snapshots: the on-disk copy (large databases) serves exactly what the
in-memory copy (small ones) serves, neither holds the audit log, sessions read
one snapshot side by side, and per-version values are computed once."""

from pathlib import Path

import pandas as pd
import pytest

from analysis.access import audit
from analysis.core import definitions
from analysis.metrics import outcomes
from analysis.storage import scratch, store


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def test_disk_snapshot_equals_memory_snapshot(demo_db, monkeypatch, tmp_path):
    import shutil
    path = tmp_path / "copy.duckdb"
    shutil.copy(demo_db, path)
    audit.record(path, "page_view", user="someone", role="clinical", page="Overview")
    in_memory = store.Snapshot(path)
    monkeypatch.setattr(store, "IN_MEMORY_BELOW", 0)
    on_disk = store.Snapshot(path)
    assert in_memory.version == on_disk.version
    for model in ("patients", "patient_timepoints", "patient_outcomes", "stg_visits",
                  "quarantine", "value_issues", "medications"):
        left = _sorted(in_memory.query(f"SELECT * FROM {model}"))
        right = _sorted(on_disk.query(f"SELECT * FROM {model}"))
        pd.testing.assert_frame_equal(left, right, check_dtype=False)
    pd.testing.assert_frame_equal(outcomes.responder_grid(in_memory),
                                  outcomes.responder_grid(on_disk))
    for snap in (in_memory, on_disk):  # the audit log is never served to pages
        tables = set(snap.query("SELECT table_name FROM information_schema.tables")["table_name"])
        assert "audit_log" not in tables or snap.scalar("SELECT count(*) FROM audit_log") == 0
    in_memory.close()
    on_disk.close()


def test_a_snapshot_in_shared_memory_serves_what_one_on_disk_serves(demo_db, monkeypatch,
                                                                     tmp_path):
    """A file with saved models is copied into shared memory when it fits
    (else onto the disk: no room, switched off, or shared memory full during
    the copy); each serves the same rows, and its folders go when it closes."""
    import os
    import shutil
    if not (scratch.SHARED_MEMORY.is_dir() and os.access(scratch.SHARED_MEMORY, os.W_OK)):
        pytest.skip("no shared memory here")
    path = tmp_path / "copy.duckdb"
    shutil.copy(demo_db, path)
    in_shared = store.Snapshot(path)
    assert in_shared.saved_models
    assert Path(in_shared._snapshot_file()).parent.parent == scratch.SHARED_MEMORY
    monkeypatch.setenv("OUTCOMES_SNAPSHOT_SHARED_MEMORY", "off")
    switched_off = store.Snapshot(path)
    monkeypatch.delenv("OUTCOMES_SNAPSHOT_SHARED_MEMORY")
    monkeypatch.setattr(scratch, "SHARED_MEMORY_ROOM", 10**9)
    no_room = store.Snapshot(path)
    monkeypatch.undo()
    real_copy = store.Snapshot._copy_file

    def full(self, target):
        if Path(target).parent.parent == scratch.SHARED_MEMORY:
            raise OSError(28, "No space left on device")
        real_copy(self, target)

    monkeypatch.setattr(store.Snapshot, "_copy_file", full)
    filled_up = store.Snapshot(path)
    monkeypatch.undo()
    for snap in (switched_off, no_room, filled_up):
        assert snap.saved_models
        assert Path(snap._snapshot_file()).parent.parent != scratch.SHARED_MEMORY
        for model in ("stg_visits", "patient_windows", "mood_outcomes", "patient_outcomes"):
            pd.testing.assert_frame_equal(
                _sorted(in_shared.query(f"SELECT * FROM {model}")),
                _sorted(snap.query(f"SELECT * FROM {model}")))
    for snap in (in_shared, switched_off, no_room, filled_up):
        folders = list(snap._folders)
        snap.close()
        assert not any(Path(folder).exists() for folder in folders)


def test_a_snapshot_copy_in_shared_memory_is_for_its_owner_only(demo_db, tmp_path):
    """/dev/shm is open to every local user (mode 1777): the clinic's data
    copied there must sit in a folder only its owner can list or enter, and
    another process's leftover clean-up must not have touched it."""
    import os
    import shutil
    import stat
    if not (scratch.SHARED_MEMORY.is_dir() and os.access(scratch.SHARED_MEMORY, os.W_OK)):
        pytest.skip("no shared memory here")
    path = tmp_path / "copy.duckdb"
    shutil.copy(demo_db, path)
    snap = store.Snapshot(path)
    try:
        folder = Path(snap._snapshot_file()).parent
        assert folder.parent == scratch.SHARED_MEMORY
        mode = stat.S_IMODE(folder.stat().st_mode)
        assert mode & 0o077 == 0, f"{folder} is mode {oct(mode)}: other users may read the copy"
        assert folder.stat().st_uid == os.getuid()
        assert Path(snap._snapshot_file()).exists()
    finally:
        snap.close()


def test_a_copy_left_in_shared_memory_by_a_killed_process_is_removed(demo_db, tmp_path):
    """A process killed before it removed its snapshot's copy leaves it in
    memory; the next snapshot made there removes the folders of processes
    that are gone, and no other folder."""
    import os
    import shutil
    import subprocess
    import sys
    if not (scratch.SHARED_MEMORY.is_dir() and os.access(scratch.SHARED_MEMORY, os.W_OK)):
        pytest.skip("no shared memory here")
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout)
    left = scratch.SHARED_MEMORY / f"{scratch.PREFIX}{gone}-test"
    mine = scratch.SHARED_MEMORY / f"{scratch.PREFIX}{os.getpid()}-test"
    other = scratch.SHARED_MEMORY / f"{scratch.PREFIX}not-a-process"
    try:
        for folder in (left, mine, other):
            folder.mkdir()
            (folder / "snapshot.duckdb").write_bytes(b"a copy")
        path = tmp_path / "copy.duckdb"
        shutil.copy(demo_db, path)
        snap = store.Snapshot(path)
        assert Path(snap._snapshot_file()).parent.parent == scratch.SHARED_MEMORY
        assert not left.exists() and mine.exists() and other.exists()
        snap.close()
    finally:
        for folder in (left, mine, other):
            shutil.rmtree(folder, ignore_errors=True)


def test_sessions_query_one_snapshot_side_by_side(demo_snapshot):
    # Each query runs on its own cursor: threads reading the same snapshot
    # at once get the same answers as one reader alone.
    import concurrent.futures
    sql = "SELECT count(*) FROM patient_outcomes WHERE timepoint = $timepoint"
    expected = {tp: demo_snapshot.scalar(sql, {"timepoint": tp}) for tp in definitions.TIMEPOINTS}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda tp: (tp, demo_snapshot.scalar(sql, {"timepoint": tp})),
                                list(definitions.TIMEPOINTS) * 10))
    assert all(count == expected[tp] > 0 for tp, count in answers)


def test_memo_computes_once_per_snapshot_even_when_asked_at_once(demo_db):
    import threading
    import time
    snap = store.Snapshot(demo_db)
    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.2)
        return len(calls)

    results = []
    threads = [threading.Thread(target=lambda: results.append(snap.memo("k", compute)))
               for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [1] * 5 and calls == [1]
    assert store.Snapshot(demo_db).memo("k", compute) == 2   # a new snapshot computes again


def test_snapshot_warms_its_fingerprint_in_the_background(demo_db, monkeypatch):
    from analysis.storage import fingerprint
    store.clear_cache()
    assert store.snapshot(demo_db).warming is None   # a command does not warm up
    store.clear_cache()
    snap = store.snapshot(demo_db, warm=True)        # the dashboard does
    snap.warming.join(timeout=60)
    assert "data_fingerprint" in snap._memo
    monkeypatch.setattr(fingerprint, "_compute", lambda s: pytest.fail("computed twice"))
    assert fingerprint.data_fingerprint(snap) == snap._memo["data_fingerprint"]
    store.clear_cache()


def test_background_rebuild_serves_the_previous_snapshot_until_the_new_one_is_ready(
        demo_exports, tmp_path, monkeypatch, caplog, hold_snapshot_builds):
    import logging

    from tests.helpers.builders import wait_until_built

    from analysis.storage import db
    from analysis.ingest.pipeline import ingest_files
    path = tmp_path / "clinic.duckdb"
    with db.writer(path) as con:
        ingest_files(con, [demo_exports.sessions])
    store.clear_cache()
    first = store.snapshot(path, background=True)    # nothing to serve yet: built here
    assert first.version.ingests == 1 and not store.building(path)

    with db.writer(path) as con:                     # new data arrives
        ingest_files(con, [demo_exports.medications])
    release = hold_snapshot_builds()
    # Readers are served the previous snapshot at once while it builds ...
    assert store.snapshot(path, background=True) is first
    assert store.building(path)
    assert store.snapshot(path, background=True) is first
    assert store.snapshot(path) is first              # even a caller that would build
    release.set()
    wait_until_built(path)                            # ... and the new one once ready
    fresh = store.snapshot(path, background=True)
    assert fresh is not first and fresh.version.ingests == 2

    # A build that fails in the background is logged; the previous one is served.
    from analysis.ingest.demo.generate import generate_demo
    more = generate_demo(tmp_path / "more", patients=20, seed=3)
    with db.writer(path) as con:
        ingest_files(con, [more.sessions])

    def broken(db_path):
        raise OSError("disk full")

    monkeypatch.setattr(store, "Snapshot", broken)
    with caplog.at_level(logging.ERROR, logger="analysis.storage.store"):
        assert store.snapshot(path, background=True) is fresh
        wait_until_built(path)
    assert "building the snapshot" in caplog.text and "disk full" in caplog.text
    assert store.snapshot(path, background=True) is fresh    # and tried again later
    wait_until_built(path)
    store.clear_cache()
