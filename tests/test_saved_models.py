"""analysis.storage.saved_models and its readers (store.Snapshot,
store.in_place): models saved with the data are used only for exactly that
data (attacks: a falsified state, another version's models, rows changed by
hand, an ingest whose save never happened), an incremental update equals a
full rebuild table for table whatever the ingest (the test fails when a way
rows change is left out), a fresh process builds no model table, and the
in-place reader lets an ingest write once it is done."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from analysis.ingest.demo.generate import generate_demo
from analysis.ingest.pipeline import ingest_files
from analysis.storage import db, model_chain, saved_models, store
from tests.helpers.fresh_process import run_json

ROOT = Path(__file__).resolve().parent.parent


def _tables() -> list[str]:
    """The saved tables (of the chain in use: a test may make a view a table)."""
    return saved_models.materialised_names()


# --------------------------------------------------------------------------
# helpers


def _split(source: Path, folder: Path, parts: dict[str, str]) -> dict[str, Path]:
    """Parts of an export (all columns as text) chosen by a WHERE on its rows."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE s AS SELECT *, row_number() OVER () AS row_no "
                f"FROM read_csv('{source}', all_varchar = true)")
    written = {}
    for name, where in parts.items():
        path = folder / f"{name}.csv"
        con.execute(f"COPY (SELECT * EXCLUDE (row_no) FROM s WHERE {where} ORDER BY row_no) "
                    f"TO '{path}' (HEADER)")
        written[name] = path
    con.close()
    return written


def _ingest(db_path: Path, paths: list[Path]) -> str:
    """Ingest (as the command line does) and say how the models were saved."""
    with db.writer(db_path) as con:
        summary = ingest_files(con, paths)
    assert [f.status for f in summary.files] == ["ingested"] * len(summary.files), \
        summary.to_dict()["files"]
    return "incremental" if saved_models.last_timings.get("incremental") else "full"


def _saved_tables(db_path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        assert saved_models.usable(con)
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in _tables()}
    finally:
        con.close()


