"""Ingest of a FHIR R4 export (Bulk Data NDJSON or Bundles) into the same
visits and medications as the session export (SPEC §2 "FHIR R4 export").

One export (a folder, a zip, or the NDJSON/Bundle files given together) is
one transaction: all of it lands or none of it.  Set-based throughout:
DuckDB reads every file once (``read_ndjson_objects`` / ``read_json_objects``
and ``json_transform`` into the few fields the mapping needs) and SQL maps
resources to visit days; Python only maps the few distinct codes, condition
labels and drug names, and pseudonymises the distinct patient ids.

Identity: only the fields listed in :data:`FIELDS` are ever taken out of a
resource.  Patient names, telecom, addresses, birth dates and identifiers,
``valueString``, ``note`` and narrative ``text`` are not among them, so they
never reach the database, the quarantine or a message.  A patient's key is
the keyed pseudonym of their ``Patient.id`` (:func:`analysis.access.keys.pseudonym`).

How resources become visits (see README "Loading a FHIR export"):

* a visit is a patient's calendar day (the local date written in the
  resource's own time) and visit type; an Encounter gives its type
  (``fhir_codes``); an Encounter of no mapped type that day with a ketamine
  administration, or a ketamine administration without an Encounter, is a
  treatment session (``booster`` more than 28 days after the patient's
  previous session, else ``infusion``); a day with observations and
  neither is a ``follow_up``; an Encounter of an unmapped type without
  ketamine is quarantined, like a session row of an unknown visit type;
* an observation, administration or adverse event belongs to the Encounter
  it references on its day, else to the day's treatment session, follow-up
  or intake (in that order);
* a visit's natural key is ``fhir:<patient>|<date>|<visit type>``; a later
  export replaces the FHIR visits of every patient-day it covers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Mapping

import duckdb
import pandas as pd

from analysis.ingest import fhir_codes, fhir_files, limits
from analysis.storage import reference
from analysis.ingest.fhir_files import ExportRefused
from analysis.ingest.columns import NUMERIC_RULES, ROUTE_ALIASES
from analysis.ingest.ingest_log import (PSEUDONYM_FUNCTION, FileResult, sql_literal, log_ingest,
    log_refusal, next_ingest_id, register_pseudonym_function, remove_pseudonym_function, checkpoint)
from analysis.ingest.staging import fold_sql
from analysis.ingest.limits import LimitExceeded

# Resource types mapped (SPEC §2); every other type is counted and skipped.
PATIENT_TYPES = ("Encounter", "Observation", "Condition", "MedicationAdministration",
                 "Procedure", "MedicationRequest", "MedicationStatement", "AdverseEvent")
USED_TYPES = ("Patient", "Medication", *PATIENT_TYPES)
OBSERVATION_OK = ("final", "amended", "corrected")
ENCOUNTER_SKIPPED = ("planned", "cancelled", "entered-in-error")
ADMINISTRATION_OK = ("completed", "in-progress")
REQUEST_SKIPPED = ("entered-in-error", "cancelled", "draft")
STATEMENT_SKIPPED = ("entered-in-error", "not-taken")
CONDITION_SKIPPED = ("entered-in-error", "refuted")
SESSION_GAP_DAYS = 28
NOT_R4_TYPES = {"MedicationOrder": "DSTU2", "DiagnosticOrder": "DSTU2", "Order": "DSTU2",
                "OrderResponse": "DSTU2", "DeviceUseRequest": "DSTU2",
                "ProcedureRequest": "STU3", "ReferralRequest": "STU3", "BodySite": "STU3",
                "DataElement": "STU3", "ProcessRequest": "STU3", "ImagingManifest": "STU3",
                "MedicationUsage": "R5", "Transport": "R5", "InventoryItem": "R5",
                "DeviceAssociation": "R5", "ConditionDefinition": "R5"}

# --------------------------------------------------------------------------
# the fields read out of a resource (nothing else ever leaves the file)

_CODING = [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}]
_CONCEPT = {"coding": _CODING, "text": "VARCHAR"}
_REF = {"reference": "VARCHAR", "display": "VARCHAR"}
_QTY = {"value": "VARCHAR", "unit": "VARCHAR", "code": "VARCHAR"}
_PERIOD = {"start": "VARCHAR", "end": "VARCHAR"}
FIELDS = {
    "resourceType": "VARCHAR", "id": "VARCHAR",
    "meta": {"profile": ["VARCHAR"]},
    "status": "VARCHAR",
    "subject": _REF,
    "encounter": _REF, "context": _REF,
    "type": "JSON", "class": "JSON", "actualPeriod": "JSON",
    "period": _PERIOD,
    "location": [{"location": _REF}],
    "serviceProvider": _REF,
    "participant": [{"individual": _REF, "actor": _REF}],   # R4 individual, R5 actor
    "code": _CONCEPT,
    "effectiveDateTime": "VARCHAR", "effectiveInstant": "VARCHAR", "effectivePeriod": _PERIOD,
    "issued": "VARCHAR",
    "valueQuantity": _QTY, "valueInteger": "VARCHAR", "valueBoolean": "VARCHAR",
    "valueCodeableConcept": _CONCEPT,
    "component": [{"code": _CONCEPT, "valueQuantity": _QTY, "valueInteger": "VARCHAR",
                   "valueBoolean": "VARCHAR", "valueCodeableConcept": _CONCEPT}],
    "medicationCodeableConcept": _CONCEPT, "medicationReference": _REF,
    "dosage": "JSON", "dosageInstruction": "JSON",
    "performedDateTime": "VARCHAR", "performedPeriod": _PERIOD,
    "authoredOn": "VARCHAR", "dateAsserted": "VARCHAR",
    "verificationStatus": _CONCEPT,
    "onsetDateTime": "VARCHAR", "onsetPeriod": _PERIOD, "recordedDate": "VARCHAR",
    "actuality": "VARCHAR", "event": _CONCEPT, "date": "VARCHAR", "detected": "VARCHAR",
}
_STRUCTURE = json.dumps(FIELDS)
_BUNDLE = json.dumps({"resourceType": "VARCHAR", "entry": [{"fullUrl": "VARCHAR",
                                                            "resource": "JSON"}]})
_ADMIN_DOSAGE = json.dumps({"dose": _QTY, "route": _CONCEPT})
_DOSAGES = json.dumps([{"timing": {"repeat": {"frequency": "VARCHAR", "period": "VARCHAR",
                                              "periodUnit": "VARCHAR"},
                                   "code": _CONCEPT},
                        "doseAndRate": [{"doseQuantity": _QTY}],
                        "asNeededBoolean": "VARCHAR"}])
_TYPES = json.dumps([_CONCEPT])
# Timing codes (HL7 v3 GTSAbbreviation) -> doses a day.
TIMING_CODES = {"QD": 1, "BID": 2, "TID": 3, "QID": 4, "AM": 1, "PM": 1, "QOD": 0.5,
                "Q4H": 6, "Q6H": 4, "Q8H": 3, "Q12H": 2, "Q24H": 1}
_PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1, "wk": 7, "mo": 30,
                "a": 365}

def ingest_export(con: duckdb.DuckDBPyConnection, paths: list[Path], *,
                  name: str | None = None, ingest_date: dt.date | None = None,
                  codes_file: str | None = None,
                  _fail_after: str | None = None) -> FileResult:
    """Ingest one FHIR export (folders, zips, NDJSON or Bundle files).

    Never raises for a bad export: it is refused instead, with a one-line
    message naming the file (and line) but never a value from it.
    """
    paths = [Path(p) for p in paths]
    name = name or (paths[0].name if len(paths) == 1 else f"{len(paths)} FHIR files")
    ingest_date = ingest_date or dt.date.today()
    result = FileResult(path=str(paths[0]) if len(paths) == 1 else name, status="refused",
                        export_kind="fhir")
    export = digest = None
    try:
        codes = fhir_codes.load(codes_file)
        export = fhir_files.collect(paths, name)
        digest = export.digest
        already = con.execute(
            "SELECT count(*) FROM ingest_log WHERE sha256 = ? AND status = 'ingested'",
            [digest]).fetchall()[0][0]
        if already:
            result.status = "unchanged"
            return result
        _stage(con, export)
        _check_version(con, export)
        con.execute("BEGIN TRANSACTION")
        try:
            ingest_id = next_ingest_id(con)
            _map(con, codes, result, ingest_id, ingest_date, _fail_after)
            log_ingest(con, ingest_id, name, digest, "ingested", result)
            con.execute("UPDATE ingest_log SET message = ? WHERE ingest_id = ?",
                        [summary_message(result), ingest_id])
            checkpoint("logged", _fail_after)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        result.status = "ingested"
        return result
    except (ExportRefused, LimitExceeded, fhir_codes.CodesFileError) as refusal:
        result.error = str(refusal)
    except duckdb.Error as error:
        result.error = _read_error(error, export)
    finally:
        if export is not None:
            export.close()
        _drop_temp(con)
    log_refusal(con, name, digest, result)
    return result


def _read_error(error: duckdb.Error, export) -> str:
    """A DuckDB reading error as one line naming the file and line, never a
    value (DuckDB quotes the offending text)."""
    text = str(error)
    found = re.search(r"\bline (\d+)", text)
    source = next((f for f in (export.files if export else []) if str(f.path) in text), None)
    where = source.name if source else (export.name if export else "the export")
    line = int(found.group(1)) if found else None
    if line is not None and source is not None and source.lines:
        line = min(line, source.lines)   # DuckDB counts one past a last line without a newline
    if "Malformed JSON" in text or "unexpected" in text.lower():
        what = "not valid JSON (a truncated or broken line)"
    else:
        what = "could not be read as FHIR JSON"
    return (f"{where}{f' line {line}' if line else ''}: {what}; "
            "nothing from this export was stored")


# --------------------------------------------------------------------------
# staging: every resource once, as the typed fields of FIELDS


def _stage(con, export) -> None:
    con.execute("""CREATE OR REPLACE TEMP MACRO fx_ref(ref, kind) AS nullif(CASE
                       WHEN ref LIKE 'urn:uuid:%' THEN substr(ref, 10)
                       ELSE regexp_extract(ref, '(?:^|/)' || kind || '/([^/]+?)(?:/_history/[^/]*)?$', 1)
                   END, '')""")
    con.execute("""CREATE OR REPLACE TEMP MACRO fx_day(t) AS CASE
                       WHEN regexp_matches(t, '^\\d{4}-\\d{2}-\\d{2}') THEN TRY_CAST(substr(t, 1, 10) AS DATE)
                   END""")
    con.execute("""CREATE OR REPLACE TEMP MACRO fx_at(t) AS CASE
                       WHEN length(t) > 10 THEN TRY_CAST(t AS TIMESTAMPTZ) END""")
    columns = """src VARCHAR, line BIGINT, full_url VARCHAR, rtype VARCHAR, rid VARCHAR,
                 chash UBIGINT, pkey VARCHAR, has_subject BOOLEAN, enc VARCHAR"""
    con.execute(f"CREATE OR REPLACE TEMP TABLE fx_raw ({columns}, r {_struct_type(con)})")
    for source in export.files:
        path = sql_literal(str(source.path))
        if source.kind == "ndjson":
            con.execute(f"""CREATE OR REPLACE TEMP TABLE fx_file AS
                            SELECT NULL::VARCHAR AS full_url, json_transform(json, {sql_literal(_STRUCTURE)}) AS r
                            FROM read_ndjson_objects({path})""")
            count = con.execute("SELECT count(*) FROM fx_file").fetchall()[0][0]
            first = con.execute("SELECT r.resourceType FROM fx_file WHERE rowid = 0").fetchall()
            if not first or first[0][0] is None:
                raise ExportRefused(f"{source.name} line 1: not a FHIR resource (no resourceType); "
                                    "nothing from this export was stored")
            if count == source.lines:
                line = "rowid + 1"
            else:   # blank lines: the reader skipped them
                con.register("fx_lines_frame", pd.DataFrame(
                    {"ordinal": range(count), "line": fhir_files.nonblank_lines(source)[:count]}))
                con.execute("CREATE OR REPLACE TEMP TABLE fx_lines AS SELECT * FROM fx_lines_frame")
                con.unregister("fx_lines_frame")
                line = "(SELECT l.line FROM fx_lines l WHERE l.ordinal = fx_file.rowid)"
        else:
            con.execute(f"""CREATE OR REPLACE TEMP TABLE fx_file AS
                            WITH top AS (
                                SELECT json, json_transform(json, {sql_literal(_BUNDLE)}) AS b
                                FROM read_json_objects({path}, format = 'auto', maximum_object_size = {limits.MAX_BUNDLE_BYTES})),
                            entries AS (
                                SELECT unnest(b.entry) AS e FROM top WHERE b.resourceType = 'Bundle'
                                UNION ALL
                                SELECT {{'fullUrl': NULL, 'resource': json}} FROM top
                                WHERE b.resourceType IS DISTINCT FROM 'Bundle')
                            SELECT e.fullUrl AS full_url,
                                   json_transform(e.resource, {sql_literal(_STRUCTURE)}) AS r
                            FROM entries""")
            first = con.execute(
                "SELECT count(*), count(r.resourceType) FROM fx_file").fetchall()[0]
            bundles = con.execute(
                f"SELECT count(*) FILTER (WHERE json_extract_string(json, '$.resourceType') IS NULL) "
                f"FROM read_json_objects({path}, format = 'auto', maximum_object_size = {limits.MAX_BUNDLE_BYTES})").fetchall()[0][0]
            if bundles or not first[1]:
                raise ExportRefused(f"{source.name}: not FHIR JSON (no resourceType); "
                                    "nothing from this export was stored")
            line = "rowid + 1"
        con.execute(f"""
            INSERT INTO fx_raw
            SELECT {sql_literal(source.name)}, {line}, full_url, r.resourceType,
                   coalesce(r.id, CASE WHEN full_url LIKE 'urn:uuid:%' THEN substr(full_url, 10) END),
                   hash(r), fx_ref(r.subject.reference, 'Patient'),
                   r.subject.reference IS NOT NULL,
                   fx_ref(coalesce(r.encounter.reference, r.context.reference), 'Encounter'), r
            FROM fx_file""")
    con.execute("DROP TABLE IF EXISTS temp.fx_file")


def _struct_type(con) -> str:
    return con.execute(f"SELECT typeof(json_transform('{{}}', {sql_literal(_STRUCTURE)}))"
                       ).fetchall()[0][0]


# --------------------------------------------------------------------------
# the FHIR version


def _check_version(con, export) -> None:
    """Refuse an export that is not FHIR R4: resource types R4 does not have,
    a profile of another version, R5 Encounter fields, or sample resources
    that a FHIR library validates as STU3 or R5 and not as R4."""
    row = con.execute(f"""
        SELECT src, line, rtype FROM fx_raw
        WHERE rtype IN ({', '.join(sql_literal(t) for t in NOT_R4_TYPES)})
        ORDER BY src, line LIMIT 1""").fetchall()
    if row:
        src, line, rtype = row[0]
        _refuse_version(src, line, NOT_R4_TYPES[rtype], f"{rtype} resource")
    row = con.execute(r"""
        SELECT src, line, upper(regexp_extract(p, '(?i)hl7\.org/fhir/(DSTU2|STU3|R5|[135]\.0)', 1))
        FROM (SELECT src, line, unnest(r.meta.profile) AS p FROM fx_raw WHERE r.meta.profile IS NOT NULL)
        WHERE regexp_matches(p, '(?i)hl7\.org/fhir/(DSTU2|STU3|R5|[135]\.0)/')
        ORDER BY src, line LIMIT 1""").fetchall()
    if row:
        src, line, marker = row[0]
        version = {"1.0": "DSTU2", "3.0": "STU3", "5.0": "R5"}.get(marker, marker)
        _refuse_version(src, line, version, "profile")
    row = con.execute("""
        SELECT src, line FROM fx_raw
        WHERE rtype = 'Encounter' AND (r.actualPeriod IS NOT NULL OR json_type(r.class) = 'ARRAY')
        ORDER BY src, line LIMIT 1""").fetchall()
    if row:
        _refuse_version(row[0][0], row[0][1], "R5", "Encounter resource")
    for source, line, resource in _samples(con, export):
        version = _validated_version(resource)
        if version is not None:
            _refuse_version(source, line, version, f"{resource.get('resourceType')} resource")


def _refuse_version(src: str, line: int, version: str, what: str) -> None:
    raise ExportRefused(f"{src} line {line}: a {what} of FHIR {version}; this reads FHIR R4 "
                        "(ask for an R4 export); nothing from this export was stored")


def _samples(con, export, per_type: int = 2):
    """A few resources of each type of each file, as parsed JSON."""
    wanted = dict(con.execute(f"""
        SELECT src || '|' || rtype, list(line ORDER BY line)[:{per_type}]
        FROM fx_raw WHERE rtype IS NOT NULL GROUP BY ALL""").fetchall())
    lines_of: dict[str, set[int]] = {}
    for key, lines in wanted.items():
        lines_of.setdefault(key.rsplit("|", 1)[0], set()).update(lines)
    for source in export.files:
        numbers = lines_of.get(source.name, set())
        if not numbers:
            continue
        if source.kind == "ndjson":
            last = max(numbers)
            with open(source.path, "rb") as handle:
                for number, text in enumerate(handle, start=1):
                    if number in numbers:
                        try:
                            yield source.name, number, json.loads(text)
                        except ValueError:
                            pass
                    if number >= last:
                        break
        else:
            rows = con.execute(f"""
                WITH entries AS (
                    SELECT unnest(json_transform(json, '{{"entry": [{{"resource": "JSON"}}]}}').entry) AS e
                    FROM read_json_objects({sql_literal(str(source.path))}, format = 'auto', maximum_object_size = {limits.MAX_BUNDLE_BYTES}))
                SELECT ordinal, e.resource FROM (
                    SELECT row_number() OVER () AS ordinal, e FROM entries)
                WHERE ordinal <= {max(numbers)}""").fetchall()
            for ordinal, text in rows:
                if ordinal in numbers and text:
                    yield source.name, ordinal, json.loads(text)


def _validated_version(resource: dict) -> str | None:
    """'STU3' or 'R5' when ``resource`` has the shape of that version and not
    of R4 (R4B models: the resources read here are the same in R4 and R4B),
    else None.  A resource that lacks only required fields has R4's shape
    (it is mapped or quarantined like any other)."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or kind not in USED_TYPES:
        return None
    from fhir.resources import get_fhir_model_class as r5
    from fhir.resources.R4B import get_fhir_model_class as r4
    from fhir.resources.STU3 import get_fhir_model_class as stu3
    problems = _problems(r4, kind, resource)
    if problems is None or problems <= {"missing"}:
        return None
    for version, models in (("STU3", stu3), ("R5", r5)):
        other = _problems(models, kind, resource)
        if other is None or other <= {"missing"}:
            return version
    return None


