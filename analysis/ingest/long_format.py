"""Long-format measurement exports: one row per answered measure (SPEC §2).

A patient-reported-outcome tool or an EHR report gives ``patient_id, date,
measure, value`` (and optionally ``time``, ``unit``), where ``measure`` is a
column of the session export, one of its aliases ("PHQ-9", "NRS pain"), or
a code of ``data/observation_codes.csv`` (a LOINC code such as 72514-3).
The values are merged into the visits by patient and date: onto the visit
of that day (a treatment session first, then a follow-up, then an intake;
``pain_post`` onto the session), and a day without a visit gets one, typed
like a FHIR day (a ``ketamine_mg`` measure makes it a treatment session,
``booster`` more than 28 days after the previous one, else ``infusion``;
otherwise a ``follow_up``).

The file is read like any export (:mod:`analysis.ingest.pipeline`): same readers,
identifying columns dropped or pseudonymised, one transaction, rows with a
problem quarantined with their reason, values out of range nulled and
logged, exact duplicates collapsed, conflicting rows (one patient, date,
time and measure, different values) quarantined.  A later measurement of
the same patient, day and measure replaces the earlier one.

Merged values live on the visit rows: a session export loaded later
replaces its visits whole, so load measurement exports after the session
exports they complete.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analysis.ingest.fhir import codes as fhir_codes
from analysis.ingest.fhir.resources import SESSION_GAP_DAYS
from analysis.ingest.fhir.visits import issue_sql, valid_value_sql, day_priority_sql
from analysis.ingest.columns import NUMERIC_RULES, ROUTE_ALIASES
from analysis.ingest.ingest_log import count_rows, sql_literal, checkpoint
from analysis.ingest.sessions import quarantine_problems
from analysis.ingest.staging import category_sql, date_sql, detect_date_format
from analysis.storage import reference, saved_models
from analysis.storage.reference import fold

# Columns a measure may fill (not the visit's own identity).
MEASURE_COLUMNS = tuple(c for c in fhir_codes.OBSERVATION_COLUMNS)
TEXT_COLUMNS = ("route", "site", "adverse_event", "benzodiazepine")


def measure_column(raw: str, codes: fhir_codes.Codes, alias_file: str | None = None) -> str | None:
    """The session-export column a measure names: the column, an alias, or
    an observation code (any system)."""
    folded = fold(raw)
    canonical = reference.canonical_column(folded, alias_file)
    if canonical in MEASURE_COLUMNS:
        return canonical
    text = str(raw).strip()
    for _, code, target in codes.observation_codes:
        if code == text:
            return target
    return None


def load(con, plan, result, ingest_id: int, name: str, ingest_date: dt.date,
         fail_after: str | None, alias_file: str | None = None) -> None:
    """Check the staged rows (view ``staged``), quarantine, log value
    problems and merge the values into visits."""
    codes = fhir_codes.load(None)
    measures = [r[0] for r in con.execute(
        "SELECT DISTINCT trim(measure) FROM staged WHERE nullif(trim(measure), '') IS NOT NULL"
    ).fetchall()]
    con.register("lf_measure_frame", pd.DataFrame(
        {"raw": measures, "column_name": [measure_column(m, codes, alias_file) for m in measures]},
        dtype=object))
    con.execute("CREATE OR REPLACE TEMP TABLE lf_measures AS SELECT * FROM lf_measure_frame")
    con.unregister("lf_measure_frame")
    date_format = detect_date_format(con, "date")
    result.date_format = "MM/DD/YYYY" if date_format == "us" else "YYYY-MM-DD"
    valid = valid_value_sql()
    route_sql = category_sql("value", {k: sql_literal(v) for k, v in ROUTE_ALIASES.items()})
    benzo_sql = category_sql("value", {k: "'yes'" if v else "'no'"
                                        for k, v in reference.BOOLEAN_VALUES.items()})
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE checked AS
        WITH copies AS (
            SELECT *, row_number() OVER (PARTITION BY row_hash ORDER BY line) AS copy_number
            FROM staged),
        typed AS (
            SELECT c.*, nullif(trim(patient_id), '') AS patient__value,
                   {date_sql('date', date_format)} AS date__value,
                   m.column_name,
                   TRY_CAST(trim(value) AS DOUBLE) AS num,
                   nullif(trim(time), '') AS time__value
            FROM copies c LEFT JOIN lf_measures m ON m.raw = trim(c.measure)
            WHERE copy_number = 1)
        SELECT *,
               nullif(concat_ws('; ',
                   CASE WHEN patient__value IS NULL THEN 'missing patient_id' END,
                   CASE WHEN nullif(trim(date), '') IS NULL THEN 'missing date'
                        WHEN date__value IS NULL
                          THEN 'date ' || to_json(date) || ' is not a date in this file''s format ({result.date_format})'
                        WHEN date__value > $ingest_date THEN 'date ' || date__value || ' is after the ingest date'
                   END,
                   CASE WHEN nullif(trim(measure), '') IS NULL THEN 'missing measure'
                        WHEN column_name IS NULL THEN 'unknown measure ' || to_json(trim(measure))
                   END,
                   CASE WHEN nullif(trim(value), '') IS NULL THEN 'missing value' END), '') AS quarantine_reason
        FROM typed""", {"ingest_date": ingest_date})
    # Rows of one patient, date, time and measure that differ conflict.
    con.execute("""
        UPDATE checked SET quarantine_reason = 'conflicting rows share patient, date, time and measure'
        WHERE quarantine_reason IS NULL AND (patient__value, date__value, coalesce(time__value, ''), column_name) IN (
            SELECT (patient__value, date__value, coalesce(time__value, ''), column_name) FROM checked
            WHERE quarantine_reason IS NULL
            GROUP BY ALL HAVING count(DISTINCT trim(value)) > 1)""")
    result.rows_read = count_rows(con, "staged") + count_rows(con, "staged_rejects")
    result.duplicates_collapsed = count_rows(con, "staged") - count_rows(con, "checked")
    quarantine_problems(con, ingest_id, name, plan)
    result.rows_quarantined = count_rows(con, "checked", "quarantine_reason IS NOT NULL") \
        + count_rows(con, "staged_rejects")
    result.rows_accepted = result.rows_read - result.rows_quarantined - result.duplicates_collapsed
    checkpoint("checked", fail_after)

    # One value per patient, day and column; numbers checked as in SPEC §2.
    numeric = ", ".join(sql_literal(c) for c in NUMERIC_RULES)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE lf_values AS
        SELECT line, patient__value AS patient_id, date__value AS day, column_name, value AS raw_value,
               num, time__value,
               CASE WHEN column_name = 'route' THEN {route_sql}
                    WHEN column_name = 'benzodiazepine' THEN {benzo_sql}
                    WHEN column_name IN ('site', 'adverse_event') THEN nullif(trim(value), '')
               END AS txt,
               CASE WHEN column_name IN ({numeric}) THEN {valid} ELSE true END AS ok
        FROM checked WHERE quarantine_reason IS NULL""")
    con.execute(f"""
        INSERT INTO value_issues
        SELECT $ingest_id, $file_name, line, column_name, raw_value,
               CASE WHEN column_name IN ({numeric}) THEN {issue_sql()}
                    ELSE 'not a ' || column_name || ' value' END
        FROM lf_values
        WHERE NOT ok OR (column_name IN ('route', 'benzodiazepine') AND txt IS NULL)
        ORDER BY line""", {"ingest_id": ingest_id, "file_name": name})
    result.values_nulled = con.execute(
        "SELECT count(*) FROM value_issues WHERE ingest_id = ?", [ingest_id]).fetchall()[0][0]
    _merge(con, result, ingest_id)
    checkpoint("visits", fail_after)


def _merge(con, result, ingest_id: int) -> None:
    """Values onto the day's visit; a day without one gets a visit."""
    priority = day_priority_sql("visit_type")
    # Days without a visit: a treatment session when ketamine was given.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE lf_new_days AS
        SELECT patient_id, day, bool_or(column_name = 'ketamine_mg') AS session
        FROM lf_values v
        WHERE NOT EXISTS (SELECT 1 FROM visits x WHERE x.patient_id = v.patient_id AND x.visit_date = v.day)
        GROUP BY ALL""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE lf_new_visits AS
        WITH sessions AS (
            SELECT patient_id, day, true AS new FROM lf_new_days WHERE session
            UNION ALL
            SELECT DISTINCT patient_id, visit_date, false FROM visits
            WHERE visit_type IN ('infusion', 'booster')
              AND patient_id IN (SELECT patient_id FROM lf_new_days WHERE session)),
        lagged AS (
            SELECT *, lag(day) OVER (PARTITION BY patient_id ORDER BY day) AS previous FROM sessions)
        SELECT patient_id, day,
               CASE WHEN day - previous > {SESSION_GAP_DAYS} THEN 'booster' ELSE 'infusion' END AS visit_type
        FROM lagged WHERE new
        UNION ALL
        SELECT patient_id, day, 'follow_up' FROM lf_new_days WHERE NOT session""")
    con.execute("""
        INSERT INTO visits (natural_key, patient_id, visit_date, visit_type, ingest_id, source_line)
        SELECT 'm:' || n.patient_id || '|' || n.day || '|' || n.visit_type, n.patient_id, n.day,
               n.visit_type, $ingest_id,
               (SELECT min(line) FROM lf_values v WHERE v.patient_id = n.patient_id AND v.day = n.day)
        FROM lf_new_visits n""", {"ingest_id": ingest_id})
    added = con.execute("SELECT count(*) FROM lf_new_visits").fetchall()[0][0]
    # The visit each value goes on.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE lf_targets AS
        SELECT patient_id, visit_date AS day,
               arg_min(natural_key, ({priority}, natural_key)) AS primary_key,
               arg_min(natural_key, ({priority}, natural_key))
                 FILTER (WHERE visit_type IN ('infusion', 'booster')) AS session_key
        FROM visits WHERE (patient_id, visit_date) IN (SELECT patient_id, day FROM lf_values)
        GROUP BY ALL""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE lf_agg AS
        SELECT CASE WHEN v.column_name IN ('pain_post', 'ketamine_mg', 'route')
                    THEN coalesce(t.session_key, t.primary_key) ELSE t.primary_key END AS natural_key,
               v.column_name,
               CASE v.column_name WHEN 'sbp_max' THEN max(v.num) FILTER (WHERE v.ok)
                                  WHEN 'spo2_min' THEN min(v.num) FILTER (WHERE v.ok)
                                  ELSE arg_max(v.num, (v.time__value, v.line)) FILTER (WHERE v.ok) END AS num,
               CASE WHEN v.column_name = 'adverse_event'
                    THEN string_agg(DISTINCT lower(v.txt), '; ' ORDER BY lower(v.txt))
                    ELSE arg_max(v.txt, (v.time__value, v.line)) FILTER (WHERE v.txt IS NOT NULL) END AS txt
        FROM lf_values v JOIN lf_targets t USING (patient_id, day)
        GROUP BY 1, 2""")
    present = [r[0] for r in con.execute("SELECT DISTINCT column_name FROM lf_agg").fetchall()]
    # Values go onto visits stored before: their patients' saved models are redone.
    saved_models.note_patients(con, ingest_id, "SELECT DISTINCT patient_id FROM lf_values")
    for name in present:
        value = ("a.txt = 'yes'" if name == "benzodiazepine" else
                 "a.txt" if name in TEXT_COLUMNS else "a.num")
        con.execute(f"""
            UPDATE visits SET {name} = {value} FROM lf_agg a
            WHERE visits.natural_key = a.natural_key AND a.column_name = '{name}'
              AND ({value}) IS NOT NULL""")
    updated = con.execute("""SELECT count(DISTINCT natural_key) FROM lf_agg
                             WHERE natural_key NOT IN (SELECT 'm:' || patient_id || '|' || day || '|' || visit_type
                                                       FROM lf_new_visits)""").fetchall()[0][0]
    result.details = {"visits_updated": updated, "visits_added": added}
