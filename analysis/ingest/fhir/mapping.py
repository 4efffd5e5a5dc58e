"""Mapping staged resources to the clinic's rows: patients (pseudonymised),
encounters, observations and administrations, conditions and medications,
with the clinic's codes (:mod:`analysis.ingest.fhir.codes`).
"""

from __future__ import annotations

import json

import pandas as pd

from analysis.ingest.fhir import codes as fhir_codes
from analysis.storage import reference
from analysis.ingest.columns import ROUTE_ALIASES
from analysis.ingest.ingest_log import (PSEUDONYM_FUNCTION, sql_literal,
    register_pseudonym_function, remove_pseudonym_function)
from analysis.ingest.staging import fold_sql
from analysis.ingest.fhir.resources import PATIENT_TYPES, ADMIN_DOSAGE_STRUCTURE, DOSAGES_STRUCTURE, TYPES_STRUCTURE, types_sql


def mark_duplicates(con) -> None:
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


def map_patients(con, live: str) -> None:
    """Pseudonyms of every patient id the export names, and which patients
    are known (in this export or already in the database)."""
    register_pseudonym_function(con)   # the session export's set-wise pseudonyms
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_patients AS
        WITH ids AS (
            SELECT DISTINCT pkey FROM (
                SELECT rid AS pkey FROM {live} WHERE rtype = 'Patient'
                UNION ALL SELECT pkey FROM {live} WHERE rtype IN ({types_sql(PATIENT_TYPES)}))
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


def map_encounters(con, codes: fhir_codes.Codes, live: str, params: dict) -> None:
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
                   json_transform(r.type, {sql_literal(TYPES_STRUCTURE)}) AS types,
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


def map_items(con, codes: fhir_codes.Codes, live: str, params: dict) -> None:
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
                   json_transform(r.dosage, {sql_literal(ADMIN_DOSAGE_STRUCTURE)}) AS d
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


def map_conditions(con, live: str, params: dict) -> None:
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


def map_medications(con, codes: fhir_codes.Codes, live: str, params: dict) -> None:
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
                                             ELSE r.dosage END, {sql_literal(DOSAGES_STRUCTURE)})[1] AS d
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