def _rebuilt_tables(db_path: Path, monkeypatch) -> dict[str, list[tuple]]:
    monkeypatch.setenv("OUTCOMES_SAVED_MODELS", "off")
    try:
        snap = store.Snapshot(db_path)
    finally:
        monkeypatch.delenv("OUTCOMES_SAVED_MODELS")
    assert not snap.saved_models
    try:
        return {t: snap.rows(f"SELECT * FROM {t} ORDER BY ALL") for t in _tables()}
    finally:
        snap.close()


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    """One clinic's exports cut into the loads a clinic sends over time."""
    folder = tmp_path_factory.mktemp("steps")
    demo = generate_demo(folder / "csv", patients=300, seed=5)
    sessions = _split(Path(demo.sessions), folder, {
        "early": "try_cast(visit_date AS DATE) < DATE '2026-03-01' OR visit_date IS NULL",
        "late": "try_cast(visit_date AS DATE) >= DATE '2026-03-01' "
                "AND try_cast(visit_date AS DATE) < DATE '2026-09-10'",
        "last": "try_cast(visit_date AS DATE) >= DATE '2026-09-10'"})
    # The same visits (same visit_id) with other pain scores: rows replaced.
    corrected = _split(sessions["early"], folder, {
        "picked": "row_no % 23 = 0 AND try_cast(pain_score AS DOUBLE) IS NOT NULL"})["picked"]
    # Visits re-exported under another patient (a corrected patient link):
    # the visit moves, and the patient who loses it has no new row.
    moved = _split(sessions["early"], folder, {
        "picked_moves": "visit_id IS NOT NULL AND row_no % 41 = 7"})["picked_moves"]
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT * REPLACE (CAST(10 - CAST(pain_score AS DOUBLE) AS VARCHAR)
                                            AS pain_score)
                          FROM read_csv('{corrected}', all_varchar = true))
                    TO '{folder / "corrections.csv"}' (HEADER)""")
    con.execute(f"""COPY (SELECT * REPLACE ('P000001' AS patient_id)
                          FROM read_csv('{moved}', all_varchar = true)
                          WHERE patient_id <> 'P000001')
                    TO '{folder / "moves.csv"}' (HEADER)""")
    # Long format: PHQ-9 values onto visits already stored (updated in
    # place: those patients get no new row).
    con.execute(f"""COPY (SELECT patient_id, visit_date AS date, 'PHQ-9' AS measure,
                                 '3' AS value
                          FROM read_csv('{sessions["early"]}', all_varchar = true)
                          WHERE visit_type = 'follow_up' AND hash(visit_id) % 7 = 0)
                    TO '{folder / "measures.csv"}' (HEADER)""")
    con.close()
    medications = _split(Path(demo.medications), folder, {
        "meds_a": "hash(patient_id) % 3 <> 0", "meds_b": "hash(patient_id) % 3 = 0"})
    fhir = generate_demo(folder / "fhir", patients=120, seed=9, format="fhir")
    fhir_files = sorted(Path(fhir.sessions).glob("*.ndjson"))   # the export's folder
    # A later FHIR export: some encounters now cancelled, nothing else (their
    # days' visits go, and those patients get no new row).
    cancelled = folder / "fhir_cancelled"
    cancelled.mkdir()
    encounters = next(p for p in fhir_files if p.name.startswith("Encounter"))
    lines = []
    for number, line in enumerate(encounters.read_text().splitlines()):
        resource = json.loads(line)
        if number % 9 == 0 and resource.get("status") == "finished":
            resource["status"] = "cancelled"
            lines.append(json.dumps(resource))
    (cancelled / "Encounter.000.ndjson").write_text("\n".join(lines) + "\n")
    patients = next(p for p in fhir_files if p.name.startswith("Patient"))
    shutil.copyfile(patients, cancelled / "Patient.000.ndjson")
    return [
        ("early sessions", [sessions["early"]]),
        ("medications only", [medications["meds_a"]]),
        ("later sessions (the cutoff moves)", [sessions["late"]]),
        ("corrections (rows replaced)", [folder / "corrections.csv"]),
        ("visits moved to another patient", [folder / "moves.csv"]),
        ("long-format values on stored visits", [folder / "measures.csv"]),
        ("the last sessions (the cutoff moves)", [sessions["last"]]),
        ("more medications", [medications["meds_b"]]),
        ("a FHIR export", fhir_files),
        ("FHIR encounters cancelled", sorted(cancelled.glob("*.ndjson"))),
    ]


def _load_and_compare(steps, db_path: Path, monkeypatch,
                      crossed: list | None = None) -> list[tuple[str, str, list[str]]]:
    """Each load in turn (every save after the first updating in place);
    per load: how the models were saved and which tables differ from a full
    rebuild (``crossed``: gets per load the patients updated only because
    the cutoff crossed one of their windows)."""
    monkeypatch.setattr(saved_models, "FULL_ABOVE", 1e9)
    monkeypatch.setattr(saved_models, "REBUILD_AFTER", 1e9)
    found = []
    tables = _tables()
    for name, paths in steps:
        kind = _ingest(db_path, paths)
        if crossed is not None:
            crossed.append(saved_models.last_timings.get("of which crossed only"))
        saved, rebuilt = _saved_tables(db_path), _rebuilt_tables(db_path, monkeypatch)
        assert all(rebuilt[t] for t in tables), name
        found.append((name, kind, [t for t in tables if saved[t] != rebuilt[t]]))
    return found


@pytest.fixture
def cutoff_table(monkeypatch):
    """The model chain with patient_timepoints saved as a table (as it was
    before issue 20's second round): a saved table that reads the cutoff."""
    chain = dict(model_chain.models())
    chain["patient_timepoints"] = dataclasses.replace(chain["patient_timepoints"],
                                                      materialized=True)
    monkeypatch.setattr(model_chain, "models", lambda: chain)
    order = model_chain.build_order.__wrapped__()
    monkeypatch.setattr(model_chain, "build_order", lambda: order)
    saved_models.models_hash.cache_clear()
    yield chain
    saved_models.models_hash.cache_clear()


def test_an_incremental_update_equals_a_full_rebuild(steps, tmp_path, monkeypatch):
    """After every kind of load (sessions moving the cutoff, rows replaced,
    a visit moved to another patient, medications only, long-format values
    on stored visits, FHIR, FHIR cancellations), each saved table equals the
    models built from scratch from the same data, row for row."""
    crossed = []
    found = _load_and_compare(steps, tmp_path / "clinic.duckdb", monkeypatch, crossed)
    assert [kind for _, kind, _ in found] == ["full"] + ["incremental"] * (len(steps) - 1), found
    assert [(name, differ) for name, _, differ in found if differ] == []
    # No saved table reads the cutoff: a cutoff that moves updates no
    # patient whose rows did not change.
    assert crossed[1:] == [0] * (len(steps) - 1)


def test_a_saved_table_that_reads_the_cutoff_is_updated_for_the_crossed_patients(
        steps, tmp_path, monkeypatch, cutoff_table):
    """Were a table to read the cutoff (patient_timepoints saved as one),
    the patients whose windows the moved cutoff crosses are updated too,
    and the saved tables still equal a full rebuild."""
    assert "patient_timepoints" in _tables()
    crossed = []
    found = _load_and_compare(steps, tmp_path / "clinic.duckdb", monkeypatch, crossed)
    assert [kind for _, kind, _ in found] == ["full"] + ["incremental"] * (len(steps) - 1), found
    assert [(name, differ) for name, _, differ in found if differ] == []
    assert any(crossed[1:])


NOTHING = "SELECT CAST(NULL AS VARCHAR) AS patient_id WHERE false"


@pytest.mark.parametrize("left_out", ["cutoff crossings", "replaced rows", "noted patients",
                                      "restaged patients"])
def test_the_comparison_fails_when_a_way_rows_change_is_left_out(steps, tmp_path, monkeypatch,
                                                                 left_out, request):
    """The same loads with one source of changed patients left out: some
    saved table then differs from the full rebuild (the tests above can
    fail).  The cutoff's crossings matter only for a saved table that reads
    the cutoff: patient_timepoints saved as one, as before.  Restaged
    patients: every changed patient's saved stg_visits rows kept and only
    their new visits' rows added (right only for a patient whose stored rows
    an ingest only added to)."""
    if left_out == "cutoff crossings":
        request.getfixturevalue("cutoff_table")
        monkeypatch.setattr(saved_models, "_cutoff_crossings", lambda *a: NOTHING)
    elif left_out == "replaced rows":
        monkeypatch.setattr(saved_models, "_replaced_rows_patients", lambda *a: NOTHING)
    elif left_out == "restaged patients":
        monkeypatch.setattr(saved_models, "_restaged_patients", lambda: NOTHING)
    else:
        monkeypatch.setattr(saved_models, "note_patients", lambda *a: None)
    found = _load_and_compare(steps, tmp_path / "clinic.duckdb", monkeypatch)
    assert any(differ for _, _, differ in found), left_out
    if left_out == "restaged patients":
        assert "stg_visits" in {table for _, _, differ in found for table in differ}


def test_a_large_change_is_a_full_rebuild(demo_exports, tmp_path):
    path = tmp_path / "clinic.duckdb"
    assert _ingest(path, [demo_exports.sessions]) == "full"
    assert _ingest(path, [demo_exports.medications]) == "full"   # every patient's MME


def test_updates_past_the_rebuild_share_make_the_next_save_full(demo_exports, tmp_path,
                                                               monkeypatch):
    """Updated patients add up (each update leaves its deleted rows behind);
    past REBUILD_AFTER of all patients the next save writes the tables anew."""
    path = tmp_path / "clinic.duckdb"
    part = _split(Path(demo_exports.sessions), tmp_path, {
        "a": "row_no % 20 > 1", "b": "row_no % 20 = 0", "c": "row_no % 20 = 1"})
    assert _ingest(path, [part["a"]]) == "full"
    monkeypatch.setattr(saved_models, "FULL_ABOVE", 1e9)
    assert _ingest(path, [part["b"]]) == "incremental"
    updated = saved_models.last_timings["changed patients"]
    monkeypatch.setattr(saved_models, "REBUILD_AFTER", 0.0)
    assert _ingest(path, [part["c"]]) == "full"
    assert updated > 0


def test_an_ingest_without_the_changes_mark_makes_the_next_save_full(demo_exports, tmp_path,
                                                                     monkeypatch):
    """Data loaded by a program that does not record what it changes in
    place (an older version) is never updated incrementally."""
    path = tmp_path / "clinic.duckdb"
    part = _split(Path(demo_exports.sessions), tmp_path, {
        "a": "row_no % 20 <> 0", "b": "row_no % 20 = 0"})
    assert _ingest(path, [part["a"]]) == "full"
    monkeypatch.setattr(saved_models, "note_ingest", lambda *a: None)
    assert _ingest(path, [part["b"]]) == "full"


# --------------------------------------------------------------------------
# attacks: saved models of other data are never used


def _grid(reader) -> list[tuple]:
    return reader.rows("""SELECT timepoint, definition, count(*) FILTER (WHERE responder),
                                 count(*) FILTER (WHERE in_itt)
                          FROM patient_outcomes GROUP BY ALL ORDER BY ALL""")


def _tamper(db_path: Path, sql: str) -> None:
    con = duckdb.connect(str(db_path))
    con.execute(sql)
    con.close()


@pytest.fixture
def clinic(tmp_path, demo_db):
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(demo_db, copy)
    return copy


def _truth(path: Path, monkeypatch) -> list[tuple]:
    monkeypatch.setenv("OUTCOMES_SAVED_MODELS", "off")
    snap = store.Snapshot(path)
    monkeypatch.delenv("OUTCOMES_SAVED_MODELS")
    try:
        return _grid(snap)
    finally:
        snap.close()


@pytest.mark.parametrize("tampering", [
    # the state names another data version
    """UPDATE model_state SET state = replace(state, '"ingests": ', '"ingests": 1')""",
    # models of another version of the SQL
    """UPDATE model_state SET state = replace(state, '"models": "', '"models": "0')""",
    # a state that is not this program's
    "UPDATE model_state SET state = '{\"format\": 2}'",
    # the data changed without an ingest (rows deleted or added by hand)
    "DELETE FROM visits WHERE rowid = (SELECT min(rowid) FROM visits)",
    "INSERT INTO medications SELECT * FROM medications LIMIT 1",
    # an ingest logged by hand
    "UPDATE ingest_log SET rows_accepted = rows_accepted + 1 WHERE ingest_id = 1",
])
def test_models_of_other_data_are_never_used(clinic, tampering, monkeypatch):
    """The saved tables are falsified (every patient a pain30 responder);
    once the key no longer matches the data, the snapshot and the in-place
    reader build or read the true models."""
    truth = _truth(clinic, monkeypatch)
    _tamper(clinic, "UPDATE patient_windows SET pain30_met = true, pain_reduction = 1")
    falsified = store.Snapshot(clinic)
    assert falsified.saved_models and _grid(falsified) != truth   # the check can fail
    falsified.close()
    _tamper(clinic, tampering)
    snap = store.Snapshot(clinic)
    assert not snap.saved_models and "model patient_windows" in snap.build_timings
    assert _grid(snap) == truth or tampering.startswith(("DELETE", "INSERT"))
    with store.in_place(clinic) as reader:
        assert isinstance(reader, store.Snapshot)
        assert _grid(reader) == _grid(snap)
    snap.close()


def test_stale_models_after_a_new_ingest_are_never_served(clinic, demo_exports, tmp_path,
                                                          monkeypatch):
    """An ingest commits and its save never happens (a crash in between):
    readers build their own models from the new data; the next ingest
    (even of a file already loaded) brings the saved models up to date."""
    from analysis.ingest import pipeline
    before = _grid(store.Snapshot(clinic))
    part = _split(Path(demo_exports.sessions), tmp_path, {"more": "row_no % 9 = 0"})["more"]
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT * REPLACE ('0' AS pain_score)
                          FROM read_csv('{part}', all_varchar = true))
                    TO '{tmp_path / "zero_pain.csv"}' (HEADER)""")
    con.close()
    monkeypatch.setattr(pipeline, "refresh_saved_models", lambda con: None)
    with db.writer(clinic) as con:
        assert ingest_files(con, [tmp_path / "zero_pain.csv"]).ok
    truth = _truth(clinic, monkeypatch)
    assert truth != before
    snap = store.Snapshot(clinic)
    assert not snap.saved_models and _grid(snap) == truth
    with store.in_place(clinic) as reader:
        assert not reader.saved_models and _grid(reader) == truth
    monkeypatch.undo()
    with db.writer(clinic) as con:   # the same file again: nothing loaded, models saved
        summary = ingest_files(con, [tmp_path / "zero_pain.csv"])
    assert [f.status for f in summary.files] == ["unchanged"]
    with store.in_place(clinic) as reader:
        assert reader.saved_models and "read in place" in reader.build_timings
        assert _grid(reader) == truth


# --------------------------------------------------------------------------
# readers


def test_a_fresh_process_builds_no_model_table(demo_db):
    code = ("import json, sys\nfrom analysis.storage import store\n"
            "pandas_at_import = 'pandas' in sys.modules\n"
            f"snap = store.Snapshot({str(demo_db)!r})\n"
            "n = snap.rows('SELECT count(*) FROM patient_outcomes WHERE responder')[0][0]\n"
            "print(json.dumps({'saved': snap.saved_models, 'steps': sorted(snap.build_timings),\n"
            "                  'pandas': pandas_at_import or 'pandas' in sys.modules,\n"
            "                  'responders': n}))")
    result = run_json(code, cwd=ROOT)
    assert result["saved"] is True
    assert not {f"model {t}" for t in _tables()} & set(result["steps"]), result["steps"]
    assert "model patient_outcomes" in result["steps"], "the views are still made"
    assert result["pandas"] is False, "store and rows() need no pandas"
    snap = store.Snapshot(demo_db)
    assert result["responders"] == snap.scalar(
        "SELECT count(*) FROM patient_outcomes WHERE responder")


def test_in_place_reads_the_file_without_a_copy(clinic):
    expected = _grid(store.Snapshot(clinic))
    with store.in_place(clinic) as reader:
        assert isinstance(reader, store.InPlace) and reader.saved_models
        assert _grid(reader) == expected
        assert reader.query("SELECT count(*) AS n FROM visits").n[0] == reader.scalar(
            "SELECT count(*) FROM visits")
    assert not any(k.startswith("copy") for k in reader.build_timings)


def test_an_ingest_waits_for_the_in_place_reader_then_writes(clinic, demo_exports, tmp_path):
    """Another process's ingest started while a command reads the file in
    place waits, and lands once the reader is done; one in this process
    (another thread) too; neither deadlocks."""
    parts = _split(Path(demo_exports.sessions), tmp_path, {
        "one": "row_no % 40 = 3", "two": "row_no % 40 = 5"})
    for number, name in enumerate(parts):   # other pain scores: new data
        con = duckdb.connect()
        con.execute(f"""COPY (SELECT * REPLACE ('{number + 1}' AS pain_score)
                              FROM read_csv('{parts[name]}', all_varchar = true))
                        TO '{tmp_path / (name + "_new.csv")}' (HEADER)""")
        con.close()
    before = store.read_version(clinic)
    with store.in_place(clinic) as reader:
        other = subprocess.Popen(
            [sys.executable, "-m", "analysis", "ingest", str(tmp_path / "one_new.csv"),
             "--db", str(clinic), "--json"], cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        results = []
        thread = threading.Thread(target=lambda: results.append(
            _ingest(clinic, [tmp_path / "two_new.csv"])))
        thread.start()
        time.sleep(2)
        assert other.poll() is None and thread.is_alive(), "they wait"
        assert reader.version == before and _grid(reader)
    thread.join(120)
    assert not thread.is_alive() and results
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err[-2000:]
    assert store.read_version(clinic).ingests == before.ingests + 2
    with store.in_place(clinic) as reader:
        assert reader.saved_models   # the models of the new data, saved by the last one
        assert reader.version.ingests == before.ingests + 2


def test_store_does_not_import_pandas():
    code = "import sys\nfrom analysis.storage import store\nprint('pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_in_place_takes_a_snapshot_of_a_file_missing_a_stored_table(clinic):
    """A file without one of the tables a reader serves (an older version's)
    is copied into a snapshot, which creates it empty."""
    _tamper(clinic, "DROP TABLE value_issues")
    with store.in_place(clinic) as reader:
        assert isinstance(reader, store.Snapshot)
        assert reader.scalar("SELECT count(*) FROM value_issues") == 0
