"""Free text and patient ids stay with the clinical team (issue 14, SPEC §2,
§4), tried as an attacker would: a clinic whose export carries an adverse
event "called John Smith 555-123-4567", a condition label "Fibromyalgia - Dr
Jones pt", a PHQ-9 typed as a sentence and a quarantined row holding both.

* an analyst sees none of it on any page (every element the app sends:
  markdown, tables, charts, expanders), and no patient id;
* the Data page shows analysts what ingest set aside by file, line and
  reason, never the patient or the value;
* a clinician still finds the text where it helps: the Safety page's
  clinical expander, the Data page's raw rows, the Patient timeline."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from analysis.ingest import data_quality
from analysis.ingest.pipeline import ingest_files
from analysis.storage import db
from analysis.core.audience import Audience
from tests.helpers.apptest import assert_no_errors, run_page
from ui import pages

PROBE_AE = "called John Smith 555-123-4567"
PROBE_CONDITION = "Fibromyalgia - Dr Jones pt"
PROBE_VALUE = "Smith says seven"
# What must never reach an analyst: the probes' distinctive parts, any case.
SECRETS = ("john smith", "555-123-4567", "dr jones", "smith says")
PATIENT_ID = re.compile(r"\bP\d{6}\b")          # the demo's patient ids
QUARANTINED_PATIENT = "P999999"


def probe_sessions(sessions: Path) -> pd.DataFrame:
    frame = pd.read_csv(sessions, dtype=str)
    nausea = frame.index[frame["adverse_event"] == "nausea"][:20]
    frame.loc[nausea, "adverse_event"] = "nausea; " + PROBE_AE
    fibro = frame.loc[frame["condition"] == "Fibromyalgia", "patient_id"].unique()[:12]
    labelled = frame["patient_id"].isin(fibro) & frame["condition"].notna()
    frame.loc[labelled, "condition"] = PROBE_CONDITION
    intake = frame.index[frame["visit_type"] == "intake"][:3]
    frame.loc[intake, "phq9"] = PROBE_VALUE
    odd = frame.iloc[[0]].copy()        # no known visit type: quarantined whole
    odd["patient_id"] = QUARANTINED_PATIENT
    odd["visit_type"] = "phone call"
    odd["visit_id"] = "probe-q1"
    odd["adverse_event"] = PROBE_AE
    odd["condition"] = PROBE_CONDITION
    return pd.concat([frame, odd], ignore_index=True)


@pytest.fixture(scope="module")
def probe_db(demo_exports, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("probe")
    export = folder / "sessions.csv"
    probe_sessions(demo_exports.sessions).to_csv(export, index=False)
    path = folder / "clinic.duckdb"
    with db.writer(path) as con:
        summary = ingest_files(con, [export, demo_exports.medications])
    assert summary.ok, summary.to_dict()
    assert summary.files[0].rows_quarantined >= 1 and summary.files[0].values_nulled >= 3
    export.unlink()
    return path


@pytest.fixture
def probe_app_db(probe_db, monkeypatch):
    monkeypatch.setenv("OUTCOMES_DB", str(probe_db))
    return probe_db


def rendered(app) -> str:
    """Every string the page sent: each element's message (titles, markdown,
    metrics, chart specs, widget options, expander labels) and each table's
    cells, lower-cased."""
    parts = []
    for node in app._tree:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        if getattr(node, "type", None) == "dataframe":
            parts.append(node.value.to_csv())
    return "\n".join(parts).lower()


def assert_no_free_text(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where}: {secret!r} shown"


def test_the_probe_reaches_the_database_for_the_clinical_team(probe_db):
    """The probes are really there (else the tests below prove nothing)."""
    con = db.connect(probe_db, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM visits WHERE adverse_event LIKE "
                           "'%john smith%'").fetchone()[0] == 20
        assert con.execute("SELECT count(DISTINCT patient_id) FROM visits "
                           "WHERE condition_raw = ?", [PROBE_CONDITION]).fetchone()[0] == 12
    finally:
        con.close()


@pytest.mark.parametrize("page", [p.path for p in pages.pages_for("analyst")])
def test_an_analyst_sees_no_free_text_and_no_patient_id_on_any_page(probe_app_db, page):
    app = run_page(page, role="analyst")
    assert_no_errors(app)
    text = rendered(app)
    assert_no_free_text(text, page)
    found = PATIENT_ID.findall(text.upper())
    assert not found, f"{page}: patient ids shown to an analyst: {sorted(set(found))[:5]}"


def test_the_safety_page_counts_the_probe_as_other_for_an_analyst(probe_app_db):
    app = run_page("pages/safety.py", role="analyst")
    assert_no_errors(app)
    text = rendered(app)
    assert "other" in text and "dissociation or emergence reaction" in text
    assert not [e for e in app.expander if "as exported" in e.label]


def test_a_clinician_reads_the_text_on_the_safety_page(probe_app_db):
    app = run_page("pages/safety.py")
    assert_no_errors(app)
    expander = next(e for e in app.expander if "as exported" in e.label)
    table = expander.dataframe[0].value
    row = table[table["Text as exported"] == "nausea; " + PROBE_AE.lower()].iloc[0]
    assert row["Counted as"] == "nausea; other" and row["Sessions"] == 20


def test_the_data_page_shows_an_analyst_file_line_and_reason_only(probe_app_db):
    app = run_page("pages/data.py", role="analyst")
    assert_no_errors(app)
    tables = [d.value for d in app.dataframe]
    quarantine = next(t for t in tables if "reason" in t.columns and "column" not in t.columns)
    # the value issues' rows (not the page's count per column and reason)
    issues = next(t for t in tables if "reason" in t.columns and "column" in t.columns
                  and "line" in t.columns)
    for table in (quarantine, issues):
        assert {"file", "line", "reason"} <= set(table.columns)
        assert not {"patient", "row as exported", "value in the export", "date"} & set(
            table.columns), table.columns
    assert (issues["column"] == "phq9").sum() >= 3
    text = rendered(app)
    assert_no_free_text(text, "data page")
    assert QUARANTINED_PATIENT.lower() not in text
    assert "smith says" not in text


def test_the_data_page_shows_a_clinician_the_raw_row_and_value(probe_app_db):
    app = run_page("pages/data.py")
    assert_no_errors(app)
    text = rendered(app)
    assert QUARANTINED_PATIENT.lower() in text and "john smith" in text
    assert PROBE_VALUE.lower() in text


def test_quality_tables_for_an_analyst_carry_no_patient_or_value(probe_db):
    """The builders themselves (pages and downloads read them)."""
    from analysis.storage import store
    snap = store.Snapshot(probe_db)
    try:
        for audience in (Audience.ANALYST, Audience.EXTERNAL):
            quarantine = data_quality.quarantine_rows(snap, audience)
            issues = data_quality.value_issue_rows(snap, audience=audience)
            for frame in (quarantine, issues):
                assert not {"patient_id", "raw_row", "raw_value", "visit_date"} & set(
                    frame.columns)
                text = frame.to_csv().lower()
                assert_no_free_text(text, f"{audience} quality table")
                assert not PATIENT_ID.findall(text.upper())
        clinical = data_quality.quarantine_rows(snap, Audience.CLINICAL)
        assert clinical["raw_row"].str.contains(QUARANTINED_PATIENT).any()
        issues = data_quality.value_issue_rows(snap, audience=Audience.CLINICAL)
        assert (issues["raw_value"] == PROBE_VALUE).sum() == 3
    finally:
        snap.close()


# Where the raw text may be read at all: ingest writes it, the models carry
# the patient's label, the clinical-only Patient timeline shows it, the
# categoriser reads adverse-event text to count categories, the Safety page's
# clinical expander lists it.  A new reader must be added here with its reason
# (and shown to keep the text from analysts and the external audience).
RAW_TEXT_READERS = {
    "condition_raw": {
        "analysis/ingest/sessions.py": "writes it",
        "analysis/ingest/clean_sessions.py": "writes it (a clean export's one pass)",
        "analysis/ingest/fhir/load.py": "writes it",
        "analysis/sql/schema.sql": "stores it",
        "analysis/sql/models/intermediate/patients.sql": "the patient's label",
        "analysis/sql/models/intermediate/patient_windows.sql": "carried, never selected by a page",
        "analysis/sql/models/marts/patient_outcomes.sql": "carried, never selected by a page",
        "analysis/sql/queries/timeline_patient.sql": "Patient timeline (clinical only)",
        "analysis/sql/queries/timeline_visits.sql": "Patient timeline (clinical only)",
        "analysis/metrics/timeline.py": "Patient timeline (clinical only)",
        "pages/patient_timeline.py": "Patient timeline (clinical only)",
    },
    "adverse_event": {
        "analysis/ingest/sessions.py": "writes it", "analysis/ingest/staging.py": "stages it",
        "analysis/ingest/clean_sessions.py": "writes it (a clean export's one pass)",
        "analysis/ingest/fhir/visits.py": "writes it", "analysis/ingest/fhir/load.py": "writes it",
        "analysis/ingest/long_format.py": "writes it", "analysis/ingest/fhir/codes.py": "a column name",
        "analysis/storage/reference.py": "a column name", "analysis/ingest/demo/export.py": "invents it",
        "analysis/ingest/demo/fhir_export.py": "invents it", "analysis/sql/schema.sql": "stores it",
        "analysis/sql/queries/adverse_event_categories.sql": "categorises it",
        "analysis/sql/queries/safety_infusions.sql": "passes it to the categoriser only",
        "analysis/sql/queries/safety_counts.sql": "'adverse_event' is a category column there",
        "analysis/sql/queries/safety_event_texts.sql": "adverse_events.texts (clinical only)",
        "analysis/sql/queries/data_completeness.sql": "counts recorded values",
        "analysis/sql/queries/timeline_visits.sql": "Patient timeline (clinical only)",
        "analysis/metrics/adverse_events.py": "the categoriser; texts() refuses non-clinical readers",
        "analysis/metrics/safety.py": "'adverse_event' is the kind of a category's rate",
        "pages/safety.py": "'adverse_event' is the kind of a category's rate",
        "pages/patient_timeline.py": "Patient timeline (clinical only)",
    },
}


@pytest.mark.parametrize("column", RAW_TEXT_READERS)
def test_only_known_places_read_the_raw_text(column):
    root = Path(__file__).resolve().parent.parent
    word = re.compile(rf"(?<![A-Za-z0-9_]){column}(?![A-Za-z0-9_])")
    readers = {str(path.relative_to(root)) for folder in ("analysis", "pages", "ui")
               for path in (root / folder).rglob("*") if path.suffix in (".py", ".sql")
               and word.search(path.read_text(encoding="utf-8"))}
    if word.search((root / "dashboard.py").read_text(encoding="utf-8")):
        readers.add("dashboard.py")
    assert readers - set(RAW_TEXT_READERS[column]) == set(), "new readers of the raw text"
