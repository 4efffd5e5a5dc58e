"""Writing the demo clinic's exports: the patient journey step by step, as a
session and a medication export (CSV) or as a FHIR R4 Bulk Data export.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.ingest.demo.clinic import day_number
from analysis.ingest.demo.export import (make_medications_messy, make_messy, session_table,
    write_csv)
from analysis.ingest.demo.medications import assign_opioid_regimens, record_medications
from analysis.ingest.demo.patients import (enrol_patients, lay_out_visits, plan_boosters,
    plan_follow_ups, plan_induction)
from analysis.ingest.demo.records import (assign_providers, record_conditions, record_mood,
    record_pain, record_treatment)


@dataclass(frozen=True)
class DemoFiles:
    sessions: Path        # the session export CSV (FHIR: the export's folder)
    medications: Path     # the medication export CSV (FHIR: the export's folder)
    visit_rows: int
    medication_rows: int
    patients: int
    resources: dict | None = None   # FHIR: resources written, by type


FORMATS = ("csv", "fhir")


def generate_demo(out_dir: str | Path, patients: int = 600, seed: int = 7,
                  end: dt.date = dt.date(2026, 9, 30), messy: bool = True,
                  format: str = "csv") -> DemoFiles:
    """Write ``out_dir/sessions.csv`` and ``out_dir/medications.csv``, or
    with ``format="fhir"`` the same clinic as a FHIR R4 Bulk Data export
    (``out_dir/<Type>.000.ndjson``, see :mod:`analysis.ingest.demo.fhir_export`).

    ``end`` is the export date: no visit lies after it.  ``messy`` adds ~0.3%
    bad rows and values (duplicates, a missing patient_id, a "phone call"
    visit type, pain 11 or "n/a", PHQ-9 "abc", a few more); without it every
    row and value is valid under SPEC §2.  ``visit_rows`` and
    ``medication_rows`` count data rows as written (duplicates included).
    About 7.9 visit rows per patient: ``patients=127_500`` gives ~1M rows.
    """
    if patients < 1:
        raise ValueError("patients must be at least 1")
    rng = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    p = enrol_patients(rng, patients, end)
    infusion_days = plan_induction(rng, p)
    follow_up_days = plan_follow_ups(rng, p)
    booster_days = plan_boosters(rng, p)
    v = lay_out_visits(p, infusion_days, follow_up_days, booster_days, day_number(end))
    record_pain(rng, p, v)
    assign_opioid_regimens(rng, p)
    medications = record_medications(rng, p, v)
    record_mood(rng, p, v)
    record_treatment(rng, p, v)
    record_conditions(rng, p, v)
    assign_providers(np.random.default_rng([seed, 18]), p, v)

    sessions = session_table(p, v)
    if format == "fhir":
        from analysis.ingest.demo import fhir_export as demo_fhir
        counts = demo_fhir.write_export(out, sessions, medications, seed=seed, end=end,
                                        messy=messy)
        return DemoFiles(out, out, sessions.num_rows, medications.num_rows, patients, counts)
    if format != "csv":
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if messy:
        sessions = make_messy(rng, sessions, v)
        medications = make_medications_messy(rng, medications)

    sessions_path = out / "sessions.csv"
    medications_path = out / "medications.csv"
    write_csv(sessions, sessions_path)
    write_csv(medications, medications_path)
    return DemoFiles(sessions_path, medications_path, sessions.num_rows,
                     medications.num_rows, patients)
