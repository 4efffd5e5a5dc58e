"""Loading a mapped FHIR export: its visits replace the FHIR visits of every
patient-day it covers, rows with a problem are quarantined with their reason,
and its medications are written like a medication export's.
"""

from __future__ import annotations

from analysis.storage import reference, saved_models
from analysis.ingest.columns import NUMERIC_RULES
from analysis.ingest.ingest_log import (FileResult, count_rows, sql_literal,
    remove_pseudonym_function, checkpoint)
from analysis.ingest.fhir.resources import (ADMINISTRATION_OK, CONDITION_SKIPPED,
    ENCOUNTER_SKIPPED, OBSERVATION_OK, REQUEST_SKIPPED, STATEMENT_SKIPPED, TIMING_CODES,
    PERIOD_DAYS, types_sql)
from analysis.ingest.fhir.visits import issue_sql, valid_value_sql


def write_export_rows(con, result: FileResult, ingest_id: int, params: dict, fail_after) -> None:
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
               CASE WHEN column_name IN ({types_sql(NUMERIC_RULES)}) THEN {issue_sql()} END AS reason
        FROM fx_values
        WHERE enc_vtype IS NOT NULL AND column_name IN ({types_sql(NUMERIC_RULES)})
          AND NOT {valid_value_sql()}""")
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
                   CASE WHEN coalesce(status, '') IN ({types_sql(ENCOUNTER_SKIPPED)}) THEN 'skipped' ELSE 'quarantined' END,
                   CASE WHEN coalesce(status, '') IN ({types_sql(ENCOUNTER_SKIPPED)}) THEN 'Encounter status ' || status
                        ELSE problem END
            FROM fx_enc WHERE problem IS NOT NULL OR coalesce(status, '') IN ({types_sql(ENCOUNTER_SKIPPED)})""")
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
               CASE WHEN coalesce(status, '') NOT IN ({types_sql(OBSERVATION_OK)}) OR NOT mapped THEN 'skipped'
                    WHEN problem IS NOT NULL OR enc_bad THEN 'quarantined'
                    ELSE 'skipped' END,
               CASE WHEN coalesce(status, '') NOT IN ({types_sql(OBSERVATION_OK)})
                      THEN 'Observation status ' || coalesce(status, 'missing')
                    WHEN NOT mapped THEN 'Observation code not mapped'
                    WHEN problem IS NOT NULL THEN problem
                    WHEN enc_bad THEN 'its Encounter''s type is not mapped to a visit type'
                    ELSE 'Observation without a value' END
        FROM per WHERE NOT used""")
    ket_ok = f"is_ketamine AND coalesce(status, 'completed') IN ({types_sql(ADMINISTRATION_OK)})"
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
    skipped_condition = f"list_has_any(coalesce(verification, []), [{types_sql(CONDITION_SKIPPED)}])"
    out(f"""SELECT src, line, rtype, rid,
                   CASE WHEN {skipped_condition} THEN 'skipped' ELSE 'quarantined' END,
                   CASE WHEN {skipped_condition}
                        THEN 'Condition ' || list_filter(verification, lambda x: x IN ({types_sql(CONDITION_SKIPPED)}))[1]
                        ELSE problem END
            FROM fx_cond_rows WHERE problem IS NOT NULL OR {skipped_condition}""")
    med_skip = f"""(m.rtype = 'MedicationRequest' AND coalesce(m.status, '') IN ({types_sql(REQUEST_SKIPPED)}))
                   OR (m.rtype = 'MedicationStatement' AND coalesce(m.status, '') IN ({types_sql(STATEMENT_SKIPPED)}))"""
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
            SELECT v.*, {valid_value_sql()} AS ok,
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
          AND NOT list_has_any(coalesce(c.verification, []), [{types_sql(CONDITION_SKIPPED)}])
        GROUP BY c.patient_id""")

    # Replacement: a later export replaces the FHIR visits of the days it covers.
    con.execute("""
        CREATE OR REPLACE TEMP TABLE fx_days_touched AS
        SELECT DISTINCT patient_id, visit_date FROM fx_visits
        UNION SELECT DISTINCT patient_id, day FROM fx_enc
              WHERE problem IS NULL AND status IN ('cancelled', 'entered-in-error')""")
    # (a cancelled encounter's visit goes without a new one: its patient is named)
    saved_models.note_patients(con, ingest_id, "SELECT patient_id FROM fx_days_touched")
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
    result.rows_read = count_rows(con, "fx_raw")
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
                      "visits": count_rows(con, "fx_visits"), "medication_rows": medication_rows}


def _medication_rows(con, result: FileResult, ingest_id: int) -> int:
    """Opioid and benzodiazepine rows (and 'none' lists) for the medication
    table, replacing earlier rows of the same patient and date; a drug not
    identified, or an opioid whose MME cannot be worked out, leaves its
    date's MME unknown (reported), never 0."""
    per_day = " ".join(f"WHEN {sql_literal(k)} THEN {v}" for k, v in TIMING_CODES.items())
    unit_days = " ".join(f"WHEN {sql_literal(k)} THEN {v}" for k, v in PERIOD_DAYS.items())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_med_rows AS
        WITH m AS (
            SELECT m.*, x.drug, x.drug_class, x.factor, x.drug_unit, x.strength, x.strength_unit
            FROM fx_meds m JOIN fx_med_map x
              ON x.code_json IS NOT DISTINCT FROM m.code_json AND x.name IS NOT DISTINCT FROM m.name
            WHERE m.problem IS NULL AND x.drug_class <> 'other'
              AND NOT (m.rtype = 'MedicationRequest' AND coalesce(m.status, '') IN ({types_sql(REQUEST_SKIPPED)}))
              AND NOT (m.rtype = 'MedicationStatement' AND coalesce(m.status, '') IN ({types_sql(STATEMENT_SKIPPED)}))),
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
    return count_rows(con, "fx_med_rows")


def drop_fhir_temp_tables(con) -> None:
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
