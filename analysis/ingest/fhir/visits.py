"""How mapped resources become visits: a patient's calendar day and visit
type, the day's treatment session, follow-up or intake, and the value checks
a visit's measurements pass.
"""

from __future__ import annotations

from analysis.ingest.columns import NUMERIC_RULES
from analysis.ingest.ingest_log import sql_literal
from analysis.ingest.fhir.resources import (ADMINISTRATION_OK, ENCOUNTER_SKIPPED, OBSERVATION_OK,
    SESSION_GAP_DAYS, types_sql)


def build_visits(con) -> None:
    """Resolve visit days and types, and put every value on its visit."""
    # Encounters: usable (no problem, status not skipped), with a type, or a
    # treatment session when ketamine was given that day (to it, or to no
    # encounter of that day).
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_ket_ok AS
        SELECT k.*, e.rid IS NOT NULL AS has_encounter
        FROM fx_ket k
        LEFT JOIN (SELECT DISTINCT rid, patient_id, day FROM fx_enc
                   WHERE problem IS NULL AND coalesce(status, '') NOT IN ({types_sql(ENCOUNTER_SKIPPED)})) e
          ON e.rid = k.enc AND e.patient_id = k.patient_id AND e.day = k.day
        WHERE k.problem IS NULL AND k.is_ketamine AND coalesce(k.status, 'completed') IN ({types_sql(ADMINISTRATION_OK)})""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_enc_ok AS
        SELECT e.*, coalesce(e.visit_type, CASE
                   WHEN e.rid IN (SELECT enc FROM fx_ket_ok WHERE has_encounter)
                     OR (e.patient_id, e.day) IN (SELECT patient_id, day FROM fx_ket_ok WHERE NOT has_encounter)
                   THEN 'session' END) AS vtype
        FROM fx_enc e
        WHERE e.problem IS NULL AND coalesce(e.status, '') NOT IN ({types_sql(ENCOUNTER_SKIPPED)})""")
    # Values: usable observation values of a mapped code, adverse events.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE fx_values AS
        SELECT src, line, rtype, rid, patient_id, enc, day, t_at, column_name, num, raw_value, unit,
               flag, concept
        FROM fx_obs
        WHERE problem IS NULL AND status IN ({types_sql(OBSERVATION_OK)}) AND column_name IS NOT NULL
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


def valid_value_sql() -> str:
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


def issue_sql() -> str:
    cases = []
    for column, (low, high, whole) in NUMERIC_RULES.items():
        rng = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        cases.append(f"""WHEN {sql_literal(column)} THEN CASE
                            WHEN num IS NULL OR NOT isfinite(num) THEN 'not a number'
                            WHEN num < {low if low is not None else '-1e308'} OR num > {high if high is not None else '1e308'}
                              THEN 'out of range (must be {rng})'
                            ELSE 'not a whole number' END""")
    return f"CASE column_name {' '.join(cases)} END"