def _problems(models, kind: str, resource: dict) -> set[str] | None:
    """The kinds of validation error (pydantic's ``type``: never its message,
    which quotes values), None when valid."""
    try:
        models(kind).model_validate(resource)
        return None
    except Exception as error:
        errors = getattr(error, "errors", None)
        try:
            return {str(e.get("type")) for e in errors()} if callable(errors) else {"invalid"}
        except Exception:
            return {"invalid"}


# --------------------------------------------------------------------------
# mapping


def _map(con, codes: fhir_codes.Codes, result: FileResult, ingest_id: int,
         ingest_date: dt.date, fail_after: str | None) -> None:
    params = {"ingest_date": ingest_date}
    con.execute("""CREATE OR REPLACE TEMP TABLE fx_out
                   (src VARCHAR, line BIGINT, rtype VARCHAR, rid VARCHAR, outcome VARCHAR, reason VARCHAR)""")
    _duplicates(con)
    live = "(SELECT * FROM fx_raw WHERE NOT drop_me)" if _count(con, "fx_drop") else "fx_raw"
    if live != "fx_raw":
        con.execute("ALTER TABLE fx_raw ADD COLUMN drop_me BOOLEAN DEFAULT false")
        con.execute("""UPDATE fx_raw SET drop_me = true FROM fx_drop d
                       WHERE fx_raw.src = d.src AND fx_raw.line = d.line""")
    con.execute(f"""INSERT INTO fx_out
                    SELECT src, line, NULL, NULL, 'quarantined', 'not a FHIR resource (no resourceType)'
                    FROM {live} WHERE rtype IS NULL""")
    con.execute(f"""INSERT INTO fx_out
                    SELECT src, line, rtype, rid, 'skipped', rtype || ' not used here'
                    FROM {live} WHERE rtype IS NOT NULL AND rtype NOT IN
                         ({', '.join(sql_literal(t) for t in USED_TYPES)})""")
    _patients(con, live)
    checkpoint("stage", fail_after)
    _encounters(con, codes, live, params)
    _items(con, codes, live, params)
    _conditions(con, live, params)
    _medications(con, codes, live, params)
    _visits(con)
    checkpoint("checked", fail_after)
    _write(con, result, ingest_id, params, fail_after)


