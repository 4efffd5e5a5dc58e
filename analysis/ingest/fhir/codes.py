"""What the codes of a FHIR export mean here: user-extendable mapping tables.

Three bundled tables in ``data/`` (edit them, or pass your own file with
``--codes``; a clinic's own rows win):

* ``encounter_types.csv`` (``system,code,visit_type``): an Encounter.type
  coding ``system|code`` -> visit type; a row without ``system`` matches a
  coding's display or the type's text, folded like column names.  The four
  visit types and their aliases (consult, induction, maintenance,
  check-in) always match as text.
* ``observation_codes.csv`` (``system,code,column``): an Observation (or
  component) code -> a session-export column.  LOINC codes of SPEC §2 are
  bundled; a clinic adds its local codes (PGIC, MME per day, ...).
* ``medication_aliases.csv`` (``name,drug``): a medication's text (or
  ``system|code`` in the user's file) -> a drug of
  ``mme_factors_cdc2022.csv`` or ``benzodiazepines.csv``, ``opioid`` (an
  opioid with no CDC factor: its MME is unknown) or ``other`` (neither an
  opioid nor a benzodiazepine).

The user's file has one header ``table,system,code,maps_to`` where
``table`` is ``encounter_types``, ``observation_codes`` or
``medication_aliases``.

Also here: which medication a text or RxNorm clinical drug name is, with its
strength ("Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet"
is oxycodone 5 mg), and the condition of a Condition's coding.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from analysis.storage import reference
from analysis.storage.reference import DATA_DIR, fold

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
ICD10CM = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10")
KETAMINE_RXNORM = "6130"
NO_MEDICATION_TEXT = {"none", "no_medications", "no_known_medications", "nil",
                      "no_opioids_or_benzodiazepines", "no_current_medications"}
NO_MEDICATION_CODES = {"no-known-medications", "no-medication-info"}
# Columns an Observation may fill (the rest of the session export comes from
# the resources themselves).
OBSERVATION_COLUMNS = ("pain_score", "pain_post", "weight_kg", "opioid_mme_per_day",
                       "benzodiazepine", "phq9", "pcl5", "pgic", "adverse_event",
                       "sbp_max", "spo2_min", "ketamine_mg", "route", "site")
# SNOMED CT route concepts (MedicationAdministration.dosage.route).
ROUTE_CODES = {"47625008": "IV", "78421000": "IM", "46713006": "intranasal",
               "26643006": "oral", "37839007": "sublingual"}
TABLES = ("encounter_types", "observation_codes", "medication_aliases")


class CodesFileError(ValueError):
    """A mapping file that cannot be used (its message names file and line)."""


@dataclass(frozen=True)
class Codes:
    encounter_types: tuple[tuple[str, str, str], ...]     # (system, code-or-folded-text, type)
    observation_codes: tuple[tuple[str, str, str], ...]   # (system, code, column)
    medication_aliases: tuple[tuple[str, str, str], ...]  # (system, code-or-folded-text, drug)


def load(extra_path: str | None = None) -> Codes:
    """The bundled tables plus a clinic's own file (its rows first)."""
    if not extra_path:
        return _load(None, None)
    stat = Path(extra_path).stat()
    return _load(str(extra_path), (stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=16)
def _load(extra_path: str | None, version: tuple | None) -> Codes:
    tables: dict[str, list[tuple[str, str, str]]] = {t: [] for t in TABLES}
    if extra_path:
        with open(extra_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not {"table", "system", "code", "maps_to"} <= set(reader.fieldnames or ()):
                raise CodesFileError(f"{Path(extra_path).name}: expected the columns "
                                     "table,system,code,maps_to")
            for line, row in enumerate(reader, start=2):
                table = fold(row["table"])
                if table not in tables:
                    raise CodesFileError(f"{Path(extra_path).name} line {line}: table must be "
                                         f"one of {', '.join(TABLES)}")
                tables[table].append(_row(table, row["system"], row["code"], row["maps_to"],
                                          f"{Path(extra_path).name} line {line}"))
    for table, target in (("encounter_types", "visit_type"), ("observation_codes", "column"),
                          ("medication_aliases", "drug")):
        name = f"{table}.csv"
        with open(DATA_DIR / name, newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                tables[table].append(_row(table, row.get("system", ""),
                                          row.get("code", row.get("name", "")), row[target],
                                          f"{name} line {line}"))
    for text in reference.VISIT_TYPES:
        tables["encounter_types"].append(("", text, text))
    for alias, visit_type in reference.VISIT_TYPE_ALIASES.items():
        tables["encounter_types"].append(("", alias, visit_type))
    return Codes(*(tuple(tables[t]) for t in TABLES))


def _row(table: str, system: str, code: str, target: str, where: str) -> tuple[str, str, str]:
    system, code, target = (system or "").strip(), (code or "").strip(), (target or "").strip()
    if not code:
        raise CodesFileError(f"{where}: no code")
    key = code if system else fold(code)
    if table == "encounter_types":
        folded = fold(target)
        value = reference.VISIT_TYPE_ALIASES.get(folded, folded)
        if value not in reference.VISIT_TYPES:
            raise CodesFileError(f"{where}: visit type must be one of "
                                 f"{', '.join(reference.VISIT_TYPES)}")
    elif table == "observation_codes":
        value = reference.canonical_column(fold(target)) or fold(target)
        if value not in OBSERVATION_COLUMNS:
            raise CodesFileError(f"{where}: column must be one of {', '.join(OBSERVATION_COLUMNS)}")
    else:
        value = target.strip().lower()
        known = {d.generic for _, d in reference.drug_lexicon()} | {"opioid", "other"}
        if value not in known:
            raise CodesFileError(f"{where}: drug must be a drug of the MME or benzodiazepine "
                                 "tables, 'opioid' or 'other'")
    return system, key, value


# --------------------------------------------------------------------------
# medications


@dataclass(frozen=True)
class Medication:
    drug: str | None          # generic name (None: not identified)
    drug_class: str           # opioid | benzodiazepine | none | other | unknown
    factor: float | None      # CDC 2022 MME factor
    strength: float | None    # per unit (tablet, patch, mL)
    strength_unit: str | None # mg | mcg/hr | mg/ml


_STRENGTH = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(MG/HR|MCG/HR|MG/ML|MCG/ML|MG|MCG)\b",
                       re.IGNORECASE)
_PAIR = re.compile(r"\d\s*/\s*\d")


def classify_medication(name: str | None, codings: tuple[tuple[str, str], ...],
                        codes: Codes) -> Medication:
    """What a medication is, from its text or display (``name``) and its
    codings ``(system, code)``.

    An RxNorm clinical drug name names every ingredient, so a name that
    matches no opioid or benzodiazepine, on a medication coded in RxNorm,
    is ``other``; a medication known only by free text or a local code that
    matches nothing is ``unknown`` (its date's MME is unknown, never 0)."""
    by_code = {(s, c): d for s, c, d in codes.medication_aliases if s}
    for system, code in codings:
        if system in ("http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
                      "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips") \
                and code in NO_MEDICATION_CODES:
            return Medication(None, "none", None, None, None)
        if (system, code) in by_code:
            return _by_alias(by_code[(system, code)], name)
    text = (name or "").strip()
    if not text:
        return Medication(None, "unknown", None, None, None)
    if fold(text) in NO_MEDICATION_TEXT:
        return Medication(None, "none", None, None, None)
    drug = reference.match_drug(text, "mcg/hr" if "MG/HR" in text.upper() else None)
    if drug is not None:
        strength, unit = strength_of(text, drug)
        return Medication(drug.generic, drug.drug_class, drug.factor, strength, unit)
    folded = "_" + fold(text) + "_"
    for system, alias, target in codes.medication_aliases:
        if not system and f"_{alias}_" in folded:
            return _by_alias(target, text)
    if any(system == RXNORM for system, _ in codings):
        return Medication(None, "other", None, None, None)
    return Medication(None, "unknown", None, None, None)


def _by_alias(target: str, name: str | None) -> Medication:
    if target == "other":
        return Medication(None, "other", None, None, None)
    if target == "opioid":
        return Medication(None, "opioid", None, None, None)
    drug = next(d for _, d in reference.drug_lexicon() if d.generic == target)
    strength, unit = strength_of(name or "", drug)
    return Medication(drug.generic, drug.drug_class, drug.factor, strength, unit)


def strength_of(text: str, drug: reference.Drug) -> tuple[float | None, str | None]:
    """The strength of ``drug`` in a medication name: in an RxNorm clinical
    drug name the ingredient's own "N MG" (MG/HR for a patch, as mcg/hr);
    in a label such as "Percocet 5/325 mg" the opioid's number."""
    if _PAIR.search(text) or not _STRENGTH.search(text):
        value = reference.dose_from_text(text)
        return value, (drug.dose_unit or "mg") if value is not None else None
    segments = [s for s in re.split(r"\s/\s", text) if s.strip()]
    chosen = next((s for s in segments if (m := reference.match_drug(s, "mcg/hr" if "MG/HR" in s.upper() else None)) is not None
                   and m.generic == drug.generic), None)
    if chosen is None:
        chosen = segments[0] if len(segments) == 1 else None
    match = _STRENGTH.search(chosen or "")
    if not match:
        return None, None
    value, unit = float(match.group(1)), match.group(2).upper()
    if unit == "MG/HR":
        return round(value * 1000, 6), "mcg/hr"
    if unit == "MCG/HR":
        return value, "mcg/hr"
    if unit == "MCG":
        return value / 1000, "mg"
    if unit == "MG/ML":
        return value, "mg/ml"
    if unit == "MCG/ML":
        return value / 1000, "mg/ml"
    return value, "mg"


# --------------------------------------------------------------------------
# conditions


def condition_of(codings: tuple[tuple[str, str, str], ...], text: str | None) -> str | None:
    """The condition (SPEC §1) of a Condition's code: an ICD-10-CM code (the
    longest prefix wins) or a SNOMED CT concept of the 13, else a display or
    text naming one; ``Other`` when it names none; None without any code or
    text."""
    labels = []
    for system, code, display in codings:
        if system in ICD10CM and code:
            found = reference.map_condition(code)
            if found and found != reference.OTHER:
                return found
        if system == SNOMED and code:
            found = reference.condition_for_snomed(code)
            if found:
                return found
        labels += [display, code]
    for label in (text, *labels):
        if label:
            found = reference.map_condition(label)
            if found and found != reference.OTHER:
                return found
    return reference.OTHER if (text or any(labels)) else None
