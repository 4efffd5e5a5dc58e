"""The column plan of an export: which raw header is which canonical column
(session, medication or measurement export), which headers identify a person
(dropped, or pseudonymised when they are the only patient key), and the value
rules every numeric column is checked against (SPEC §2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from analysis.storage import reference
from analysis.storage.reference import fold
from analysis.ingest.ingest_log import IngestRefused

# Value rules of SPEC §2: column -> (lowest, highest, whole numbers only).
NUMERIC_RULES: dict[str, tuple[float | None, float | None, bool]] = {
    "ketamine_mg": (0, None, False),
    "weight_kg": (20, 400, False),
    "pain_score": (0, 10, False),
    "pain_post": (0, 10, False),
    "opioid_mme_per_day": (0, None, False),
    "phq9": (0, 27, True),
    "pcl5": (0, 80, True),
    "pgic": (1, 7, True),
    "sbp_max": (60, 260, False),
    "spo2_min": (50, 100, False),
}
ROUTE_ALIASES = {
    **reference.ROUTES, "intravenous": "IV", "intramuscular": "IM",
    "in": "intranasal", "nasal": "intranasal", "po": "oral", "sl": "sublingual",
}

# A measurement export (long format, :mod:`analysis.ingest.long_format`): its columns.
MEASUREMENT_COLUMNS = ("patient_id", "date", "measure", "value", "time", "unit")
MEASUREMENT_REQUIRED = ("patient_id", "date", "measure", "value")
_MEASUREMENT_ALIASES = {"measure": "measure", "measurement": "measure", "measure_name": "measure",
                        "item": "measure", "instrument": "measure", "question": "measure",
                        "loinc": "measure", "code": "measure",
                        "value": "value", "result": "value", "score": "value", "answer": "value",
                        "value_numeric": "value",
                        "time": "time", "measure_time": "time", "measurement_time": "time",
                        "unit": "unit", "units": "unit", "date": "date"}


def is_long_format(folded_headers) -> bool:
    """A measurement export: it has a measure and a value column."""
    names = {_MEASUREMENT_ALIASES.get(f) for f in folded_headers}
    return {"measure", "value"} <= names


def measurement_column(folded: str, alias_file: str | None = None) -> str | None:
    """The measurement-export (long format) column a folded header is."""
    if folded in _MEASUREMENT_ALIASES:
        return _MEASUREMENT_ALIASES[folded]
    session = reference.canonical_column(folded, alias_file)
    return {"patient_id": "patient_id", "visit_date": "date"}.get(session or "")


@dataclass(frozen=True)
class ColumnPlan:
    """How a file's headers map to canonical columns."""
    export_kind: str
    mapping: dict[str, str]          # raw header -> canonical column
    dropped_identifying: list[str]   # raw headers never read
    unknown: list[str]               # raw headers reported, not used
    all_columns: list[str]           # every raw header, in file order
    pseudonymised: list[str] = field(default_factory=list)  # identifying patient key, as pseudonyms


def plan_columns(headers: list[str], file_name: str, *,
                 column_map: Mapping[str, str] | None = None,
                 alias_file: str | None = None) -> ColumnPlan:
    """Map raw headers to canonical columns; refuse a file lacking a required one.

    Every header is checked for identifying words whatever it maps to (a
    bundled alias, the user's alias file or the mapping form).  An
    identifying column is dropped, except that when the file's only patient
    key is identifying (an MRN, a name) that column stays the key and its
    values are replaced by their keyed pseudonym (SPEC §2); a record number
    is preferred over a name.
    """
    folded = {h: fold(h) for h in headers}
    is_medication = any(
        reference.MEDICATION_ALIASES.get(f, f) == "drug" for f in folded.values()
    ) and not any(reference.canonical_column(f, alias_file) == "visit_type"
                  for f in folded.values())
    is_measurements = not is_medication and is_long_format(folded.values())
    mapping: dict[str, str] = {}
    dropped: list[str] = []
    unknown: list[str] = []
    identifying_keys: list[str] = []
    chosen = {raw: fold(target) for raw, target in (column_map or {}).items() if target}
    for header in headers:
        f = folded[header]
        if header in chosen:
            canonical = chosen[header]
        elif is_medication:
            canonical = _medication_column(f, alias_file)
        elif is_measurements:
            canonical = measurement_column(f, alias_file)
        else:
            canonical = reference.canonical_column(f, alias_file)
        if reference.is_identifying(header):
            (identifying_keys if canonical == "patient_id" else dropped).append(header)
        elif canonical is None or canonical in mapping.values():
            unknown.append(header)
        else:
            mapping[header] = canonical
    pseudonymised: list[str] = []
    if identifying_keys:
        if "patient_id" in mapping.values():
            dropped += identifying_keys
        else:
            key = sorted(identifying_keys, key=lambda h: not reference.is_record_number(h))[0]
            mapping[key] = "patient_id"
            pseudonymised.append(key)
            dropped += [h for h in identifying_keys if h != key]
        dropped.sort(key=headers.index)
        mapping = {h: mapping[h] for h in headers if h in mapping}
    kind = "medications" if is_medication else "measurements" if is_measurements else "sessions"
    required = {"medications": ("patient_id", "date", "drug"), "measurements": MEASUREMENT_REQUIRED,
                "sessions": reference.REQUIRED_COLUMNS}[kind]
    missing = [c for c in required if c not in mapping.values()]
    if missing and looks_like_data(headers):
        # A headerless export: its "headers" are the first row's values
        # (a name, a birth date, a phone number), never repeated anywhere.
        raise IngestRefused(
            f"{file_name}: the first line looks like data, not column names; the export "
            f"needs a header row naming its columns ({', '.join(required)}, ...)")
    if missing:
        raise IngestRefused(
            f"{file_name}: missing required column(s) {', '.join(missing)}. "
            f"The file has: {', '.join(headers) or '(no columns)'}"
            + (f"; recognised: {', '.join(f'{r} -> {c}' for r, c in mapping.items())}"
               if mapping else "")
            + (f"; dropped as identifying: {', '.join(dropped)}" if dropped else ""))
    return ColumnPlan(kind, mapping, dropped, unknown, list(headers), pseudonymised)


_DATA_LIKE = (
    re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T].*)?"),   # a date or time stamp
    re.compile(r"[-+]?\d+([.,]\d+)?"),                         # a number
    re.compile(r"\+?[\d\s().-]{7,}"),                            # a phone number
    re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+"),                     # an e-mail address
)


def looks_like_data(headers: list[str]) -> bool:
    """Does a file's first line hold values (a date, a number, a phone
    number, an e-mail address) rather than column names?"""
    return any(pattern.fullmatch(str(h).strip()) for h in headers for pattern in _DATA_LIKE)


def _medication_column(folded: str, alias_file: str | None) -> str | None:
    """Medication exports share the patient and date aliases of session exports."""
    canonical = reference.MEDICATION_ALIASES.get(folded, folded)
    if canonical in reference.MEDICATION_COLUMNS:
        return canonical
    session_column = reference.canonical_column(folded, alias_file)
    return {"patient_id": "patient_id", "visit_date": "date"}.get(session_column or "")
