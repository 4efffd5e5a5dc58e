"""Builders of hand-made clinics: exports written row by row, ingested by
the real pipeline into a DuckDB file, so every number a test checks is
known in advance.  One writer for every hand-made CSV export
(:func:`write_csv`); each section below is one kind of clinic, named for
what it is made to show."""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.ingest import pipeline as ingest
from analysis.storage import db, store

# --------------------------------------------------------------------------
# writing and ingesting an export


def write_csv(path: Path, rows: Iterable, columns: Sequence[str] | None = None) -> Path:
    """Write an export: a header of ``columns``, then ``rows``, as dicts (a
    missing key or None is an empty cell; a key that is not a column is an
    error) or as sequences of cells; with no ``columns``, ``rows`` as they
    are (the first one the header, if any)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if columns is not None:
            writer.writerow(columns)
        for row in rows:
            if columns is not None and isinstance(row, dict):
                unknown = set(row) - set(columns)
                assert not unknown, f"not a column of this export: {sorted(unknown)}"
                row = ["" if row.get(k) is None else row[k] for k in columns]
            elif columns is not None:
                assert len(row) == len(columns), (row, columns)
            writer.writerow(row)
    return path


def ingest_into(path: Path, files: list[Path], ingest_date: dt.date | None = None,
                rows: int | None = None) -> Path:
    """Ingest ``files`` into the DuckDB file ``path`` (created if need be);
    every file must be accepted, and with ``rows`` that many rows."""
    con = db.connect(path)
    try:
        summary = ingest.ingest_files(con, files, ingest_date=ingest_date)
    finally:
        con.close()
    assert summary.ok, summary.to_dict()
    if rows is not None:
        assert sum(f.rows_accepted for f in summary.files) == rows, summary.to_dict()
    return path


# --------------------------------------------------------------------------
# day-numbered visits: a tiny session export whose days count from BASE
# (day 0), so the windows of SPEC §3 read off directly (test_outcomes)


BASE = dt.date(2028, 1, 3)   # day 0 of every hand-made export
VISITS_INGEST_DATE = dt.date(2035, 1, 1)
VISIT_COLUMNS = ("patient_id", "visit_date", "visit_type", "condition", "site", "route",
                 "pain_score", "pain_post", "opioid_mme_per_day")


def day(n: int) -> dt.date:
    return BASE + dt.timedelta(days=n)


def visit(patient: str, on: int, visit_type: str, *, pain=None, post=None, mme=None,
          condition=None, site=None, route=None) -> dict:
    """One row of a session export, ``on`` days after BASE."""
    return {"patient_id": patient, "visit_date": day(on).isoformat(), "visit_type": visit_type,
            "condition": condition, "site": site, "route": route, "pain_score": pain,
            "pain_post": post, "opioid_mme_per_day": mme}


def treated(patient: str, *, pain=8, mme=60, condition="Migraine", site="North",
            route="IV", index=0, index_type="infusion") -> list[dict]:
    """Intake the day before the index date (with the baselines), then the
    first ketamine visit on day ``index``."""
    return [visit(patient, index - 1, "intake", pain=pain, mme=mme, condition=condition,
                  site=site),
            visit(patient, index, index_type, site=site, route=route)]


def clock(patient: str, on: int) -> dict:
    """A visit without any value: it only moves the data cutoff."""
    return visit(patient, on, "follow_up")


def write_visits(path: Path, rows: list[dict]) -> Path:
    return write_csv(path, rows, VISIT_COLUMNS)


def build_db(tmp_path: Path, rows: list[dict], name: str = "outcomes.duckdb") -> Path:
    """Write ``rows`` as an export and ingest it; every row must be accepted."""
    db_path = tmp_path / name
    export = write_visits(tmp_path / (Path(name).stem + "_sessions.csv"), rows)
    con = db.connect(db_path)
    try:
        result = ingest.ingest_file(con, export, ingest_date=VISITS_INGEST_DATE)
    finally:
        con.close()
    assert result.status == "ingested", result.error
    assert result.rows_accepted == len(rows), result
    return db_path


def build(tmp_path: Path, rows: list[dict]) -> store.Snapshot:
    snap = store.Snapshot(build_db(tmp_path, rows))
    return snap


def outcome(snap, patient: str, timepoint: str = "3m", definition: str = "pain30") -> dict:
    frame = snap.query(
        "SELECT * FROM patient_outcomes WHERE patient_id = $p AND timepoint = $t AND definition = $d",
        {"p": patient, "t": timepoint, "d": definition})
    assert len(frame) == 1, frame
    row = frame.iloc[0].to_dict()
    return {k: (None if not isinstance(v, (list, tuple)) and pd.isna(v) else v)
            for k, v in row.items()}


INJECTION = "x' OR '1'='1"


def filter_rows() -> list[dict]:
    """Five patients at two sites (one named like an SQL injection), three
    conditions and three routes, each with a 3-month follow-up."""
    rows = []
    plan = [  # patient, site, condition, route, index day, responds
        ("n1", "North", "migraine", "IV", 0, True),
        ("n2", "North", "fibro", "IM", 40, False),
        ("s1", "South", "migraine", "intranasal", 100, True),
        ("s2", "South", "lupus", "IV", 200, True),
        ("x1", INJECTION, "lupus", "IM", 300, False),
    ]
    for patient, site, condition, route, index, responds in plan:
        rows += treated(patient, condition=condition, site=site, route=route, index=index)
        rows.append(visit(patient, index + 90, "follow_up", pain=2 if responds else 7))
    rows.append(clock("n1", 1000))
    return rows


def claim_program(patients: int, responding: float, seed: int = 3) -> list[dict]:
    """``patients`` opioid users with pain 8; a ``responding`` share of them are
    claim responders at 3m (pain 3, MME 60 -> 20), the rest are not."""
    rng = random.Random(seed)
    names = ["migraine", "fibro", "lupus", "M54.5", "G43.A0"]
    winners = set(rng.sample(range(patients), round(responding * patients)))
    rows = []
    for i in range(patients):
        pid = f"C{i:04d}"
        rows += treated(pid, pain=8, mme=60, condition=names[i % len(names)], index=i % 30)
        if i in winners:
            rows.append(visit(pid, i % 30 + 90, "follow_up", pain=3, mme=20))
        else:
            rows.append(visit(pid, i % 30 + 90, "follow_up", pain=7, mme=60))
    rows.append(clock("C0000", 600))
    return rows


# --------------------------------------------------------------------------
# generated programs: patients on opioids, counted in or out of the claim
# for a known reason (test_claim, the Claim check page, the external outputs)


START = dt.date(2025, 1, 6)       # first index date of a generated program
CUTOFF = dt.date(2025, 12, 15)    # an intake-only visit fixes the data cutoff here
PROGRAM_COLUMNS = ["patient_id", "visit_date", "visit_type", "condition", "site", "route",
                   "pain_score", "opioid_mme_per_day"]


@dataclass
class Program:
    """Patients on opioids with pain 8 and 60 MME/day at baseline.

    Responders have pain 4 (50% less) and 20 MME (a third) at 3 months,
    non-responders pain 7 and 60 MME.  ``missing`` patients reached three
    months without a follow-up; the other groups are left out of the claim's
    denominator for the reason in their name.  ``small_condition`` of the
    responders have "Lupus" (a small group), every other patient "Migraine".
    """
    responders: int
    non_responders: int = 0
    missing: int = 0
    not_on_opioids: int = 0
    no_baseline_pain: int = 0
    not_yet_due: int = 0
    small_condition: int = 0

    @property
    def counted(self) -> int:
        return self.responders + self.non_responders + self.missing


def program_rows(spec: Program) -> tuple[list[dict], list[dt.date]]:
    """Visit rows of a program and the index dates of the patients counted."""
    rows: list[dict] = []
    counted_index: list[dt.date] = []
    kinds = (["responder"] * spec.responders + ["non"] * spec.non_responders
             + ["missing"] * spec.missing + ["no_opioids"] * spec.not_on_opioids
             + ["no_pain"] * spec.no_baseline_pain + ["recent"] * spec.not_yet_due)
    for k, kind in enumerate(kinds):
        pid = f"GEN{k:04d}"
        index = CUTOFF - dt.timedelta(days=30) if kind == "recent" \
            else START + dt.timedelta(days=k % 150)
        condition = "Lupus" if kind == "responder" and k < spec.small_condition else "Migraine"
        site = ("Denver", "Boulder")[k % 2]
        mme = 0 if kind == "no_opioids" else 60
        pain = "" if kind == "no_pain" else 8

        def visit(day: dt.date, visit_type: str, pain_score, mme_value) -> None:
            rows.append({"patient_id": pid, "visit_date": day.isoformat(),
                         "visit_type": visit_type, "condition": condition, "site": site,
                         "route": "IV", "pain_score": pain_score,
                         "opioid_mme_per_day": mme_value})

        visit(index - dt.timedelta(days=7), "intake", pain, mme)
        visit(index, "infusion", pain, mme)
        if kind in ("responder", "no_opioids", "no_pain"):
            visit(index + dt.timedelta(days=90), "follow_up", 4, 20 if mme else 0)
        elif kind == "non":
            visit(index + dt.timedelta(days=90), "follow_up", 7, 60)
        if kind in ("responder", "non", "missing"):
            counted_index.append(index)
    rows.append({"patient_id": "ANCHOR", "visit_date": CUTOFF.isoformat(),
                 "visit_type": "intake", "condition": "Migraine", "site": "Denver",
                 "route": "", "pain_score": 5, "opioid_mme_per_day": 0})
    return rows, counted_index


def write_program_csv(path: Path, rows: list[dict]) -> Path:
    return write_csv(path, rows, PROGRAM_COLUMNS)


def build_program(folder: Path, spec: Program) -> Path:
    """Write the program's session export, ingest it, return the database."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, _ = program_rows(spec)
    export = write_program_csv(folder / "sessions.csv", rows)
    return ingest_into(folder / "program.duckdb", [export])


