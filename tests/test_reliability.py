"""Reliability: an ingest killed at any point, random exports, readers during a write."""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, seed, settings, strategies as st

from analysis.storage import db, store
from tests.helpers.apptest import ROOT
from analysis.ingest.pipeline import ingest_file, ingest_files


# --------------------------------------------------------------------------
# crash safety


def _state(path: Path) -> tuple[int, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        visits = con.execute("SELECT count(*) FROM visits").fetchone()[0]
        logged = con.execute(
            "SELECT coalesce(sum(rows_accepted), 0) FROM ingest_log WHERE status = 'ingested'"
        ).fetchone()[0]
        return visits, logged
    finally:
        con.close()


@pytest.fixture(scope="module")
def big_export(tmp_path_factory):
    from analysis.ingest.demo.generate import generate_demo
    out = tmp_path_factory.mktemp("crash_export")
    return generate_demo(out, patients=25_000, seed=3, messy=False)


@pytest.fixture(scope="module")
def full_count(big_export, tmp_path_factory):
    path = tmp_path_factory.mktemp("crash_reference") / "reference.duckdb"
    with db.writer(path) as con:
        result = ingest_file(con, big_export.sessions)
    assert result.status == "ingested"
    return result.rows_accepted


@pytest.mark.parametrize("kill_after", [0.3, 0.8, 1.5, 2.5, 4.0])
def test_ingest_killed_with_sigkill_leaves_all_or_nothing(big_export, full_count, tmp_path,
                                                         kill_after):
    """SIGKILL the CLI ingest at several moments: the database still opens
    and holds all of the file or none of it; running again completes it."""
    path = tmp_path / "crash.duckdb"
    with db.writer(path):
        pass  # an existing, empty database
    process = subprocess.Popen(
        [sys.executable, "-m", "analysis", "ingest", str(big_export.sessions), "--db", str(path)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(kill_after)
    finished_before_kill = process.poll() is not None
    if not finished_before_kill:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    visits, logged = _state(path)
    assert visits in (0, full_count), f"partial ingest: {visits} of {full_count}"
    assert visits == logged  # the log and the data agree
    rerun = subprocess.run(
        [sys.executable, "-m", "analysis", "ingest", str(big_export.sessions), "--db", str(path),
         "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert _state(path) == (full_count, full_count)


def _visits(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT natural_key, pain_score FROM visits ORDER BY 1").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("step", ["stage", "checked", "delete", "logged"])
def test_ingest_killed_inside_its_transaction_rolls_back(demo_exports, tmp_path, step):
    """Kill points inside the transaction: after staging, after checking,
    after the earlier export's rows were deleted (the worst moment), and
    after the log row was written but before COMMIT."""
    path = tmp_path / "kill.duckdb"
    first = tmp_path / "first.csv"
    lines = Path(demo_exports.sessions).read_text().splitlines()
    first.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    with db.writer(path) as con:
        assert ingest_file(con, first).status == "ingested"
    before = _visits(path)
    env = {**os.environ, "OUTCOMES_TEST_PAUSE_AT": step}
    process = subprocess.Popen(
        [sys.executable, "-m", "analysis", "ingest", str(demo_exports.sessions), "--db", str(path)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    for line in process.stderr:
        if line.startswith(f"paused at {step}"):
            break
        assert time.time() < deadline, "the ingest never reached its kill point"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert _visits(path) == before  # none of the killed ingest
    rerun = subprocess.run(
        [sys.executable, "-m", "analysis", "ingest", str(demo_exports.sessions), "--db", str(path),
         "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    after = _visits(path)
    assert len(after) > len(before) and {k for k, _ in before} <= {k for k, _ in after}


def test_killed_between_the_ingest_and_the_models_save_readers_stay_right(
        demo_exports, tmp_path, monkeypatch):
    """Kill the command after its ingest committed, while it saves the
    models of the new data (their own transaction): the data is all there,
    the saved models are of the data before, and no reader uses them (it
    builds its own: the same numbers as a full rebuild); the next ingest,
    even of nothing new, saves them again."""
    path = tmp_path / "kill.duckdb"
    lines = Path(demo_exports.sessions).read_text().splitlines()
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    second.write_text("\n".join(lines[:1] + lines[len(lines) // 2:]) + "\n")
    with db.writer(path) as con:
        assert ingest_files(con, [first]).ok
    env = {**os.environ, "OUTCOMES_TEST_PAUSE_AT": "models saved"}
    process = subprocess.Popen(
        [sys.executable, "-m", "analysis", "ingest", str(second), "--db", str(path)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if line.startswith("paused at models saved"):
            break
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    reference = tmp_path / "reference.duckdb"
    with db.writer(reference) as con:
        assert ingest_files(con, [first, second]).ok
    assert _visits(path) == _visits(reference)   # the ingest itself committed

    def responders(snap) -> list[tuple]:
        return snap.rows("SELECT timepoint, definition, count(*) FILTER (WHERE responder) "
                         "FROM patient_outcomes GROUP BY ALL ORDER BY ALL")

    snap = store.Snapshot(path)
    assert not snap.saved_models and "model patient_windows" in snap.build_timings
    monkeypatch.setenv("OUTCOMES_SAVED_MODELS", "off")
    truth = responders(store.Snapshot(path))
    monkeypatch.delenv("OUTCOMES_SAVED_MODELS")
    assert responders(snap) == truth
    with store.in_place(path) as reader:
        assert not reader.saved_models and responders(reader) == truth
    rerun = subprocess.run(
        [sys.executable, "-m", "analysis", "ingest", str(second), "--db", str(path), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    with store.in_place(path) as reader:
        assert reader.saved_models and responders(reader) == truth


# --------------------------------------------------------------------------
# property-based: any export never raises and the counts always add up

HEADERS = ["patient_id", "Visit Date", "visit_type", "Pain Score (0-10)", "phq9", "site",
           "opioid_mme_per_day", "condition", "benzodiazepine", "Name", "unknown col"]
cell = st.one_of(
    st.sampled_from(["", "P1", "P2", "2025-01-01", "01/02/2025", "2025-02-30", "intake",
                     "infusion", "booster", "follow-up", "phone", "7", "11", "-1", "abc",
                     "4.9", "nan", "yes", "no", "G43.A0", "fibro", "Zürich", "=SUM(A1)",
                     '"quoted, comma"', "2031-01-01"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=8))


@st.composite
def exports(draw):
    columns = draw(st.permutations(HEADERS))
    columns = columns[: draw(st.integers(3, len(columns)))]
    rows = draw(st.lists(st.lists(cell, min_size=len(columns), max_size=len(columns)),
                         max_size=25))
    if draw(st.booleans()) and rows:
        rows.append(list(rows[0]))  # an exact duplicate
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return columns, rows, delimiter, encoding, newline


def _write(path: Path, columns, rows, delimiter, encoding, newline) -> None:
    import csv
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(columns)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding, errors="replace"))


@seed(20261124)
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(export=exports())
def test_any_export_never_raises_and_counts_add_up(tmp_path_factory, export):
    columns, rows, delimiter, encoding, newline = export
    folder = tmp_path_factory.mktemp("prop")
    path = folder / "export.csv"
    _write(path, columns, rows, delimiter, encoding, newline)
    with db.writer(folder / "p.duckdb") as con:
        result = ingest_file(con, path, ingest_date=dt.date(2030, 1, 1))
        assert result.status in ("ingested", "refused")
        if result.status == "refused":
            assert result.error and "export.csv" in result.error
            assert con.execute("SELECT count(*) FROM visits").fetchone()[0] == 0
            return
        assert result.rows_read == (result.rows_accepted + result.rows_quarantined
                                    + result.duplicates_collapsed)
        stored = con.execute("SELECT count(*) FROM visits").fetchone()[0]
        assert stored == result.rows_accepted
        # Accepted rows round-trip: their identity is what the file said.
        if stored:
            keys = con.execute("SELECT patient_id, visit_type FROM visits").fetchall()
            assert all(pid and pid.strip() == pid for pid, _ in keys)
            assert {t for _, t in keys} <= {"intake", "infusion", "booster", "follow_up"}
        # The identifying column's values never reach any table.
        if "Name" in columns:
            assert "Name" in result.dropped_identifying_columns


# --------------------------------------------------------------------------
# readers while a writer ingests


def test_readers_keep_working_while_an_ingest_writes(demo_exports, tmp_path):
    path = tmp_path / "busy.duckdb"
    with db.writer(path) as con:
        ingest_file(con, demo_exports.sessions)
    first = store.snapshot(path)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            try:
                snap = store.snapshot(path)
                assert snap.scalar("SELECT count(*) FROM patient_outcomes") > 0
            except BaseException as error:  # noqa: BLE001 - collected for the assertion
                errors.append(error)
                return

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    with db.writer(path) as con:
        result = ingest_file(con, demo_exports.medications)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert result.status == "ingested"
    assert store.snapshot(path).version != first.version  # readers see the new data


def test_dashboard_keeps_the_previous_data_while_new_data_is_prepared(
        demo_exports, tmp_path, monkeypatch, hold_snapshot_builds):
    """An ingest from elsewhere (the command line): the next page view is not
    held up by the snapshot build; it shows the previous data and says why."""
    from streamlit.testing.v1 import AppTest

    from tests.helpers.apptest import DASHBOARD, assert_no_errors, signed_in
    from tests.helpers.builders import wait_until_built
    path = tmp_path / "clinic.duckdb"
    with db.writer(path) as con:
        ingest_files(con, [demo_exports.sessions])
    monkeypatch.setenv("OUTCOMES_DB", str(path))
    store.clear_cache()
    app = signed_in(AppTest.from_file(DASHBOARD, default_timeout=120)).run()
    assert_no_errors(app)
    status = [c.value for c in app.caption if "data cutoff" in c.value]

    from analysis.ingest.demo.generate import generate_demo
    later = generate_demo(tmp_path / "later", patients=30, seed=5)
    with db.writer(path) as con:
        ingest_files(con, [later.sessions])
    release = hold_snapshot_builds()
    # (A new AppTest each time: AppTest reruns only the page script after a
    # session's first run, and dashboard.py is what reads the snapshot.)
    app = signed_in(AppTest.from_file(DASHBOARD, default_timeout=120)).run()
    assert_no_errors(app)
    assert any("New data has arrived" in i.value for i in app.info)
    assert [c.value for c in app.caption if "data cutoff" in c.value] == status
    release.set()
    wait_until_built(path)
    app = signed_in(AppTest.from_file(DASHBOARD, default_timeout=120)).run()
    assert_no_errors(app)
    assert not any("New data has arrived" in i.value for i in app.info)
    assert [c.value for c in app.caption if "data cutoff" in c.value] != status  # more visits
    store.clear_cache()
