"""Snapshots: the on-disk copy (large databases) serves exactly what the
in-memory copy (small ones) serves, and neither holds the audit log."""

import pandas as pd

from analysis import audit, outcomes, store


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

