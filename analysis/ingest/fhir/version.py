"""Checking an export is FHIR R4: resource types of other versions refuse it,
and a sample of each type is validated against the R4 models.
"""

from __future__ import annotations

import json

from analysis.ingest import limits
from analysis.ingest.fhir.files import ExportRefused
from analysis.ingest.ingest_log import sql_literal
from analysis.ingest.fhir.resources import NOT_R4_TYPES, USED_TYPES


def check_version(con, export) -> None:
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