def _duplicates(con) -> None:
    """Copies of one resource (type and id): identical ones collapse to the
    first; copies that differ are all quarantined as conflicting."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE fx_drop AS
        WITH groups AS (
            SELECT rtype, rid, count(DISTINCT chash) AS variants, min((src, line)) AS first
            FROM fx_raw WHERE rtype IS NOT NULL AND rid IS NOT NULL
            GROUP BY rtype, rid HAVING count(*) > 1)
        SELECT f.src, f.line, f.rtype, f.rid,
               CASE WHEN g.variants > 1 THEN 'quarantined' ELSE 'collapsed' END AS outcome,
               CASE WHEN g.variants > 1 THEN 'conflicting copies of ' || f.rtype || ' ' || f.rid
                    ELSE 'exact duplicate' END AS reason
        FROM fx_raw f JOIN groups g USING (rtype, rid)
        WHERE g.variants > 1 OR (f.src, f.line) <> g.first""")
    con.execute("INSERT INTO fx_out SELECT * FROM fx_drop")


def _patients(con, live: str) -> None:
    """Pseudonyms of every patient id the export names, and which patients
    are known (in this export or already in the database)."""
    register_pseudonym_function(con)   # the session export's set-wise pseudonyms
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_patients AS
        WITH ids AS (
            SELECT DISTINCT pkey FROM (
                SELECT rid AS pkey FROM {live} WHERE rtype = 'Patient'
                UNION ALL SELECT pkey FROM {live} WHERE rtype IN ({_types(PATIENT_TYPES)}))
            WHERE pkey IS NOT NULL),
        named AS (SELECT pkey, {PSEUDONYM_FUNCTION}(pkey) AS patient_id FROM ids)
        SELECT pkey, patient_id,
               pkey IN (SELECT rid FROM {live} WHERE rtype = 'Patient')
               OR patient_id IN (SELECT patient_id FROM visits UNION SELECT patient_id FROM medications)
                 AS known
        FROM named""")
    remove_pseudonym_function(con)
    con.execute(f"""INSERT INTO fx_out SELECT src, line, rtype, rid, 'quarantined', 'Patient without id'
                    FROM {live} WHERE rtype = 'Patient' AND rid IS NULL""")


def _types(types) -> str:
    return ", ".join(sql_literal(t) for t in types)


def _common(time_sql: str, end_sql: str = "NULL", dated: bool = True) -> str:
    """Columns every patient resource carries, and its row problem (NULL
    when none): the patient, the local day of its own time and its instant.
    ``dated=False``: a resource without a date is no problem (a Condition)."""
    day = f"fx_day({time_sql})"
    dates = f"""WHEN {time_sql} IS NULL THEN 'no date'
                    WHEN {day} IS NULL THEN 'date is not a full calendar day'""" if dated else ""
    return f"""f.src, f.line, f.rtype, f.rid, pt.patient_id, f.enc,
               {day} AS day, fx_at({time_sql}) AS t_at, fx_at({end_sql}) AS t_end,
               CASE WHEN pkey IS NULL AND NOT f.has_subject THEN 'no subject (patient reference)'
                    WHEN pkey IS NULL THEN 'subject is not a Patient reference'
                    WHEN NOT pt.known THEN 'subject refers to a patient not in this export'
                    {dates}
                    WHEN {day} > $ingest_date THEN 'date ' || {day} || ' is after the ingest date'
               END AS problem"""


def _register(con, name: str, frame: pd.DataFrame) -> None:
    con.register(f"{name}_frame", frame)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_frame")
    con.unregister(f"{name}_frame")


def _encounters(con, codes: fhir_codes.Codes, live: str, params: dict) -> None:
    """fx_enc: one row per usable Encounter with its mapped visit type (NULL
    when its type maps to none), site and the codes of its type."""
    rows = [(s, c, t, n) for n, (s, c, t) in enumerate(codes.encounter_types)]
    _register(con, "fx_enc_codes", pd.DataFrame(rows, columns=["system", "code", "visit_type",
                                                               "priority"]).astype(
        {"system": object, "code": object, "visit_type": object, "priority": "int64"}))
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_enc AS
        WITH e AS (
            SELECT {_common("r.period.start")}, r.status AS status,
                   json_transform(r.type, {sql_literal(_TYPES)}) AS types,
                   coalesce(r.location[1].location.display, r.serviceProvider.display) AS site,
                   -- provider: the id of the first participant that is a
                   -- Practitioner (its reference, never its display name)
                   nullif(regexp_extract(list_filter(
                       list_transform(r.participant,
                                      lambda p: coalesce(p.individual.reference, p.actor.reference)),
                       lambda x: regexp_matches(x, '(^|/)Practitioner/[^/]+(/_history/[^/]+)?$'))[1],
                       '(?:^|/)Practitioner/([^/]+)', 1), '') AS provider
            FROM {live} f LEFT JOIN fx_patients pt USING (pkey)
            WHERE rtype = 'Encounter'),
        keys AS (
            SELECT src, line, c.system AS system, c.code AS code, {fold_sql('c.display')} AS display
            FROM (SELECT src, line, unnest(t.coding) AS c FROM (SELECT src, line, unnest(types) AS t FROM e))
            UNION ALL
            SELECT src, line, NULL, NULL, {fold_sql('t.text')}
            FROM (SELECT src, line, unnest(types) AS t FROM e)),
        hits AS (
            SELECT k.src, k.line, m.visit_type, m.priority
            FROM keys k JOIN fx_enc_codes m ON m.system = k.system AND m.code = k.code
            UNION ALL
            SELECT k.src, k.line, m.visit_type, m.priority
            FROM keys k JOIN fx_enc_codes m ON m.system = '' AND m.code = k.display),
        matched AS (
            SELECT src, line, arg_min(visit_type, priority) AS visit_type FROM hits GROUP BY ALL),
        codes AS (
            SELECT src, line, string_agg(DISTINCT coalesce(system, '') || '|' || code, ', ') AS type_codes
            FROM keys WHERE code IS NOT NULL GROUP BY ALL)
        SELECT e.* EXCLUDE (types), m.visit_type, c.type_codes
        FROM e LEFT JOIN matched m USING (src, line) LEFT JOIN codes c USING (src, line)""", params)


