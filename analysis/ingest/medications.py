"""Loading a medication export's staged rows into ``medications``: drug names
mapped to their class and MME factor, doses checked, problems quarantined.
"""

from __future__ import annotations

import datetime as dt

from analysis.storage import reference
from analysis.storage.reference import fold
from analysis.ingest.ingest_log import FileResult, count_rows, checkpoint
from analysis.ingest.sessions import quarantine_problems
from analysis.ingest.staging import date_sql, detect_date_format


def load_medications(con, plan, result: FileResult, ingest_id: int, name: str,
                      ingest_date: dt.date, fail_after: str | None) -> None:
    date_format = detect_date_format(con, "date")
    result.date_format = "MM/DD/YYYY" if date_format == "us" else "YYYY-MM-DD"
    _register_drug_map(con)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE checked_rows AS
        WITH copies AS (
            SELECT *, row_number() OVER (PARTITION BY row_hash ORDER BY line) AS copy_number
            FROM staged
        ),
        typed AS (
            SELECT *,
                   nullif(trim(patient_id), '') AS patient__value,
                   {date_sql('date', date_format)} AS date__value,
                   nullif(trim(drug), '') AS drug__value,
                   {reference.unit_fold_sql('unit')} AS unit__folded,
                   TRY_CAST(trim(dose) AS DOUBLE) AS dose__parsed,
                   TRY_CAST(trim(doses_per_day) AS DOUBLE) AS doses_per_day__parsed
            FROM copies WHERE copy_number = 1
        )
        SELECT t.*, dm.drug AS generic, coalesce(dm.drug_class, 'unknown') AS drug_class,
               dm.factor, dm.text_dose, dm.drug_unit,
               CASE WHEN isfinite(dose__parsed) AND dose__parsed >= 0 THEN dose__parsed END AS dose__value,
               CASE WHEN isfinite(doses_per_day__parsed) AND doses_per_day__parsed > 0
                    THEN doses_per_day__parsed END AS doses_per_day__value,
               nullif(concat_ws('; ',
                   CASE WHEN patient__value IS NULL THEN 'missing patient_id' END,
                   CASE WHEN nullif(trim(date), '') IS NULL THEN 'missing date'
                        WHEN date__value IS NULL
                          THEN 'date is not a date in this file''s format ({result.date_format})'
                        WHEN date__value > $ingest_date THEN 'date is after the ingest date'
                   END,
                   CASE WHEN drug__value IS NULL THEN 'missing drug' END), '') AS quarantine_reason
        FROM typed t LEFT JOIN drug_map dm
          ON dm.raw = t.drug__value AND dm.unit IS NOT DISTINCT FROM t.unit__folded
    """, {"ingest_date": ingest_date})
    # The dose in the drug's reference unit (mg; mcg/hr for a patch), NULL
    # when the row's unit cannot be converted for it; without a dose, the
    # strength its label names ("Percocet 5/325 mg": 5 mg).
    dose = reference.dose_sql("dose__value", "unit__folded", "drug_unit", "text_dose", "drug_unit")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE checked AS
        SELECT *, CASE WHEN drug_class <> 'opioid' THEN NULL
                       WHEN dose__value IS NULL THEN text_dose
                       ELSE {dose} END AS reference_dose
        FROM checked_rows""")
    result.rows_read = count_rows(con, "staged") + count_rows(con, "staged_rejects")
    result.duplicates_collapsed = count_rows(con, "staged") - count_rows(con, "checked")
    quarantine_problems(con, ingest_id, name, plan)
    result.rows_quarantined = count_rows(con, "checked", "quarantine_reason IS NOT NULL") \
        + count_rows(con, "staged_rejects")
    checkpoint("checked", fail_after)
    # A later reconciliation of the same patient and date replaces the earlier one.
    result.rows_replaced = con.execute("""
        SELECT count(*) FROM medications m WHERE EXISTS (
            SELECT 1 FROM checked c WHERE c.quarantine_reason IS NULL
              AND c.patient__value = m.patient_id AND c.date__value = m.record_date)
    """).fetchall()[0][0]
    con.execute("""
        DELETE FROM medications m WHERE EXISTS (
            SELECT 1 FROM checked c WHERE c.quarantine_reason IS NULL
              AND c.patient__value = m.patient_id AND c.date__value = m.record_date)
    """)
    con.execute("""
        INSERT INTO medications BY NAME
        SELECT patient__value AS patient_id, date__value AS record_date, drug__value AS drug_raw,
               generic AS drug, drug_class,
               coalesce(dose__value, CASE WHEN drug_class = 'opioid' THEN text_dose END) AS dose,
               nullif(trim(unit), '') AS unit, doses_per_day__value AS doses_per_day,
               CASE WHEN drug_class <> 'opioid' THEN NULL
                    WHEN drug_unit = 'mcg/hr' THEN reference_dose * factor
                    ELSE reference_dose * doses_per_day__value * factor
               END AS mme,
               $ingest_id AS ingest_id, line AS source_line
        FROM checked WHERE quarantine_reason IS NULL
    """, {"ingest_id": ingest_id})
    result.rows_accepted = count_rows(con, "checked", "quarantine_reason IS NULL")
    con.execute("""
        INSERT INTO value_issues
        SELECT $ingest_id, $file_name, line, column_name, raw_value, reason FROM (
            SELECT line, 'drug' AS column_name, drug AS raw_value,
                   'not a known opioid or benzodiazepine: no MME factor, MME for this date unknown' AS reason
            FROM checked WHERE quarantine_reason IS NULL AND drug_class = 'unknown'
            UNION ALL
            SELECT line, 'dose', dose, 'not a non-negative number'
            FROM checked WHERE quarantine_reason IS NULL
              AND nullif(trim(dose), '') IS NOT NULL AND dose__value IS NULL
            UNION ALL
            SELECT line, 'unit', unit,
                   'a dose unit that cannot be converted to ' || drug_unit
                   || ' for this drug: MME for this date unknown'
            FROM checked WHERE quarantine_reason IS NULL AND drug_class = 'opioid'
              AND dose__value IS NOT NULL AND reference_dose IS NULL
            UNION ALL
            SELECT line, 'doses_per_day', doses_per_day, 'not a positive number'
            FROM checked WHERE quarantine_reason IS NULL
              AND nullif(trim(doses_per_day), '') IS NOT NULL AND doses_per_day__value IS NULL
        ) ORDER BY line, column_name
    """, {"ingest_id": ingest_id, "file_name": name})
    result.values_nulled = con.execute(
        "SELECT count(*) FROM value_issues WHERE ingest_id = ?", [ingest_id]).fetchall()[0][0]