def program_snapshot(tmp_path: Path, spec: Program) -> store.Snapshot:
    return store.Snapshot(build_program(tmp_path / "program", spec))


def period_of(spec: Program) -> tuple[dt.date, dt.date]:
    _, counted = program_rows(spec)
    return min(counted), max(counted)


# --------------------------------------------------------------------------
# the tiny clinic: six patients whose opioid tapers, timelines and data
# quality are worked out by hand (test_opioids, test_timeline, test_data_quality)


TINY_INGEST_DATE = dt.date(2030, 1, 1)
TINY_COLUMNS = ("patient_id", "visit_date", "visit_type", "visit_id", "condition", "site",
                "route", "pain_score", "pain_post", "opioid_mme_per_day", "benzodiazepine", "phq9",
                "adverse_event", "patient_name")


# The tiny clinic (dates in 2029).  Index date = first infusion.
#   A Denver   baseline 100 MME (Jan 1), index Jan 2; 70 on Jan 15 (14 days:
#              15%/week, fast), 60 on Feb 12 (28 days: 2.5%/week), 60 on Apr 2
#   B Boulder  baseline 100 (Jan 5), index Jan 6; 90 on Feb 2 (28 days: 2.5%/week),
#              40 on Apr 6 (63 days = 9 weeks: 50/100/9 = 5.6%/week)
#   C Denver   baseline 0 MME (not an opioid user)
#   D Boulder  no MME before the index date (opioid use unknown)
#   E Denver   baseline 60 (Feb 1), index Feb 3; 0 on May 4 (92 days: 7.6%/week)
#   F Denver   intake only (not treated)
TINY_ROWS = [
    # patient, date, type, condition, site, route, pain, post, mme, benzo, phq9, ae
    ("A", "2029-01-01", "intake", "Migraine", "Denver", "", "8", "", "100", "yes", "12", ""),
    ("A", "2029-01-02", "infusion", "", "Denver", "IV", "8", "4", "", "", "", "nausea"),
    ("A", "2029-01-15", "follow_up", "", "Denver", "", "5", "", "70", "yes", "10", ""),
    ("A", "2029-02-12", "follow_up", "", "Denver", "", "4", "", "60", "no", "8", ""),
    ("A", "2029-03-01", "telehealth", "", "Denver", "", "4", "", "", "", "", ""),
    ("A", "2029-04-02", "follow_up", "", "Denver", "", "4", "", "60", "no", "7", ""),
    ("B", "2029-01-05", "intake", "Neuropathy", "Boulder", "", "6", "", "100", "no", "", ""),
    ("B", "2029-01-06", "infusion", "", "Boulder", "IV", "6", "3", "", "", "", ""),
    ("B", "2029-02-02", "follow_up", "", "Boulder", "", "3", "", "90", "no", "", ""),
    ("B", "2029-04-06", "follow_up", "", "Boulder", "", "3", "", "40", "", "", ""),
    ("C", "2029-01-10", "intake", "Lupus", "Denver", "", "7", "", "0", "no", "", ""),
    ("C", "2029-01-11", "infusion", "", "Denver", "IV", "7", "5", "", "", "", ""),
    ("C", "2029-02-08", "follow_up", "", "Denver", "", "11", "", "0", "", "", ""),
    ("D", "2029-01-20", "intake", "Migraine", "Boulder", "", "5", "", "", "", "", ""),
    ("D", "2029-01-21", "infusion", "", "Boulder", "IV", "", "2", "", "", "", ""),
    ("D", "2029-04-21", "follow_up", "", "Boulder", "", "2", "", "10", "", "", ""),
    ("E", "2029-02-01", "intake", "Fibromyalgia", "Denver", "", "9", "", "60", "yes", "", ""),
    ("E", "2029-02-03", "infusion", "", "Denver", "IV", "9", "6", "", "", "", ""),
    ("E", "2029-05-04", "follow_up", "", "Denver", "", "6", "", "0", "yes", "", ""),
    ("F", "2029-03-01", "intake", "Lupus", "Denver", "", "6", "", "30", "no", "", ""),
]