def _items(con, codes: fhir_codes.Codes, live: str, params: dict) -> None:
    """fx_items: what goes onto a visit, one row per value: ketamine
    administrations (kind 'ketamine'), observation values and adverse events
    (kind 'measure'), each with its problem or skip reason."""
    rows = [(s, c, col, n) for n, (s, c, col) in enumerate(codes.observation_codes)]
    _register(con, "fx_obs_codes", pd.DataFrame(rows, columns=["system", "code", "column_name",
                                                               "priority"]).astype(
        {"system": object, "code": object, "column_name": object, "priority": "int64"}))
    # Medication resources named by a reference: their code.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE fx_medication_codes AS
                    SELECT rid, any_value(r.code) AS code FROM {live}
                    WHERE rtype = 'Medication' AND rid IS NOT NULL GROUP BY rid""")
    obs_time = "coalesce(r.effectiveDateTime, r.effectiveInstant, r.effectivePeriod.start, r.issued)"
    # Observations: the resource's own value and each component's.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_obs AS
        WITH o AS (
            SELECT {_common(obs_time)}, r.status AS status, r.code AS code, r.valueQuantity AS q,
                   r.valueInteger AS vi, r.valueBoolean AS vb, r.valueCodeableConcept AS vc,
                   r.component AS component
            FROM {live} f LEFT JOIN fx_patients pt USING (pkey)
            WHERE rtype = 'Observation'),
        parts AS (
            SELECT * EXCLUDE (component), 0 AS part FROM o
            UNION ALL BY NAME
            SELECT * EXCLUDE (component, code, q, vi, vb, vc, c),
                   c.code AS code, c.valueQuantity AS q, c.valueInteger AS vi, c.valueBoolean AS vb,
                   c.valueCodeableConcept AS vc
            FROM (SELECT *, unnest(component) AS c, generate_subscripts(component, 1) AS part
                  FROM o WHERE component IS NOT NULL)),
        coded AS (
            SELECT src, line, part, c.system, c.code
            FROM (SELECT src, line, part, unnest(code.coding) AS c FROM parts)),
        matched AS (
            SELECT k.src, k.line, k.part, arg_min(m.column_name, m.priority) AS column_name
            FROM coded k JOIN fx_obs_codes m ON m.system = k.system AND m.code = k.code
            GROUP BY ALL)
        SELECT p.* EXCLUDE (code, q, vi, vb, vc), m.column_name,
               TRY_CAST(coalesce(p.q.value, p.vi) AS DOUBLE) AS num,
               coalesce(p.q.value, p.vi, p.vb) AS raw_value,
               lower(coalesce(p.q.unit, p.q.code)) AS unit,
               CASE lower(p.vb) WHEN 'true' THEN 1.0 WHEN 'false' THEN 0.0 END AS flag,
               lower(trim(coalesce(p.vc.coding[1].display, p.vc.text, p.vc.coding[1].code))) AS concept
        FROM parts p LEFT JOIN matched m USING (src, line, part)""", params)
    # Ketamine: MedicationAdministration or Procedure whose medication or
    # code is ketamine (RxNorm 6130) or names it.
    is_ketamine = f"""(list_contains(list_transform(c.coding, lambda x: x.system = '{fhir_codes.RXNORM}'
                                                        AND x.code = '{fhir_codes.KETAMINE_RXNORM}'), true)
                       OR contains(lower(coalesce(c.text, '')), 'ketamine')
                       OR list_contains(list_transform(c.coding, lambda x: contains(lower(coalesce(x.display, '')), 'ketamine')), true))"""
    route_cases = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}"
                           for k, v in ROUTE_ALIASES.items())
    route_codes = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}"
                           for k, v in fhir_codes.ROUTE_CODES.items())
    route_text = fold_sql("coalesce(d.route.coding[1].display, d.route.text)")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_ket AS
        WITH a AS (
            SELECT {_common("coalesce(r.effectiveDateTime, r.effectivePeriod.start)",
                            'coalesce(r.effectivePeriod."end", r.effectiveDateTime)')},
                   r.status AS status,
                   coalesce(r.medicationCodeableConcept, mc.code) AS c,
                   json_transform(r.dosage, {sql_literal(_ADMIN_DOSAGE)}) AS d
            FROM {live} f LEFT JOIN fx_patients pt USING (pkey)
            LEFT JOIN fx_medication_codes mc ON mc.rid = fx_ref(r.medicationReference.reference, 'Medication')
            WHERE rtype = 'MedicationAdministration'
            UNION ALL
            SELECT {_common("coalesce(r.performedDateTime, r.performedPeriod.start)",
                            'coalesce(r.performedPeriod."end", r.performedDateTime)')},
                   r.status, r.code, NULL
            FROM {live} f LEFT JOIN fx_patients pt USING (pkey)
            WHERE rtype = 'Procedure')
        SELECT a.* EXCLUDE (c, d), coalesce({is_ketamine}, false) AS is_ketamine,
               d.dose.value AS raw_value,
               TRY_CAST(d.dose.value AS DOUBLE)
                 * CASE lower(coalesce(d.dose.code, d.dose.unit, 'mg'))
                       WHEN 'mg' THEN 1 WHEN 'milligram' THEN 1 WHEN 'g' THEN 1000
                       WHEN 'mcg' THEN 0.001 WHEN 'ug' THEN 0.001 END AS num,
               lower(coalesce(d.dose.code, d.dose.unit)) AS unit,
               coalesce(CASE d.route.coding[1].code {route_codes} END,
                        CASE {route_text} {route_cases} END,
                        CASE regexp_replace({route_text}, '_route$', '') {route_cases} END) AS route
        FROM a""", params)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_ae AS
        SELECT {_common("coalesce(r.date, r.detected, r.recordedDate)")}, r.actuality AS actuality,
               lower(trim(coalesce(r.event.coding[1].display, r.event.text, r.event.coding[1].code))) AS concept
        FROM {live} f LEFT JOIN fx_patients pt USING (pkey)
        WHERE rtype = 'AdverseEvent'""", params)