def _register_drug_map(con) -> None:
    """What each distinct (drug text, dose unit) of the file is: generic name,
    class, MME factor, the unit the factor applies to, and the strength its
    label names.  By pair, not by drug text alone: plain "fentanyl" is the
    patch only on a row whose unit is mcg/hr."""
    pairs = con.execute(f"""
        SELECT DISTINCT nullif(trim(drug), '') AS raw, {reference.unit_fold_sql('unit')} AS unit
        FROM staged WHERE nullif(trim(drug), '') IS NOT NULL""").fetchall()
    rows = []
    for raw, unit in pairs:
        if fold(raw) in ("none", "no_medications", "no_opioids_or_benzodiazepines", "nil"):
            rows.append((raw, unit, None, "none", None, None, None))
            continue
        drug = reference.match_drug(raw, unit)
        if drug is None:
            rows.append((raw, unit, None, "unknown", None, None, None))
        else:
            rows.append((raw, unit, drug.generic, drug.drug_class, drug.factor, drug.dose_unit,
                         reference.dose_from_text(raw)))
    columns = {"raw": "VARCHAR", "unit": "VARCHAR", "drug": "VARCHAR", "drug_class": "VARCHAR",
               "factor": "DOUBLE", "drug_unit": "VARCHAR", "text_dose": "DOUBLE"}
    con.execute("CREATE OR REPLACE TEMP TABLE drug_map AS SELECT "
                + ", ".join(f"unnest(${name}::{kind}[]) AS {name}" for name, kind in columns.items()),
                {name: [row[i] for row in rows] for i, name in enumerate(columns)})
