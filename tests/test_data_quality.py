"""The Data page's engine (analysis/ingest/data_quality.py): uploads, ingest,
column mapping, completeness, quarantine, value issues and freshness, by hand
on the tiny clinic and against pandas on the demo clinic."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat

import duckdb
import pytest

from analysis.ingest import data_quality, limits
from analysis.storage import store
from analysis.core.audience import Audience
from analysis.core.filters import Filters
from tests.helpers.builders import TINY_INGEST_DATE, write_grant, write_tiny_export


# --------------------------------------------------------------------------
# uploads


@pytest.mark.parametrize("raw,safe", [
    ("sessions.csv", "sessions.csv"),
    ("../../etc/passwd.csv", "passwd.csv"),
    ("C:\\Users\\me\\Export (3).csv", "Export__3_.csv"),
    ("..hidden.csv", "hidden.csv"),
    ("rm -rf $(x);.csv", "rm_-rf___x__.csv"),
    ("ü.csv", "_.csv"),
    ("", "upload"),
    ("../..", "upload"),
])
def test_sanitise_name(raw, safe):
    assert data_quality.sanitise_name(raw) == safe


def test_sanitise_name_keeps_the_extension_within_100_characters():
    safe = data_quality.sanitise_name("x" * 300 + ".parquet")
    assert len(safe) == 100 and safe.endswith(".parquet")


GRANT = write_grant("clinic.duckdb")  # a signed-in clinical user's (files only)


def test_save_upload(tmp_path, monkeypatch):
    now = dt.datetime(2030, 1, 2, 3, 4, 5)
    path = data_quality.save_upload(GRANT, "../My Export.csv", b"a,b\n1,2\n", tmp_path, now=now)
    assert path == tmp_path / "20300102T030405_My_Export.csv"
    assert path.read_bytes() == b"a,b\n1,2\n"
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert not mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    again = data_quality.save_upload(GRANT, "My Export.csv", b"other", tmp_path, now=now)
    assert again != path and path.read_bytes() == b"a,b\n1,2\n"   # never overwritten
    for name in ("evil.py", "export.sh", "export.xls", "noextension"):
        with pytest.raises(data_quality.UploadRefused):
            data_quality.save_upload(GRANT, name, b"x", tmp_path)
    with pytest.raises(data_quality.UploadRefused, match="empty"):
        data_quality.save_upload(GRANT, "empty.csv", b"", tmp_path)
    monkeypatch.setattr(limits, "MAX_UPLOAD_BYTES", 10)
    with pytest.raises(data_quality.UploadRefused, match="limit"):
        data_quality.save_upload(GRANT, "big.csv", b"x" * 11, tmp_path)
    assert data_quality.save_upload(GRANT, "ok.tsv", b"x" * 10, tmp_path).exists()


def test_ingest_uploads_into_the_clinic_database(tmp_path, monkeypatch):
    export = write_tiny_export(tmp_path / "original.csv")
    saved = data_quality.save_upload(GRANT, "Sessions export.csv", export.read_bytes(),
                                     tmp_path / "uploads")
    clinic = tmp_path / "clinic.duckdb"
    names = {str(saved): "Sessions export.csv"}
    summary = data_quality.ingest_uploads([saved], write_grant(clinic), display_names=names,
                                          ingest_date=TINY_INGEST_DATE)
    table = data_quality.summary_table(summary, names)
    row = table.iloc[0]
    assert (row["file"], row["status"], row["export"]) == ("Sessions export.csv", "ingested",
                                                           "sessions")
    assert (row["rows read"], row["accepted"], row["quarantined"], row["values nulled"]) == \
        (20, 19, 1, 1)
    assert row["identifying columns dropped"] == "patient_name"
    snap = store.Snapshot(clinic)
    assert snap.scalar("SELECT count(*) FROM visits") == 19
    assert snap.scalar("SELECT count(*) FROM visits WHERE patient_id = 'A'") == 5
    snap.close()
    # the raw upload is deleted once ingested; its SHA-256 stays in the log
    assert not saved.exists()
    with duckdb.connect(str(clinic), read_only=True) as con:
        logged = con.execute("SELECT sha256 FROM ingest_log").fetchall()
    assert logged == [(hashlib.sha256(export.read_bytes()).hexdigest(),)]
    # the same file again changes nothing
    again = data_quality.save_upload(GRANT, "again.csv", export.read_bytes(), tmp_path / "uploads")
    assert data_quality.ingest_uploads([again], write_grant(clinic),
                                       ingest_date=TINY_INGEST_DATE).files[0].status == "unchanged"
    assert not again.exists()


def test_column_mapping_for_a_refused_file(tmp_path):
    export = tmp_path / "odd.csv"
    export.write_text("Patient,Seen On,Encounter Kind,Pain Score\n"
                      "P1,2029-01-01,intake,7\nP1,2029-01-02,infusion,6\n")
    clinic = tmp_path / "clinic.duckdb"
    refused = data_quality.ingest_uploads([export], write_grant(clinic),
                                          ingest_date=TINY_INGEST_DATE).files[0]
    assert refused.status == "refused" and data_quality.needs_column_mapping(refused)

    request = data_quality.mapping_request(export)
    assert request.export_kind == "sessions"
    assert request.headers == ("Patient", "Seen On", "Encounter Kind", "Pain Score")
    assert request.required == ("patient_id", "visit_date", "visit_type")
    assert "visit_type" in request.missing
    choices = {**request.suggested, "patient_id": "Patient", "visit_date": "Seen On",
               "visit_type": "Encounter Kind"}
    column_map = data_quality.column_map_from_choices(choices)
    assert column_map == {"Patient": "patient_id", "Seen On": "visit_date",
                          "Encounter Kind": "visit_type"}
    with pytest.raises(ValueError, match="choose"):
        data_quality.column_map_from_choices({**choices, "visit_type": None})
    with pytest.raises(ValueError, match="more than one"):
        data_quality.column_map_from_choices({**choices, "visit_type": "Patient"})

    assert export.exists()  # kept for the mapping form
    loaded = data_quality.ingest_uploads([export], write_grant(clinic), column_map=column_map,
                                         ingest_date=TINY_INGEST_DATE).files[0]
    assert loaded.status == "ingested" and loaded.rows_accepted == 2
    assert not export.exists()
    snap = store.Snapshot(clinic)
    assert snap.scalar("SELECT count(*) FROM visits WHERE patient_id = 'P1'") == 2
    assert snap.scalar("SELECT count(*) FROM ingest_log WHERE status = 'refused'") == 1
    snap.close()


def test_mapping_request_for_a_medication_export(tmp_path):
    export = tmp_path / "meds.csv"
    export.write_text("Patient ID,Med Date,Drug Name,dose,unit,doses_per_day\n"
                      "P1,2029-01-01,oxycodone,5,mg,4\n")
    request = data_quality.mapping_request(export)
    assert request.export_kind == "medications"
    assert request.required == ("patient_id", "date", "drug")
    assert request.suggested == {"patient_id": "Patient ID", "date": "Med Date",
                                 "drug": "Drug Name"}
    assert request.missing == ()


# --------------------------------------------------------------------------
# what is stored


def test_completeness_by_hand(tiny):
    frame = data_quality.completeness(tiny).set_index(["column", "visit_type"])
    assert frame.loc[("opioid_mme_per_day", "all"), ["visits", "recorded"]].tolist() == [19, 13]
    assert frame.loc[("opioid_mme_per_day", "all"), "share"] == pytest.approx(13 / 19)
    # ketamine visits: five infusions, four with a pain score (D's has none)
    assert frame.loc[("pain_score", "infusion"), ["visits", "recorded"]].tolist() == [5, 4]
    # C's pain score of 11 was nulled
    assert frame.loc[("pain_score", "follow_up"), ["visits", "recorded"]].tolist() == [8, 7]
    assert frame.loc[("patient_id", "all"), "share"] == 1
    denver = data_quality.completeness(tiny, Filters(sites=("Denver",))).set_index(
        ["column", "visit_type"])
    assert denver.loc[("pain_score", "all"), "visits"] == 12

    key = data_quality.key_completeness(tiny).set_index(["column", "visit_types"])
    assert key.loc[("pain_post", "infusion, booster"), ["visits", "recorded"]].tolist() == [5, 5]
    assert key.loc[("opioid_mme_per_day", "intake"), ["visits", "recorded"]].tolist() == [6, 5]

    patients = data_quality.patient_completeness(tiny).set_index("item")
    assert patients["treated"].iloc[0] == 5
    assert patients.loc["baseline opioid dose (90 days before the first infusion)",
                        "patients"] == 4


@pytest.mark.parametrize("filters", [Filters(), Filters(sites=("Denver", "Boulder"))])
def test_completeness_matches_pandas(demo_snapshot, filters):
    visits = demo_snapshot.query("SELECT * FROM stg_visits")
    patients = demo_snapshot.query("SELECT patient_id, site FROM patients")
    if filters.sites:
        visits = visits[visits.patient_id.isin(patients[patients.site.isin(filters.sites)]
                                               .patient_id)]
    frame = data_quality.completeness(demo_snapshot, filters).set_index(["column", "visit_type"])
    for column in ("pain_score", "opioid_mme_per_day", "phq9", "sbp_max", "route"):
        assert frame.loc[(column, "all"), "share"] == pytest.approx(visits[column].notna().mean())
        for visit_type, part in visits.groupby("visit_type"):
            assert frame.loc[(column, visit_type), "recorded"] == part[column].notna().sum()


def test_quarantine_and_value_issues(tiny):
    quarantine = data_quality.quarantine_rows(tiny)
    assert len(quarantine) == 1 and "unknown visit_type" in quarantine.loc[0, "reason"]
    assert "telehealth" in quarantine.loc[0, "raw_row"]        # the row's value, never the reason
    assert "telehealth" not in quarantine.loc[0, "reason"]
    assert "patient_name" not in quarantine.loc[0, "raw_row"]
    assert "Name of" not in quarantine.loc[0, "raw_row"]
    for reader in (Audience.ANALYST, Audience.EXTERNAL):   # issue 14: the clinical team only
        assert list(data_quality.quarantine_rows(tiny, reader).columns) == [
            "ingest_id", "ingested_at", "file_name", "line", "reason"]
        assert list(data_quality.value_issue_rows(tiny, audience=reader).columns) == [
            "ingest_id", "file_name", "line", "visit_type", "column_name", "reason"]

    issues = data_quality.value_issue_rows(tiny)
    assert len(issues) == 1
    row = issues.iloc[0]
    assert (row.patient_id, row.column_name, row.raw_value, row.visit_type) == \
        ("C", "pain_score", "11", "follow_up")
    assert len(data_quality.value_issue_rows(tiny, Filters(sites=("Denver",)))) == 1
    assert data_quality.value_issue_rows(tiny, Filters(sites=("Boulder",))).empty


def test_freshness_and_ingest_log(tiny):
    fresh = data_quality.freshness(tiny)
    assert fresh.cutoff == dt.date(2029, 5, 4)
    assert (fresh.ingests, fresh.refused) == (1, 0)
    assert fresh.last_ingest_at is not None
    sites = fresh.sites.set_index("site")
    assert sites.loc["Denver", "latest_visit"] == dt.date(2029, 5, 4)
    assert sites.loc["Denver", "days_behind_cutoff"] == 0
    assert sites.loc["Boulder", "latest_visit"] == dt.date(2029, 4, 21)
    assert sites.loc["Boulder", "days_behind_cutoff"] == 13
    assert sites.loc["Boulder", "patients"] == 2
    assert list(data_quality.freshness(tiny, Filters(sites=("Boulder",))).sites.site) == \
        ["Boulder"]
    log = data_quality.ingest_history(tiny)
    assert len(log) == 1 and log.loc[0, "status"] == "ingested"
    assert log.loc[0, "dropped_identifying_columns"] == "patient_name"