def _conditions(con, live: str, params: dict) -> None:
    """fx_conditions: each patient's condition: their earliest Condition
    that maps to one of the 13, else their earliest one (``Other``)."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_cond_rows AS
        SELECT {_common("coalesce(r.onsetDateTime, r.onsetPeriod.start, r.recordedDate)", dated=False)},
               r.code AS code,
               list_transform(r.verificationStatus.coding, lambda x: x.code) AS verification
        FROM {live} f LEFT JOIN fx_patients pt USING (pkey)
        WHERE rtype = 'Condition'""", params)
    distinct = con.execute("""
        SELECT DISTINCT to_json(code) FROM fx_cond_rows WHERE code IS NOT NULL""").fetchall()
    rows = []
    for (text,) in distinct:
        code = json.loads(text) or {}
        codings = tuple((c.get("system") or "", c.get("code") or "", c.get("display") or "")
                        for c in (code.get("coding") or []) if isinstance(c, dict))
        condition = fhir_codes.condition_of(codings, code.get("text"))
        label = next((d for _, _, d in codings if d), None) or code.get("text") \
            or next((f"{s}|{c}" for s, c, _ in codings if c), None)
        rows.append((text, condition, label))
    _register(con, "fx_cond_map", pd.DataFrame(rows, columns=["code_json", "condition", "label"],
                                               dtype=object))


def _medications(con, codes: fhir_codes.Codes, live: str, params: dict) -> None:
    """fx_meds: MedicationRequest / MedicationStatement rows with what the
    drug is (Python, per distinct medication) and its dose and frequency."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_meds AS
        WITH m AS (
            SELECT {_common("CASE rtype WHEN 'MedicationRequest' THEN r.authoredOn ELSE coalesce(r.effectiveDateTime, r.effectivePeriod.start, r.dateAsserted) END")},
                   r.status AS status,
                   coalesce(r.medicationCodeableConcept, mc.code) AS c,
                   r.medicationReference.reference IS NOT NULL AND mc.code IS NULL AS unresolved,
                   json_transform(CASE rtype WHEN 'MedicationRequest' THEN r.dosageInstruction
                                             ELSE r.dosage END, {sql_literal(_DOSAGES)})[1] AS d
            FROM {live} f LEFT JOIN fx_patients pt USING (pkey)
            LEFT JOIN fx_medication_codes mc ON mc.rid = fx_ref(r.medicationReference.reference, 'Medication')
            WHERE rtype IN ('MedicationRequest', 'MedicationStatement'))
        SELECT m.* EXCLUDE (c, d), to_json(c) AS code_json,
               coalesce(list_filter(c.coding, lambda x: x.system = '{fhir_codes.RXNORM}')[1].display,
                        c.coding[1].display, c.text) AS name,
               TRY_CAST(d.doseAndRate[1].doseQuantity.value AS DOUBLE) AS dose_value,
               lower(coalesce(d.doseAndRate[1].doseQuantity.code, d.doseAndRate[1].doseQuantity.unit)) AS dose_unit,
               TRY_CAST(d.timing.repeat.frequency AS DOUBLE) AS frequency,
               TRY_CAST(d.timing.repeat.period AS DOUBLE) AS period,
               d.timing.repeat.periodUnit AS period_unit,
               upper(d.timing.code.coding[1].code) AS timing_code
        FROM m""", params)
    distinct = con.execute("""SELECT DISTINCT code_json, name FROM fx_meds
                              WHERE problem IS NULL""").fetchall()
    rows = []
    for code_json, name in distinct:
        code = json.loads(code_json) if code_json else {}
        codings = tuple((c.get("system") or "", c.get("code") or "")
                        for c in ((code or {}).get("coding") or []) if isinstance(c, dict))
        med = fhir_codes.classify_medication(name or (code or {}).get("text"), codings, codes)
        rows.append((code_json, name, med.drug, med.drug_class, med.factor,
                     reference.reference_unit(med.drug), med.strength, med.strength_unit))
    frame = pd.DataFrame(rows, columns=["code_json", "name", "drug", "drug_class", "factor",
                                        "drug_unit", "strength", "strength_unit"])
    _register(con, "fx_med_map", frame.astype({"code_json": object, "name": object,
                                               "drug": object, "drug_class": object,
                                               "factor": float, "drug_unit": object,
                                               "strength": float, "strength_unit": object}))


# --------------------------------------------------------------------------
# visits


