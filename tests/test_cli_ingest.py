"""The ``ingest`` command: ``python -m analysis ingest PATH... [--db] [--json]``.

Exit codes: 0 when every file was ingested or unchanged, 1 when any file was
refused, 2 on a usage error.  Never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from analysis import cli

ROOT = Path(__file__).resolve().parent.parent
SUMMARY_KEYS = {"rows_read", "rows_accepted", "rows_quarantined", "duplicates_collapsed",
                "values_nulled", "dropped_identifying_columns", "unknown_columns", "files"}


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.fixture
def export(tmp_path) -> Path:
    return write(tmp_path, "sessions.csv", (
        "Patient,Date,Visit Type,Pain,Name,Notes\n"
        "P1,2024-01-05,intake,8,Zebediah Quux,x\n"
        "P1,2024-01-12,infusion,11,Zebediah Quux,x\n"
        "P1,2024-01-12,infusion,11,Zebediah Quux,x\n"
        ",2024-01-19,booster,4,Zebediah Quux,x\n"
    ))


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def visits_in(db_path: Path) -> int:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM visits").fetchall()[0][0]
    finally:
        con.close()


def test_ingest_json_summary(tmp_path, capsys, export):
    db_path = tmp_path / "o.duckdb"
    code, out, err = run_cli(capsys, "ingest", str(export), "--db", str(db_path), "--json")
    assert code == 0, err
    summary = json.loads(out)       # one JSON object, nothing else on stdout
    assert SUMMARY_KEYS <= summary.keys()
    assert (summary["rows_read"], summary["rows_accepted"], summary["rows_quarantined"],
            summary["duplicates_collapsed"], summary["values_nulled"]) == (4, 2, 1, 1, 1)
    assert summary["rows_read"] == (summary["rows_accepted"] + summary["rows_quarantined"]
                                    + summary["duplicates_collapsed"])
    assert summary["dropped_identifying_columns"] == ["Name"]
    assert summary["unknown_columns"] == ["Notes"]
    [entry] = summary["files"]
    assert (entry["path"], entry["status"], entry["error"]) == (str(export), "ingested", None)
    assert visits_in(db_path) == 2

    # The same file again: unchanged, exit 0, nothing added.
    code, out, _ = run_cli(capsys, "ingest", str(export), "--db", str(db_path), "--json")
    assert code == 0
    summary = json.loads(out)
    assert [f["status"] for f in summary["files"]] == ["unchanged"]
    assert summary["rows_read"] == 0
    assert visits_in(db_path) == 2


def test_ingest_text_output(tmp_path, capsys, export):
    db_path = tmp_path / "o.duckdb"
    code, out, err = run_cli(capsys, "ingest", str(export), "--db", str(db_path))
    assert code == 0
    assert "ingested" in out and "4 rows read, 2 accepted, 1 quarantined" in out
    assert "dropped identifying columns: Name" in out
    assert f"database: {db_path}" in out
    assert "[1/1] sessions.csv" in err
    assert "Zebediah" not in out + err


def test_refused_file_exits_1_and_others_still_ingested(tmp_path, capsys, export):
    db_path = tmp_path / "o.duckdb"
    empty = write(tmp_path, "empty.csv", b"")
    no_type = write(tmp_path, "notype.csv", "patient_id,visit_date\nP1,2024-01-05\n")
    code, out, _ = run_cli(capsys, "ingest", str(empty), str(export), str(no_type),
                             "--db", str(db_path), "--json")
    assert code == 1
    summary = json.loads(out)
    assert [(f["status"], f["error"]) for f in summary["files"]] == [
        ("refused", "empty.csv: the file is empty (no header row, no data)"),
        ("ingested", None),
        ("refused", ("notype.csv: missing required column(s) visit_type. "
                     "The file has: patient_id, visit_date; "
                     "recognised: patient_id -> patient_id, visit_date -> visit_date")),
    ]
    assert summary["rows_accepted"] == 2
    assert visits_in(db_path) == 2


def test_missing_file_exits_1(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "ingest", str(tmp_path / "nope.csv"),
                             "--db", str(tmp_path / "o.duckdb"))
    assert code == 1
    assert "refused" in out and "nope.csv: no such file" in out


@pytest.mark.parametrize("argv", [
    [],  # prints the help (whose "70%" once broke argparse)
    ["ingest"],
    ["ingest", "x.csv", "--bogus"],
    ["ingest", "--db"],
    ["frobnicate"],
])
def test_usage_errors_exit_2(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OUTCOMES_DB", str(tmp_path / "env.duckdb"))
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.strip()
    assert not (tmp_path / "env.duckdb").exists()


def test_outcomes_db_environment_variable(tmp_path, capsys, monkeypatch, export):
    env_db = tmp_path / "from_env.duckdb"
    monkeypatch.setenv("OUTCOMES_DB", str(env_db))
    code, _, _ = run_cli(capsys, "ingest", str(export), "--json")
    assert code == 0
    assert visits_in(env_db) == 2
    # --db beats the environment variable.
    flag_db = tmp_path / "from_flag.duckdb"
    other = write(tmp_path, "other.csv", "patient_id,visit_date,visit_type\nQ1,2024-02-01,intake\n")
    code, _, _ = run_cli(capsys, "ingest", str(other), "--db", str(flag_db), "--json")
    assert code == 0
    assert visits_in(flag_db) == 1
    assert visits_in(env_db) == 2


def test_aliases_option(tmp_path, capsys, export):
    aliases = write(tmp_path, "aliases.csv", "column,alias\nsite,Notes\n")
    db_path = tmp_path / "o.duckdb"
    code, out, _ = run_cli(capsys, "ingest", str(export), "--db", str(db_path), "--json",
                           "--aliases", str(aliases))
    assert code == 0
    assert json.loads(out)["unknown_columns"] == []
    con = duckdb.connect(str(db_path), read_only=True)
    assert con.execute("SELECT DISTINCT site FROM visits").fetchall() == [("x",)]
    con.close()


def test_missing_alias_file_is_a_message_not_a_traceback(tmp_path, capsys, export):
    code, _, err = run_cli(capsys, "ingest", str(export), "--db", str(tmp_path / "o.duckdb"),
                             "--aliases", str(tmp_path / "missing_aliases.csv"))
    assert code == 1
    assert "missing_aliases.csv" in err


def test_subprocess_json_env_db_and_exit_codes(tmp_path, export):
    """The real entry point, twice (each start imports the whole package)."""
    binary = write(tmp_path, "noise.csv", bytes(range(256)) * 8)
    env = {k: v for k, v in os.environ.items() if k != "OUTCOMES_DB"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OUTCOMES_DB"] = str(tmp_path / "env.duckdb")

    def run(*argv):
        return subprocess.run([sys.executable, "-m", "analysis", *argv], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300, check=False)

    done = run("ingest", str(export), "--json")       # the database from OUTCOMES_DB
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout)
    assert SUMMARY_KEYS <= summary.keys()
    assert (summary["files"][0]["status"], summary["rows_accepted"]) == ("ingested", 2)
    assert visits_in(tmp_path / "env.duckdb") == 2

    done = run("ingest", str(binary), "--db", str(tmp_path / "flag.duckdb"), "--json")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [entry] = json.loads(done.stdout)["files"]
    assert (entry["status"], entry["error"]) == (
        "refused", "noise.csv: not a CSV, XLSX or Parquet export (binary content)")
    assert (tmp_path / "flag.duckdb").exists()