def write_tiny_export(path: Path) -> Path:
    return write_csv(path, [[patient, date, kind, f"V{number:03d}", condition, site, route, pain,
                             post, mme, benzo, phq9, ae, f"Name of {patient}"]
                            for number, (patient, date, kind, condition, site, route, pain, post,
                                         mme, benzo, phq9, ae) in enumerate(TINY_ROWS, start=1)],
                     TINY_COLUMNS)


def build_tiny_clinic(folder: Path) -> Path:
    """Ingest the tiny export into a DuckDB file; return the file."""
    export = write_tiny_export(folder / "sessions.csv")
    path = folder / "tiny.duckdb"
    con = db.connect(path)
    result = ingest.ingest_file(con, export, ingest_date=TINY_INGEST_DATE)
    con.close()
    assert result.status == "ingested", result.error
    return path


# --------------------------------------------------------------------------
# a clinic of given rows with mood scores, adverse events and vital signs
# (mood, safety, durability, adverse events)


MEASURES_INGEST_DATE = dt.date(2026, 1, 1)
MEASURES_COLUMNS = ["patient_id", "visit_date", "visit_type", "condition", "site", "route",
                    "ketamine_mg", "weight_kg", "pain_score", "phq9", "pcl5", "adverse_event",
                    "sbp_max", "spo2_min"]