def _visits(con) -> None:
    """Resolve visit days and types, and put every value on its visit."""
    # Encounters: usable (no problem, status not skipped), with a type, or a
    # treatment session when ketamine was given that day (to it, or to no
    # encounter of that day).
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_ket_ok AS
        SELECT k.*, e.rid IS NOT NULL AS has_encounter
        FROM fx_ket k
        LEFT JOIN (SELECT DISTINCT rid, patient_id, day FROM fx_enc
                   WHERE problem IS NULL AND coalesce(status, '') NOT IN ({_types(ENCOUNTER_SKIPPED)})) e
          ON e.rid = k.enc AND e.patient_id = k.patient_id AND e.day = k.day
        WHERE k.problem IS NULL AND k.is_ketamine AND coalesce(k.status, 'completed') IN ({_types(ADMINISTRATION_OK)})""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_enc_ok AS
        SELECT e.*, coalesce(e.visit_type, CASE
                   WHEN e.rid IN (SELECT enc FROM fx_ket_ok WHERE has_encounter)
                     OR (e.patient_id, e.day) IN (SELECT patient_id, day FROM fx_ket_ok WHERE NOT has_encounter)
                   THEN 'session' END) AS vtype
        FROM fx_enc e
        WHERE e.problem IS NULL AND coalesce(e.status, '') NOT IN ({_types(ENCOUNTER_SKIPPED)})""")
    # Values: usable observation values of a mapped code, adverse events.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_values AS
        SELECT src, line, rtype, rid, patient_id, enc, day, t_at, column_name, num, raw_value, unit,
               flag, concept
        FROM fx_obs
        WHERE problem IS NULL AND status IN ({_types(OBSERVATION_OK)}) AND column_name IS NOT NULL
          AND (num IS NOT NULL OR flag IS NOT NULL OR concept IS NOT NULL)
        UNION ALL
        SELECT src, line, rtype, rid, patient_id, enc, day, t_at, 'adverse_event', NULL, NULL, NULL,
               NULL, concept
        FROM fx_ae
        WHERE problem IS NULL AND coalesce(actuality, 'actual') <> 'potential'
          AND concept IS NOT NULL""")
    # The encounter each item belongs to (same patient and day), if any.
    for table in ("fx_ket_ok", "fx_values"):
        con.execute(f"""
            ALTER TABLE {table} ADD COLUMN enc_vtype VARCHAR;
            ALTER TABLE {table} ADD COLUMN enc_bad BOOLEAN DEFAULT false;
            UPDATE {table} t SET enc_vtype = e.vtype, enc_bad = e.vtype IS NULL
            FROM (SELECT rid, patient_id, day, any_value(vtype) AS vtype FROM fx_enc_ok
                  GROUP BY ALL) e
            WHERE t.enc = e.rid AND t.patient_id = e.patient_id AND t.day = e.day""")
    # Visit days: encounters; ketamine with no session that day; values
    # with no visit that day.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE fx_visit_days AS
        SELECT DISTINCT patient_id, day, vtype FROM fx_enc_ok WHERE vtype IS NOT NULL""")
    con.execute("""
        INSERT INTO fx_visit_days
        SELECT DISTINCT k.patient_id, k.day, 'session' FROM fx_ket_ok k
        WHERE k.enc_vtype IS NULL AND NOT k.enc_bad AND NOT EXISTS (
            SELECT 1 FROM fx_visit_days v WHERE v.patient_id = k.patient_id AND v.day = k.day
              AND v.vtype IN ('session', 'infusion', 'booster'))""")
    con.execute("""
        INSERT INTO fx_visit_days
        SELECT DISTINCT m.patient_id, m.day, 'follow_up' FROM fx_values m
        WHERE m.enc_vtype IS NULL AND NOT m.enc_bad AND NOT EXISTS (
            SELECT 1 FROM fx_visit_days v WHERE v.patient_id = m.patient_id AND v.day = m.day)""")
    # Sessions of no mapped type: booster when more than 28 days after the
    # patient's previous session (in this export or already stored), else
    # infusion.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_sessions AS
        WITH days AS (
            SELECT patient_id, day, bool_or(vtype = 'session') AS untyped FROM fx_visit_days
            WHERE vtype IN ('session', 'infusion', 'booster') GROUP BY ALL
            UNION ALL
            SELECT DISTINCT patient_id, visit_date, false FROM visits
            WHERE visit_type IN ('infusion', 'booster')
              AND patient_id IN (SELECT patient_id FROM fx_visit_days)
              AND NOT (natural_key LIKE 'fhir:%' AND (patient_id, visit_date) IN
                       (SELECT patient_id, day FROM fx_visit_days))),
        ordered AS (
            SELECT patient_id, day, bool_or(untyped) AS untyped FROM days GROUP BY ALL),
        lagged AS (
            SELECT *, lag(day) OVER (PARTITION BY patient_id ORDER BY day) AS previous FROM ordered)
        SELECT patient_id, day,
               CASE WHEN day - previous > {SESSION_GAP_DAYS} THEN 'booster' ELSE 'infusion' END AS vtype
        FROM lagged WHERE untyped""")
    con.execute("""
        UPDATE fx_visit_days v SET vtype = s.vtype FROM fx_sessions s
        WHERE v.vtype = 'session' AND v.patient_id = s.patient_id AND v.day = s.day""")
    for table in ("fx_enc_ok", "fx_ket_ok", "fx_values"):
        column = "vtype" if table == "fx_enc_ok" else "enc_vtype"
        con.execute(f"""UPDATE {table} t SET {column} = s.vtype FROM fx_sessions s
                        WHERE t.{column} = 'session' AND t.patient_id = s.patient_id AND t.day = s.day""")
    con.execute("CREATE OR REPLACE TEMP TABLE fx_visit_days AS SELECT DISTINCT * FROM fx_visit_days")
    # The day's visit an item without its own encounter goes to: a treatment
    # session first (ketamine: only a session), then follow-up, then intake.
    priority = day_priority_sql("vtype")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_day_primary AS
        SELECT patient_id, day, arg_min(vtype, {priority}) AS primary_type,
               arg_min(vtype, {priority}) FILTER (WHERE vtype IN ('infusion', 'booster')) AS session_type
        FROM fx_visit_days GROUP BY ALL""")
    for table, pick in (("fx_ket_ok", "session_type"), ("fx_values", "primary_type")):
        con.execute(f"""UPDATE {table} t SET enc_vtype = p.{pick} FROM fx_day_primary p
                        WHERE t.enc_vtype IS NULL AND NOT t.enc_bad
                          AND t.patient_id = p.patient_id AND t.day = p.day""")


def day_priority_sql(column: str) -> str:
    """The order in which a day's visits take a value that names no visit:
    a treatment session, then a follow-up, then an intake (one rule for FHIR
    and measurement exports)."""
    return (f"CASE {column} WHEN 'booster' THEN 1 WHEN 'infusion' THEN 2 "
            "WHEN 'follow_up' THEN 3 ELSE 4 END")


def _valid_value_sql() -> str:
    """Whether ``num`` is a valid value of ``column_name`` (SPEC §2 ranges)."""
    cases = []
    for column, (low, high, whole) in NUMERIC_RULES.items():
        checks = ["isfinite(num)"]
        if low is not None:
            checks.append(f"num >= {low}")
        if high is not None:
            checks.append(f"num <= {high}")
        if whole:
            checks.append("num = floor(num)")
        cases.append(f"WHEN {sql_literal(column)} THEN {' AND '.join(checks)}")
    return f"coalesce(CASE column_name {' '.join(cases)} ELSE true END, false)"


def _issue_sql() -> str:
    cases = []
    for column, (low, high, whole) in NUMERIC_RULES.items():
        rng = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        cases.append(f"""WHEN {sql_literal(column)} THEN CASE
                            WHEN num IS NULL OR NOT isfinite(num) THEN 'not a number'
                            WHEN num < {low if low is not None else '-1e308'} OR num > {high if high is not None else '1e308'}
                              THEN 'out of range (must be {rng})'
                            ELSE 'not a whole number' END""")
    return f"CASE column_name {' '.join(cases)} END"


def _write(con, result: FileResult, ingest_id: int, params: dict, fail_after) -> None:
    """Outcomes, quarantine, value issues, visits and medication rows."""
    # Weight in pounds or grams is converted; other units of a mapped value
    # are a value issue.
    con.execute("""
        UPDATE fx_values SET num = num * CASE WHEN unit IN ('[lb_av]', 'lb', 'lbs') THEN 0.45359237
                                              WHEN unit = 'g' THEN 0.001 ELSE 1 END
        WHERE column_name = 'weight_kg'""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_issues AS
        SELECT src, line, column_name, raw_value,
               CASE WHEN column_name IN ({_types(NUMERIC_RULES)}) THEN {_issue_sql()} END AS reason
        FROM fx_values
        WHERE enc_vtype IS NOT NULL AND column_name IN ({_types(NUMERIC_RULES)})
          AND NOT {_valid_value_sql()}""")
    con.execute(f"""
        INSERT INTO fx_issues
        SELECT src, line, 'ketamine_mg', raw_value,
               CASE WHEN num IS NULL AND unit IS NOT NULL AND TRY_CAST(raw_value AS DOUBLE) IS NOT NULL
                    THEN 'dose unit is not mg' ELSE 'not a non-negative number' END
        FROM fx_ket_ok WHERE enc_vtype IS NOT NULL AND raw_value IS NOT NULL
          AND NOT coalesce(num >= 0 AND isfinite(num), false)""")
    # Outcome of every resource not yet counted: a resource of no use here
    # (its status, code or kind) is skipped, whatever else is wrong with it;
    # one that would be used but cannot be is quarantined.
    out = lambda sql: con.execute(f"INSERT INTO fx_out {sql}")  # noqa: E731
    out(f"""SELECT src, line, rtype, rid,
                   CASE WHEN coalesce(status, '') IN ({_types(ENCOUNTER_SKIPPED)}) THEN 'skipped' ELSE 'quarantined' END,
                   CASE WHEN coalesce(status, '') IN ({_types(ENCOUNTER_SKIPPED)}) THEN 'Encounter status ' || status
                        ELSE problem END
            FROM fx_enc WHERE problem IS NOT NULL OR coalesce(status, '') IN ({_types(ENCOUNTER_SKIPPED)})""")
    out("""SELECT src, line, rtype, rid, 'quarantined',
                  'Encounter type not mapped to a visit type (' || coalesce(type_codes, 'no code') || ')'
           FROM fx_enc_ok WHERE vtype IS NULL""")
    out(f"""
        WITH per AS (
            SELECT o.src, o.line, any_value(o.rtype) AS rtype, any_value(o.rid) AS rid,
                   any_value(o.status) AS status, any_value(o.problem) AS problem,
                   bool_or(o.column_name IS NOT NULL) AS mapped,
                   bool_or(v.src IS NOT NULL AND NOT coalesce(v.enc_bad, false)) AS used,
                   bool_or(coalesce(v.enc_bad, false)) AS enc_bad
            FROM fx_obs o LEFT JOIN fx_values v ON v.src = o.src AND v.line = o.line
            GROUP BY o.src, o.line)
        SELECT src, line, rtype, rid,
               CASE WHEN coalesce(status, '') NOT IN ({_types(OBSERVATION_OK)}) OR NOT mapped THEN 'skipped'
                    WHEN problem IS NOT NULL OR enc_bad THEN 'quarantined'
                    ELSE 'skipped' END,
               CASE WHEN coalesce(status, '') NOT IN ({_types(OBSERVATION_OK)})
                      THEN 'Observation status ' || coalesce(status, 'missing')
                    WHEN NOT mapped THEN 'Observation code not mapped'
                    WHEN problem IS NOT NULL THEN problem
                    WHEN enc_bad THEN 'its Encounter''s type is not mapped to a visit type'
                    ELSE 'Observation without a value' END
        FROM per WHERE NOT used""")
    ket_ok = f"is_ketamine AND coalesce(status, 'completed') IN ({_types(ADMINISTRATION_OK)})"
    out(f"""SELECT src, line, rtype, rid,
                   CASE WHEN NOT ({ket_ok}) THEN 'skipped' ELSE 'quarantined' END,
                   CASE WHEN NOT is_ketamine THEN rtype || ' not of ketamine'
                        WHEN NOT ({ket_ok}) THEN rtype || ' status ' || status
                        ELSE problem END
            FROM fx_ket WHERE problem IS NOT NULL OR NOT ({ket_ok})""")
    out("""SELECT src, line, rtype, rid, 'quarantined', 'its Encounter''s type is not mapped to a visit type'
           FROM fx_ket_ok WHERE enc_bad""")
    out("""SELECT src, line, rtype, rid,
                  CASE WHEN actuality = 'potential' OR concept IS NULL THEN 'skipped' ELSE 'quarantined' END,
                  CASE WHEN actuality = 'potential' THEN 'AdverseEvent potential'
                       WHEN concept IS NULL THEN 'AdverseEvent without an event'
                       ELSE problem END
           FROM fx_ae WHERE problem IS NOT NULL OR actuality = 'potential' OR concept IS NULL
           UNION ALL
           SELECT src, line, rtype, rid, 'quarantined', 'its Encounter''s type is not mapped to a visit type'
           FROM fx_values WHERE rtype = 'AdverseEvent' AND enc_bad""")
    skipped_condition = f"list_has_any(coalesce(verification, []), [{_types(CONDITION_SKIPPED)}])"
    out(f"""SELECT src, line, rtype, rid,
                   CASE WHEN {skipped_condition} THEN 'skipped' ELSE 'quarantined' END,
                   CASE WHEN {skipped_condition}
                        THEN 'Condition ' || list_filter(verification, lambda x: x IN ({_types(CONDITION_SKIPPED)}))[1]
                        ELSE problem END
            FROM fx_cond_rows WHERE problem IS NOT NULL OR {skipped_condition}""")
    med_skip = f"""(m.rtype = 'MedicationRequest' AND coalesce(m.status, '') IN ({_types(REQUEST_SKIPPED)}))
                   OR (m.rtype = 'MedicationStatement' AND coalesce(m.status, '') IN ({_types(STATEMENT_SKIPPED)}))"""
    out(f"""SELECT m.src, m.line, m.rtype, m.rid,
                   CASE WHEN {med_skip} OR x.drug_class = 'other' THEN 'skipped' ELSE 'quarantined' END,
                   CASE WHEN {med_skip} THEN m.rtype || ' status ' || m.status
                        WHEN x.drug_class = 'other' THEN 'medication neither an opioid nor a benzodiazepine'
                        ELSE m.problem END
            FROM fx_meds m LEFT JOIN fx_med_map x
              ON x.code_json IS NOT DISTINCT FROM m.code_json AND x.name IS NOT DISTINCT FROM m.name
            WHERE m.problem IS NOT NULL OR {med_skip} OR x.drug_class = 'other'""")
    # Quarantine: resource type, id and reason; never a value.
    con.execute("""
        INSERT INTO quarantine
        SELECT $ingest_id, src, line,
               CAST(json_object('resourceType', rtype, 'id', rid) AS VARCHAR),
               coalesce(rtype || ' ' || coalesce(rid, '(no id)') || ': ', '') || reason
        FROM fx_out WHERE outcome = 'quarantined' ORDER BY src, line""", {"ingest_id": ingest_id})
    con.execute("""
        INSERT INTO value_issues
        SELECT $ingest_id, src, line, column_name, raw_value, reason FROM fx_issues
        ORDER BY src, line, column_name""", {"ingest_id": ingest_id})
    checkpoint("quarantine", fail_after)

    # Visits: one per patient, day and visit type.
    pain_post = ("column_name = 'pain_score' AND enc_vtype IN ('infusion', 'booster') "
                 "AND t_at > ket.last_end")
    last = lambda column: (  # noqa: E731
        f"arg_max(num, (t_at, line)) FILTER (WHERE column_name = '{column}' AND ok)")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_visits AS
        WITH ket AS (
            SELECT patient_id, day, enc_vtype AS vtype,
                   sum(CASE WHEN num >= 0 AND isfinite(num) THEN num END) AS ketamine_mg,
                   arg_min(route, (t_at, line)) FILTER (WHERE route IS NOT NULL) AS route,
                   max(coalesce(t_end, t_at)) AS last_end, min(line) AS first_line
            FROM fx_ket_ok WHERE enc_vtype IS NOT NULL AND NOT enc_bad GROUP BY ALL),
        vals AS (
            SELECT v.*, {_valid_value_sql()} AS ok,
                   CASE WHEN {pain_post} THEN 'pain_post' ELSE column_name END AS col
            FROM fx_values v LEFT JOIN ket ON ket.patient_id = v.patient_id AND ket.day = v.day
                 AND ket.vtype = v.enc_vtype
            WHERE v.enc_vtype IS NOT NULL AND NOT v.enc_bad),
        agg AS (
            SELECT patient_id, day, enc_vtype AS vtype,
                   arg_max(num, (t_at, line)) FILTER (WHERE col = 'pain_score' AND ok) AS pain_score,
                   arg_min(num, (t_at, line)) FILTER (WHERE col = 'pain_post' AND ok) AS pain_post,
                   {last('weight_kg')} AS weight_kg,
                   {last('opioid_mme_per_day')} AS opioid_mme_per_day,
                   arg_max(coalesce(flag, CASE WHEN num IS NOT NULL THEN (num <> 0)::INT END,
                                    CASE WHEN concept IN ('yes', 'true', 'y') THEN 1
                                         WHEN concept IN ('no', 'false', 'n') THEN 0 END), (t_at, line))
                     FILTER (WHERE column_name = 'benzodiazepine') AS benzodiazepine,
                   {last('phq9')} AS phq9, {last('pcl5')} AS pcl5, {last('pgic')} AS pgic,
                   max(num) FILTER (WHERE column_name = 'sbp_max' AND ok) AS sbp_max,
                   min(num) FILTER (WHERE column_name = 'spo2_min' AND ok) AS spo2_min,
                   string_agg(DISTINCT concept, '; ' ORDER BY concept)
                     FILTER (WHERE column_name = 'adverse_event') AS adverse_event,
                   min(line) AS first_line
            FROM vals GROUP BY ALL),
        enc AS (
            SELECT patient_id, day, vtype, arg_min(site, (t_at, line)) FILTER (WHERE site IS NOT NULL) AS site,
                   arg_min(provider, (t_at, line)) FILTER (WHERE provider IS NOT NULL) AS provider,
                   min(line) AS first_line
            FROM fx_enc_ok WHERE vtype IS NOT NULL GROUP BY ALL)
        SELECT d.patient_id, d.day AS visit_date, d.vtype AS visit_type, e.site, e.provider,
               k.route, k.ketamine_mg, a.* EXCLUDE (patient_id, day, vtype, first_line),
               least(e.first_line, k.first_line, a.first_line) AS source_line
        FROM fx_visit_days d
        LEFT JOIN enc e ON e.patient_id = d.patient_id AND e.day = d.day AND e.vtype = d.vtype
        LEFT JOIN ket k ON k.patient_id = d.patient_id AND k.day = d.day AND k.vtype = d.vtype
        LEFT JOIN agg a ON a.patient_id = d.patient_id AND a.day = d.day AND a.vtype = d.vtype""")
    # A patient's condition goes on their first visit of this export.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_conditions AS
        SELECT c.patient_id,
               coalesce(arg_min(m.condition, (c.day, c.line)) FILTER (WHERE m.condition <> 'Other'),
                        arg_min(m.condition, (c.day, c.line))) AS condition,
               coalesce(arg_min(m.label, (c.day, c.line)) FILTER (WHERE m.condition <> 'Other'),
                        arg_min(m.label, (c.day, c.line))) AS condition_raw
        FROM fx_cond_rows c JOIN fx_cond_map m ON m.code_json = to_json(c.code)
        WHERE c.problem IS NULL AND m.condition IS NOT NULL
          AND NOT list_has_any(coalesce(c.verification, []), [{_types(CONDITION_SKIPPED)}])
        GROUP BY c.patient_id""")

    # Replacement: a later export replaces the FHIR visits of the days it covers.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE fx_days_touched AS
        SELECT DISTINCT patient_id, visit_date FROM fx_visits
        UNION SELECT DISTINCT patient_id, day FROM fx_enc
              WHERE problem IS NULL AND status IN ('cancelled', 'entered-in-error')""")
    result.rows_replaced = con.execute("""
        DELETE FROM visits WHERE natural_key LIKE 'fhir:%'
          AND (patient_id, visit_date) IN (SELECT patient_id, visit_date FROM fx_days_touched)
    """).fetchall()[0][0]
    checkpoint("delete", fail_after)
    numeric = ", ".join(f"v.{c}" for c in NUMERIC_RULES if c != "ketamine_mg")
    con.execute(f"""
        INSERT INTO visits BY NAME
        SELECT 'fhir:' || v.patient_id || '|' || v.visit_date || '|' || v.visit_type AS natural_key,
               v.patient_id, v.visit_date, v.visit_type, NULL AS visit_id,
               CASE WHEN v.visit_date = first.visit_date AND v.visit_type = first.visit_type
                    THEN c.condition END AS condition,
               CASE WHEN v.visit_date = first.visit_date AND v.visit_type = first.visit_type
                    THEN c.condition_raw END AS condition_raw,
               v.site, v.provider, v.route, v.ketamine_mg, {numeric},
               v.benzodiazepine::BOOLEAN AS benzodiazepine, v.adverse_event,
               $ingest_id AS ingest_id, v.source_line
        FROM fx_visits v
        LEFT JOIN fx_conditions c USING (patient_id)
        LEFT JOIN (SELECT patient_id, arg_min({{'visit_date': visit_date, 'visit_type': visit_type}},
                                              (visit_date, CASE visit_type WHEN 'intake' THEN 1 WHEN 'follow_up' THEN 2
                                                                           WHEN 'infusion' THEN 3 ELSE 4 END)) AS first
                   FROM fx_visits GROUP BY patient_id) f USING (patient_id)""",
                {"ingest_id": ingest_id})
    medication_rows = _medication_rows(con, result, ingest_id)
    checkpoint("visits", fail_after)

    counts = dict(con.execute("SELECT outcome, count(*) FROM fx_out GROUP BY 1").fetchall())
    result.rows_read = _count(con, "fx_raw")
    result.rows_quarantined = counts.get("quarantined", 0)
    result.duplicates_collapsed = counts.get("collapsed", 0)
    skipped = counts.get("skipped", 0)
    result.rows_accepted = result.rows_read - result.rows_quarantined \
        - result.duplicates_collapsed - skipped
    result.values_nulled = con.execute(
        "SELECT count(*) FROM value_issues WHERE ingest_id = ?", [ingest_id]).fetchall()[0][0]
    reasons = con.execute("""SELECT reason, count(*) FROM fx_out WHERE outcome = 'skipped'
                             GROUP BY 1 ORDER BY 2 DESC, 1""").fetchall()
    result.details = {"resources_skipped": skipped, "skipped": dict(reasons),
                      "visits": _count(con, "fx_visits"), "medication_rows": medication_rows}


