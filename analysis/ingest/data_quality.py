"""The Data page's engine: saving and ingesting uploaded exports, and how
complete, clean and fresh the stored data is (SPEC §2).

* :func:`save_upload` / :func:`ingest_uploads` — an uploaded file is written
  under ``data/uploads/<timestamp>_<sanitised name>`` (never executed),
  ingested into the clinic's database (never the demo's) and deleted; both
  need the :class:`analysis.access.auth.WriteGrant` of a session that may write;
* :func:`mapping_request` — what the column-mapping form needs when a file
  was refused for a missing required column;
* :func:`completeness`, :func:`key_completeness`, :func:`patient_completeness`
  — share of recorded values per column, overall and by visit type;
* :func:`quarantine_rows`, :func:`value_issue_rows`, :func:`ingest_history`,
  :func:`freshness` — what ingest set aside, and how current the data is.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import duckdb
import pandas as pd

from analysis.access import auth
from analysis.storage import db, reference, store
from analysis.ingest import limits
from analysis.ingest.pipeline import ingest_files
from analysis.ingest.ingest_log import FileResult, IngestSummary
from analysis.ingest.readers import read_headers
from analysis.core.audience import Audience
from analysis.core.filters import Filters
from analysis.storage.reference import fold
from analysis.storage.queries import run_query
from analysis.storage.store import Snapshot

UPLOAD_DIR = reference.DATA_DIR / "uploads"
ALLOWED_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".parquet",
                    ".ndjson", ".jsonl", ".json", ".zip")   # the last four: a FHIR R4 export
MAX_NAME_CHARS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class UploadRefused(Exception):
    """An upload that is not saved (wrong kind, too large, empty)."""


class DatabaseBusy(Exception):
    """Another process is writing the clinic database; try again shortly."""


# --------------------------------------------------------------------------
# uploads


def sanitise_name(name: str) -> str:
    """A safe file name: the base name only, characters outside
    ``[A-Za-z0-9._-]`` replaced by ``_``, no leading dots, at most 100
    characters (the extension kept)."""
    base = re.split(r"[\\/]", str(name or ""))[-1]
    safe = _UNSAFE.sub("_", base).lstrip(".")
    if not safe.strip("_"):
        safe = "upload"
    if len(safe) > MAX_NAME_CHARS:
        stem, dot, suffix = safe.rpartition(".")
        if dot and 0 < len(suffix) <= 10 and stem:
            safe = stem[: MAX_NAME_CHARS - len(suffix) - 1] + "." + suffix
        else:
            safe = safe[:MAX_NAME_CHARS]
    return safe


def save_upload(grant: auth.WriteGrant, name: str, data: bytes,
                upload_dir: str | os.PathLike | None = None,
                now: dt.datetime | None = None) -> Path:
    """Write an uploaded export to ``upload_dir/<timestamp>_<sanitised name>``
    for a session that may write (``grant``, from :func:`analysis.access.auth.may_write`).

    Refuses (:class:`UploadRefused`) a file that is empty, larger than
    :data:`analysis.ingest.limits.MAX_UPLOAD_BYTES`
    or not a .csv/.tsv/.txt/.xlsx/.parquet export or FHIR file (.ndjson, .jsonl,
    .json, .zip).  The file is created new
    (never overwriting another) and readable by its owner only; nothing in
    it is ever executed.
    """
    _check_grant(grant)
    safe = sanitise_name(name)
    suffix = Path(safe).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise UploadRefused(f"{safe}: not an export this dashboard reads "
                            f"({', '.join(ALLOWED_SUFFIXES)})")
    size = len(data)
    if size == 0:
        raise UploadRefused(f"{safe}: the file is empty")
    try:
        limits.check_bytes(safe, "the file", size, limits.MAX_UPLOAD_BYTES)
    except limits.LimitExceeded as over:
        raise UploadRefused(str(over)) from None
    folder = Path(upload_dir) if upload_dir is not None else UPLOAD_DIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _sweep(folder, dt.datetime.now())
    stamp = (now or dt.datetime.now()).strftime("%Y%m%dT%H%M%S")
    for attempt in range(1, 1000):
        candidate = folder / (f"{stamp}_{safe}" if attempt == 1 else f"{stamp}-{attempt}_{safe}")
        try:
            descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        return candidate
    raise UploadRefused(f"{safe}: too many uploads with this name in one second")


#: A saved upload still waiting for a column mapping is deleted after this long.
PENDING_UPLOAD_KEPT = dt.timedelta(hours=24)


def _check_grant(grant) -> None:
    if not isinstance(grant, auth.WriteGrant) or db.is_demo_database(grant.db_path):
        raise auth.WriteRefused("this session may not load exports")


def _sweep(folder: Path, now: dt.datetime) -> None:
    """Delete saved uploads left waiting for a column mapping for too long."""
    oldest = (now - PENDING_UPLOAD_KEPT).timestamp()
    for old in folder.iterdir():
        try:
            if old.is_file() and old.stat().st_mtime < oldest:
                old.unlink()
        except OSError:
            pass


def discard_upload(path: str | os.PathLike) -> None:
    """Delete a saved upload nobody will load (a column mapping not given)."""
    Path(path).unlink(missing_ok=True)


def ingest_uploads(paths: Iterable[str | os.PathLike], grant: auth.WriteGrant,
                   *, column_map: Mapping[str, str] | None = None,
                   display_names: Mapping[str, str] | None = None,
                   progress: Callable[[int, int, str], None] | None = None,
                   ingest_date: dt.date | None = None) -> IngestSummary:
    """Ingest saved uploads into the database ``grant`` allows (never the
    demo's), then delete each file (its SHA-256 stays in the ingest log),
    except one refused for a missing column, kept for the column-mapping
    form (:func:`discard_upload`, or swept after :data:`PENDING_UPLOAD_KEPT`).

    :class:`DatabaseBusy` when another process holds the file for writing
    (the files are kept for another try).
    """
    _check_grant(grant)
    paths = list(paths)
    try:
        with db.writer(grant.db_path) as con:
            summary = ingest_files(con, paths, ingest_date=ingest_date,
                                          column_map=column_map, display_names=display_names,
                                          progress=progress)
    except duckdb.IOException as error:
        raise DatabaseBusy(f"the clinic database is in use by another process ({error})") \
            from None
    kept = {str(Path(r.path)) for r in summary.files if needs_column_mapping(r)}
    for path in paths:
        if str(Path(path)) not in kept:
            discard_upload(path)
    return summary


def prepare_new_data(grant: auth.WriteGrant) -> None:
    """Build the snapshot of what was just loaded now (the session that
    loaded it waits for it; other sessions keep the previous one until it is
    ready), and start its warm-up."""
    store.snapshot(grant.db_path, warm=True)


def summary_table(summary: IngestSummary,
                  display_names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per file of an ingest: file, status, export kind, the row
    counts, identifying columns dropped, an identifying patient key stored as
    pseudonyms, unknown columns and the error."""
    rows = []
    for f in summary.files:
        rows.append({
            "file": (display_names or {}).get(f.path, Path(f.path).name),
            "status": f.status,
            "export": f.export_kind or "",
            "rows read": f.rows_read,
            "accepted": f.rows_accepted,
            "quarantined": f.rows_quarantined,
            "duplicates collapsed": f.duplicates_collapsed,
            "values nulled": f.values_nulled,
            "rows replaced": f.rows_replaced,
            "identifying columns dropped": ", ".join(f.dropped_identifying_columns),
            "patient key pseudonymised": ", ".join(f.pseudonymised_columns),
            "unknown columns": ", ".join(f.unknown_columns),
            "error": f.error or "",
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------
# column mapping for a refused file


@dataclass(frozen=True)
class MappingRequest:
    """What the column-mapping form shows for one refused file."""
    path: str
    export_kind: str                    # sessions | medications
    headers: tuple[str, ...]            # the file's raw headers
    required: tuple[str, ...]           # canonical columns the file must have
    suggested: dict[str, str | None]    # required column -> header recognised for it
    missing: tuple[str, ...]            # required columns no header was recognised as


def needs_column_mapping(result: FileResult) -> bool:
    """Was the file refused only because a required column is missing?"""
    return result.status == "refused" and "missing required column" in (result.error or "")


def _auto_column(header: str, medication: bool) -> str | None:
    folded = fold(header)
    if medication:
        canonical = reference.MEDICATION_ALIASES.get(folded, folded)
        if canonical in reference.MEDICATION_COLUMNS:
            return canonical
        return {"patient_id": "patient_id", "visit_date": "date"}.get(
            reference.canonical_column(folded) or "")
    return reference.canonical_column(folded)


def mapping_request(path: str | os.PathLike) -> MappingRequest:
    """The headers of a refused file and which required column each may be."""
    con = duckdb.connect(":memory:")
    try:
        headers = read_headers(con, path)
    finally:
        con.close()
    folded = [fold(h) for h in headers]
    medication = any(reference.MEDICATION_ALIASES.get(f, f) == "drug" for f in folded) \
        and not any(reference.canonical_column(f) == "visit_type" for f in folded)
    required = ("patient_id", "date", "drug") if medication else reference.REQUIRED_COLUMNS
    suggested: dict[str, str | None] = {}
    for column in required:
        suggested[column] = next((h for h in headers
                                  if _auto_column(h, medication) == column), None)
    return MappingRequest(str(path), "medications" if medication else "sessions",
                          tuple(headers), tuple(required), suggested,
                          tuple(c for c, h in suggested.items() if h is None))


def column_map_from_choices(choices: Mapping[str, str | None]) -> dict[str, str]:
    """{required column: chosen header} -> ingest's {raw header: canonical}.

    ValueError when a column is left unchosen or one header is chosen twice.
    """
    unchosen = [c for c, h in choices.items() if not h]
    if unchosen:
        raise ValueError(f"choose a column for {', '.join(unchosen)}")
    headers = [h for h in choices.values()]
    repeated = sorted({h for h in headers if headers.count(h) > 1})
    if repeated:
        raise ValueError(f"{', '.join(repeated)} chosen for more than one column")
    return {header: column for column, header in choices.items()}


# --------------------------------------------------------------------------
# what is stored



COMPLETENESS_COLUMNS = reference.CANONICAL_COLUMNS
KETAMINE_VISITS = ("infusion", "booster")

# Where a column matters: (column, visit types, why).
KEY_CHECKS = (
    ("pain_score", ("intake",), "baseline pain before the first infusion"),
    ("pain_score", KETAMINE_VISITS, "usual pain before each infusion"),
    ("pain_score", ("follow_up",), "pain at follow-up"),
    ("pain_post", KETAMINE_VISITS, "acute effect right after the infusion"),
    ("opioid_mme_per_day", ("intake",), "opioid dose at baseline"),
    ("opioid_mme_per_day", ("follow_up",), "opioid dose at follow-up"),
    ("benzodiazepine", ("intake", "follow_up"), "benzodiazepine co-prescription"),
    ("phq9", ("intake", "follow_up"), "depression (PHQ-9)"),
    ("ketamine_mg", KETAMINE_VISITS, "ketamine dose given"),
    ("route", KETAMINE_VISITS, "route of the infusion"),
    ("sbp_max", KETAMINE_VISITS, "blood pressure monitoring"),
    ("spo2_min", KETAMINE_VISITS, "oxygen saturation monitoring"),
)


def completeness(snap: Snapshot, filters: Filters = Filters()) -> pd.DataFrame:
    """Share of visits recording each canonical column, over all visits of
    the patients in view (visit_type ``"all"``) and per visit type.
    Columns: column, visit_type, visits, recorded, share."""
    wide = run_query(snap, "data_completeness", filters, alias="p")
    wide["visit_type"] = wide["visit_type"].fillna("all")
    rows = []
    for r in wide.itertuples(index=False):
        values = r._asdict()
        for column in COMPLETENESS_COLUMNS:
            recorded = values["visit_type_recorded" if column == "visit_type" else column]
            visits = int(values["visits"])
            rows.append({"column": column, "visit_type": values["visit_type"],
                         "visits": visits, "recorded": int(recorded),
                         "share": recorded / visits if visits else None})
    return pd.DataFrame(rows, columns=["column", "visit_type", "visits", "recorded", "share"])


def key_completeness(snap: Snapshot, filters: Filters = Filters()) -> pd.DataFrame:
    """Completeness where it matters (e.g. pain_score on ketamine visits).
    Columns: column, visit_types, why, visits, recorded, share."""
    long = completeness(snap, filters)
    rows = []
    for column, types, why in KEY_CHECKS:
        part = long[(long.column == column) & long.visit_type.isin(types)]
        visits, recorded = int(part.visits.sum()), int(part.recorded.sum())
        rows.append({"column": column, "visit_types": ", ".join(types), "why": why,
                     "visits": visits, "recorded": recorded,
                     "share": recorded / visits if visits else None})
    return pd.DataFrame(rows, columns=["column", "visit_types", "why", "visits", "recorded",
                                       "share"])


def patient_completeness(snap: Snapshot, filters: Filters = Filters()) -> pd.DataFrame:
    """Among treated patients in view, the share with what outcomes need.
    Columns: item, patients, treated, share."""
    row = run_query(snap, "data_patient_completeness", filters, alias="p").iloc[0]
    treated = int(row["treated"])
    items = (("condition recorded", "with_condition"), ("site recorded", "with_site"),
             ("route recorded", "with_route"),
             ("baseline pain (30 days before the first infusion)", "with_baseline_pain"),
             ("baseline opioid dose (90 days before the first infusion)", "with_baseline_mme"))
    return pd.DataFrame([{"item": label, "patients": int(row[key]), "treated": treated,
                          "share": int(row[key]) / treated if treated else None}
                         for label, key in items])


# What ingest set aside, for whom (SPEC §2: the clinical role alone sees
# quarantined rows; issue 14: analysts see no patient identifier and no
# value).  Everyone else reads where (file, line), what (visit type, column)
# and why (the reason names columns, never a value).
QUARANTINE_COLUMNS = ("ingest_id", "ingested_at", "file_name", "line", "reason")
QUARANTINE_CLINICAL_COLUMNS = QUARANTINE_COLUMNS + ("raw_row",)
VALUE_ISSUE_COLUMNS = ("ingest_id", "file_name", "line", "visit_type", "column_name", "reason")
VALUE_ISSUE_CLINICAL_COLUMNS = ("ingest_id", "file_name", "line", "patient_id", "visit_date",
                                "visit_type", "column_name", "raw_value", "reason")


def quarantine_rows(snap: Snapshot, audience: Audience = Audience.CLINICAL) -> pd.DataFrame:
    """Rows refused at ingest: ingest_id, ingested_at, file_name, line and
    reason; the clinical team also reads raw_row (the row as exported,
    identifying columns removed), nobody else."""
    frame = run_query(snap, "data_quarantine", alias="p")
    columns = QUARANTINE_CLINICAL_COLUMNS if audience.sees_patients else QUARANTINE_COLUMNS
    return frame[list(columns)]


def value_issue_rows(snap: Snapshot, filters: Filters = Filters(),
                     audience: Audience = Audience.CLINICAL) -> pd.DataFrame:
    """Values nulled at ingest (only the patients in view when any filter is
    set): ingest_id, file_name, line, visit_type, column_name and reason; the
    clinical team also reads the patient, visit date and raw value where the
    row is stored, nobody else."""
    frame = run_query(snap, "data_value_issues", filters, {"filtered": filters != Filters()},
                      alias="p")
    if not audience.sees_patients:
        return frame[list(VALUE_ISSUE_COLUMNS)]
    frame["visit_date"] = pd.to_datetime(frame["visit_date"]).dt.date
    return frame[list(VALUE_ISSUE_CLINICAL_COLUMNS)]


def ingest_history(snap: Snapshot) -> pd.DataFrame:
    """The ingest log, newest first."""
    frame = run_query(snap, "data_ingest_log", alias="p")
    for column in ("dropped_identifying_columns", "pseudonymised_columns", "unknown_columns"):
        frame[column] = [", ".join(v) if isinstance(v, (list, tuple)) or hasattr(v, "tolist")
                         else "" for v in frame[column]]
    return frame


@dataclass(frozen=True)
class Freshness:
    cutoff: dt.date | None
    last_ingest_at: dt.datetime | None
    ingests: int
    refused: int
    sites: pd.DataFrame      # site, visits, patients, first_visit, latest_visit, days_behind_cutoff


def freshness(snap: Snapshot, filters: Filters = Filters()) -> Freshness:
    """The data cutoff, the last successful ingest, and per site the latest
    visit of the patients in view and its days behind the cutoff."""
    cutoff = snap.scalar("SELECT cutoff_date FROM data_cutoff")
    log = snap.query("""
        SELECT max(ingested_at) FILTER (WHERE status = 'ingested') AS last_ingest_at,
               count(*) FILTER (WHERE status = 'ingested') AS ingests,
               count(*) FILTER (WHERE status = 'refused') AS refused
        FROM ingest_log
    """).iloc[0]
    sites = run_query(snap, "data_freshness", filters, alias="p")
    for column in ("first_visit", "latest_visit"):
        sites[column] = pd.to_datetime(sites[column]).dt.date
    sites["days_behind_cutoff"] = sites["days_behind_cutoff"].astype(int)
    last = log["last_ingest_at"]
    return Freshness(
        None if cutoff is None or pd.isna(cutoff) else pd.Timestamp(cutoff).date(),
        None if last is None or pd.isna(last) else pd.Timestamp(last).to_pydatetime(),
        int(log["ingests"]), int(log["refused"]), sites)