def iso_date(text: str) -> dt.date:
    """A date written as the exports write it (2025-01-05)."""
    return dt.date.fromisoformat(text)


def measures_clinic(tmp_path: Path, rows: list[dict]) -> store.Snapshot:
    """A clinic whose session export holds exactly ``rows`` (condition
    Migraine and site Denver unless a row says otherwise)."""
    export = write_csv(tmp_path / "sessions.csv",
                       [{"condition": "Migraine", "site": "Denver", **row} for row in rows],
                       MEASURES_COLUMNS)
    path = tmp_path / "clinic.duckdb"
    con = db.connect(path)
    summary = ingest.ingest_files(con, [export], ingest_date=MEASURES_INGEST_DATE)
    con.close()
    assert summary.ok, summary.to_dict()
    assert summary.files[0].rows_accepted == len(rows), summary.to_dict()
    return store.Snapshot(path)


# --------------------------------------------------------------------------
# the demo clinic with hostile values (markdown, HTML) in every free-text
# column (test_hostile_values, the server attacks)


HOSTILE_SITE_MD = "![t](http://attacker.example/site.png)"
HOSTILE_SITE_HTML = '<a href="http://attacker.example/site">Boulder</a>'
HOSTILE_CONDITION = "[migraine](http://attacker.example/condition) <b>loud</b>"
HOSTILE_ROUTE = '<a href="http://attacker.example/route">IM</a>'
HOSTILE_VISIT_TYPE = "[call](http://attacker.example/visit-type)"
HOSTILE_ADVERSE = '<a href="http://attacker.example/ae">nausea</a>'
HOSTILE_PATIENT = "P-![p](http://attacker.example/patient.png)"
HOSTILE_FILE_NAME = "[export](http://attacker.example/file).csv"
HOSTILE = (HOSTILE_SITE_MD, HOSTILE_SITE_HTML, HOSTILE_CONDITION, HOSTILE_ROUTE, HOSTILE_VISIT_TYPE,
           HOSTILE_ADVERSE, HOSTILE_PATIENT, HOSTILE_FILE_NAME)


