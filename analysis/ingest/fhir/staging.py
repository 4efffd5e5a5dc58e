"""Staging a FHIR export: every resource read once by DuckDB, as the typed
fields of :data:`analysis.ingest.fhir.resources.FIELDS`.
"""

from __future__ import annotations

import pandas as pd

from analysis.ingest import limits
from analysis.ingest.fhir import files as fhir_files
from analysis.ingest.fhir.files import ExportRefused
from analysis.ingest.ingest_log import sql_literal
from analysis.ingest.fhir.resources import BUNDLE_STRUCTURE, RESOURCE_STRUCTURE


def stage_resources(con, export) -> None:
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
                            SELECT NULL::VARCHAR AS full_url, json_transform(json, {sql_literal(RESOURCE_STRUCTURE)}) AS r
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
                                SELECT json, json_transform(json, {sql_literal(BUNDLE_STRUCTURE)}) AS b
                                FROM read_json_objects({path}, format = 'auto', maximum_object_size = {limits.MAX_BUNDLE_BYTES})),
                            entries AS (
                                SELECT unnest(b.entry) AS e FROM top WHERE b.resourceType = 'Bundle'
                                UNION ALL
                                SELECT {{'fullUrl': NULL, 'resource': json}} FROM top
                                WHERE b.resourceType IS DISTINCT FROM 'Bundle')
                            SELECT e.fullUrl AS full_url,
                                   json_transform(e.resource, {sql_literal(RESOURCE_STRUCTURE)}) AS r
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
    return con.execute(f"SELECT typeof(json_transform('{{}}', {sql_literal(RESOURCE_STRUCTURE)}))"
                       ).fetchall()[0][0]