def summary_message(result: FileResult) -> str:
    """One line for the ingest log: what was made and what was skipped."""
    details = result.details or {}
    skipped = details.get("skipped") or {}
    text = (f"{details.get('visits', 0)} visits, {details.get('medication_rows', 0)} medication rows; "
            f"{details.get('resources_skipped', 0)} resources skipped")
    if skipped:
        text += " (" + "; ".join(f"{reason}: {n}" for reason, n in list(skipped.items())[:8])
        text += "; ..." if len(skipped) > 8 else ""
        text += ")"
    return text


def _medication_rows(con, result: FileResult, ingest_id: int) -> int:
    """Opioid and benzodiazepine rows (and 'none' lists) for the medication
    table, replacing earlier rows of the same patient and date; a drug not
    identified, or an opioid whose MME cannot be worked out, leaves its
    date's MME unknown (reported), never 0."""
    per_day = " ".join(f"WHEN {sql_literal(k)} THEN {v}" for k, v in TIMING_CODES.items())
    unit_days = " ".join(f"WHEN {sql_literal(k)} THEN {v}" for k, v in _PERIOD_DAYS.items())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_med_rows AS
        WITH m AS (
            SELECT m.*, x.drug, x.drug_class, x.factor, x.drug_unit, x.strength, x.strength_unit
            FROM fx_meds m JOIN fx_med_map x
              ON x.code_json IS NOT DISTINCT FROM m.code_json AND x.name IS NOT DISTINCT FROM m.name
            WHERE m.problem IS NULL AND x.drug_class <> 'other'
              AND NOT (m.rtype = 'MedicationRequest' AND coalesce(m.status, '') IN ({_types(REQUEST_SKIPPED)}))
              AND NOT (m.rtype = 'MedicationStatement' AND coalesce(m.status, '') IN ({_types(STATEMENT_SKIPPED)}))),
        dosed AS (
            SELECT *,
                   -- A FHIR dose without a unit, of a product with a named
                   -- strength, is a count of tablets or patches.
                   {reference.dose_sql(
                       'dose_value',
                       f"coalesce({reference.unit_fold_sql('dose_unit')}, "
                       "CASE WHEN strength IS NOT NULL THEN '1' END)",
                       'drug_unit', 'strength', 'strength_unit')} AS dose,
                   coalesce(CASE timing_code {per_day} END,
                            coalesce(frequency, 1) / nullif(period * CASE period_unit {unit_days} END, 0))
                     AS doses_per_day
            FROM m)
        SELECT patient_id, day AS record_date, coalesce(name, drug_class) AS drug_raw, drug,
               drug_class, factor, dose,
               CASE WHEN dose IS NOT NULL THEN coalesce(drug_unit, 'mg') END AS unit,
               doses_per_day,
               CASE WHEN drug_class <> 'opioid' THEN NULL
                    WHEN drug_unit = 'mcg/hr' THEN dose * factor
                    ELSE dose * doses_per_day * factor END AS mme,
               src, line
        FROM dosed""")
    con.execute("""
        INSERT INTO value_issues
        SELECT $ingest_id, src, line, 'drug', NULL,
               CASE WHEN drug_class = 'unknown'
                    THEN 'medication not identified as an opioid, a benzodiazepine or neither: MME for this date unknown'
                    WHEN factor IS NULL THEN 'opioid without an MME factor: MME for this date unknown'
                    ELSE 'opioid without a dose and frequency: MME for this date unknown' END
        FROM fx_med_rows
        WHERE drug_class = 'unknown' OR (drug_class = 'opioid' AND mme IS NULL)
        ORDER BY src, line""", {"ingest_id": ingest_id})
    result.rows_replaced += con.execute("""
        DELETE FROM medications m WHERE EXISTS (
            SELECT 1 FROM fx_med_rows r WHERE r.patient_id = m.patient_id AND r.record_date = m.record_date)
    """).fetchall()[0][0]
    con.execute("""
        INSERT INTO medications BY NAME
        SELECT patient_id, record_date, drug_raw, drug, drug_class, dose, unit, doses_per_day, mme,
               $ingest_id AS ingest_id, line AS source_line
        FROM fx_med_rows""", {"ingest_id": ingest_id})
    return _count(con, "fx_med_rows")


def _count(con, table: str, where: str = "true") -> int:
    return con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchall()[0][0]


def _drop_temp(con) -> None:
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary AND table_name LIKE 'fx\\_%' ESCAPE '\\'"
    ).fetchall()]
    for table in tables:
        con.execute(f"DROP TABLE IF EXISTS temp.{table}")
    remove_pseudonym_function(con)
    for frame in ("fx_lines_frame",):
        try:
            con.unregister(frame)
        except Exception:
            pass