def hostile_sessions(sessions) -> pd.DataFrame:
    """The demo clinic's visits with hostile values in every free-text column."""
    frame = pd.read_csv(sessions, dtype=str)
    frame["site"] = frame["site"].replace({"Boulder": HOSTILE_SITE_MD, "Colorado Springs": HOSTILE_SITE_HTML})
    frame.loc[frame["condition"] == "Migraine", "condition"] = HOSTILE_CONDITION
    frame["route"] = frame["route"].replace({"IM": HOSTILE_ROUTE})
    frame["adverse_event"] = frame["adverse_event"].replace({"nausea": HOSTILE_ADVERSE})
    first = frame["patient_id"].iloc[0]
    frame["patient_id"] = frame["patient_id"].replace({first: HOSTILE_PATIENT})
    odd = frame.iloc[:3].copy()
    odd["visit_type"] = HOSTILE_VISIT_TYPE
    odd["visit_id"] = ["hostile-1", "hostile-2", "hostile-3"]
    return pd.concat([frame, odd], ignore_index=True)


def build_hostile_db(demo_exports, folder) -> Path:
    """The demo clinic with :func:`hostile_sessions`, ingested into ``folder``."""
    export = folder / "sessions.csv"
    hostile_sessions(demo_exports.sessions).to_csv(export, index=False)
    path = folder / "clinic.duckdb"
    with db.writer(path) as con:
        summary = ingest.ingest_files(con, [export, demo_exports.medications])
    assert summary.ok, summary.to_dict()
    export.unlink()
    return path


# --------------------------------------------------------------------------
# databases: ingesting, waiting for a snapshot build, a grant to write


def ingested_snapshot(db_path, files):
    """Ingest ``files`` into a new DuckDB file at ``db_path`` (every file
    must be accepted) and return a snapshot of it."""
    from analysis.storage import db, store
    from analysis.ingest import pipeline as ingest
    con = db.connect(db_path)
    summary = ingest.ingest_files(con, files)
    con.close()
    assert summary.ok, summary.to_dict()
    return store.Snapshot(db_path)


def write_grant(db_path, role: str = "clinical"):
    """What a signed-in user of ``role`` gets from ``analysis.access.auth.may_write``
    for the clinic database ``db_path``."""
    from analysis.access import auth
    from analysis.sources import DataSource
    return auth.may_write(DataSource(Path(db_path), is_demo=False), f"test-{role}", role,
                          signed_in=True)


def wait_until_built(db_path, timeout: float = 60) -> None:
    """Wait for a background snapshot build of ``db_path`` to end."""
    import time

    from analysis.storage import store
    deadline = time.monotonic() + timeout
    while store.building(db_path) and time.monotonic() < deadline:
        time.sleep(0.1)
