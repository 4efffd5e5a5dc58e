"""Reference facts owned by the project (copied from the spec into ``data/``).

Column-name folding, column aliases, condition mapping (names, synonyms,
ICD-10-CM prefixes with the longest prefix winning, and SNOMED CT concepts), CDC 2022 MME factors and the
benzodiazepine list.  Everything here is plain Python over small CSV files.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[2] / "data"

# The canonical session-export columns, in SPEC §2 order.
REQUIRED_COLUMNS = ("patient_id", "visit_date", "visit_type")
CANONICAL_COLUMNS = (
    "patient_id", "visit_date", "visit_type", "visit_id", "condition", "site",
    "provider", "route", "ketamine_mg", "weight_kg", "pain_score", "pain_post",
    "opioid_mme_per_day", "benzodiazepine", "phq9", "pcl5", "pgic",
    "adverse_event", "sbp_max", "spo2_min",
)
MEDICATION_COLUMNS = ("patient_id", "date", "drug", "dose", "unit", "doses_per_day")
MEDICATION_ALIASES = {
    "medication": "drug", "drug_name": "drug", "medication_name": "drug",
    "med": "drug", "strength": "dose", "dose_mg": "dose", "units": "unit",
    "dose_unit": "unit", "frequency_per_day": "doses_per_day",
    "times_per_day": "doses_per_day", "doses_day": "doses_per_day",
    "per_day": "doses_per_day", "record_date": "date",
    "reconciliation_date": "date", "med_date": "date",
}

# Columns that identify a person: dropped at ingest, never stored anywhere.
# SPEC §2 lists the minimum; the rest follows HIPAA Safe Harbor.
IDENTIFYING_COLUMNS = frozenset({
    "name", "patient_name", "first_name", "last_name", "full_name",
    "middle_name", "given_name", "family_name", "surname", "firstname",
    "lastname", "patientname", "dob", "date_of_birth", "birth_date",
    "birthdate", "birthday", "ssn", "social_security_number", "social_security",
    "address", "home_address", "street", "street_address", "address_1",
    "address_2", "address1", "address2", "city", "zip", "zip_code", "zipcode",
    "postal_code", "phone", "phone_number", "mobile", "mobile_phone",
    "cell", "cell_phone", "home_phone", "telephone", "fax", "email",
    "email_address", "e_mail", "insurance_id", "member_id", "policy_number",
    "health_plan_id", "license_number", "drivers_license", "account_number",
    "ip_address", "url", "photo", "emergency_contact", "guardian",
    "next_of_kin",
})

VISIT_TYPES = ("intake", "infusion", "booster", "follow_up")
VISIT_TYPE_ALIASES = {
    "consult": "intake", "consultation": "intake", "induction": "infusion",
    "maintenance": "booster", "check_in": "follow_up", "followup": "follow_up",
}
ROUTES = {"iv": "IV", "im": "IM", "intranasal": "intranasal", "oral": "oral",
          "sublingual": "sublingual"}
# An adverse-event cell holding one of these (folded) means "no event": ingest
# stores it as such and the categoriser (metrics.adverse_events) skips it.
NO_ADVERSE_EVENT = ("none", "no", "n_a", "na", "nil", "0", "false")
BOOLEAN_VALUES = {"yes": True, "true": True, "1": True, "y": True,
                  "no": False, "false": False, "0": False, "n": False}

_PARENS = re.compile(r"\([^)]*\)")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def fold(text: object) -> str:
    """Fold a column name or category value as SPEC §2 says.

    Lower-case, drop text in parentheses, turn each run of characters other
    than letters and digits into one ``_``, trim ``_`` at both ends.
    ``"Pain Score (0-10)"`` -> ``pain_score``; ``"PHQ-9"`` -> ``phq_9``.
    """
    if text is None:
        return ""
    lowered = _PARENS.sub(" ", str(text).lower())
    return _NON_ALNUM.sub("_", lowered).strip("_")


# Words that make a column identifying wherever they stand in its name
# (after folding, parentheses kept: "Patient (Full Name)" is
# ``patient_full_name``), whatever the column maps to.
_IDENTIFYING_WORDS = frozenset({
    "name", "names", "surname", "firstname", "lastname", "fullname", "initials",
    "dob", "birth", "birthdate", "birthday", "ssn", "email", "mail", "phone", "telephone",
    "mobile", "fax", "address", "street", "zip", "zipcode", "postcode", "postal",
    "mrn", "chart", "insurance", "medicare", "medicaid", "license", "licence", "passport",
})
# Word pairs that do (``e_mail``, ``medical_record``) and a "name" that names a
# thing, not a person (``drug_name``, ``site_name``).
_IDENTIFYING_PAIRS = frozenset({("e", "mail"), ("medical", "record"), ("health", "record"),
                                ("social", "security"), ("record", "number"),
                                ("account", "number"), ("member", "id"), ("ip", "address")})
_THING_NAMES = frozenset({"drug", "medication", "med", "site", "clinic", "facility", "location",
                          "condition", "diagnosis", "dx", "procedure", "event", "test",
                          "study", "file", "column", "program", "route", "visit", "brand",
                          "generic", "product", "device"})
# Identifying patient keys: the ones a clinic's system gives a person (a
# medical record or chart number).  Such a key is kept only as a pseudonym.
_RECORD_NUMBER_WORDS = frozenset({"mrn", "chart"})
_RECORD_NUMBER_PAIRS = frozenset({("medical", "record"), ("health", "record"),
                                  ("record", "number")})


def _words_with_parentheses(header: object) -> list[str]:
    """The header's words, text in parentheses included ("Patient (Full
    Name)" -> patient, full, name), lower case."""
    text = _PARENS.sub(lambda m: " " + m.group(0)[1:-1] + " ", str(header or "").lower())
    return [w for w in _NON_ALNUM.split(text) if w]


def is_identifying(header: object) -> bool:
    """Whether a column identifies a person (SPEC §2), by its name alone:
    checked for every column, whatever it maps to, so that an alias, a
    user's alias file or the mapping form can never make a name, a date of
    birth or a record number an ordinary column."""
    if fold(header) in IDENTIFYING_COLUMNS:
        return True
    words = _words_with_parentheses(header)
    if "_".join(words) in IDENTIFYING_COLUMNS:
        return True
    for i, word in enumerate(words):
        previous = words[i - 1] if i else None
        if word in ("name", "names") and previous in _THING_NAMES:
            continue
        if word in _IDENTIFYING_WORDS:
            return True
        if previous is not None and (previous, word) in _IDENTIFYING_PAIRS:
            return True
    return False


def is_record_number(header: object) -> bool:
    """Whether an identifying column is a record number (MRN, chart number):
    preferred over a name when an identifying column must be the patient key."""
    words = _words_with_parentheses(header)
    return any(w in _RECORD_NUMBER_WORDS for w in words) or any(
        pair in _RECORD_NUMBER_PAIRS for pair in zip(words, words[1:]))



def _read_csv(name: str) -> list[dict[str, str]]:
    with open(DATA_DIR / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def column_aliases(extra_path: str | None = None) -> dict[str, str]:
    """Folded alias -> canonical column.  ``extra_path`` adds a user's own CSV
    (columns ``column,alias``), which wins over the bundled one.  A user's
    file is read again when it changes (the cache key includes its mtime)."""
    if not extra_path:
        return _column_aliases(None, None)
    stat = Path(extra_path).stat()
    return _column_aliases(str(extra_path), (stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=64)
def _column_aliases(extra_path: str | None, version: tuple | None) -> dict[str, str]:
    aliases: dict[str, str] = {}
    rows = _read_csv("column_aliases.csv")
    if extra_path:
        with open(extra_path, newline="", encoding="utf-8-sig") as handle:
            rows += list(csv.DictReader(handle))
    for row in rows:
        canonical = fold(row["column"])
        if canonical in CANONICAL_COLUMNS:
            aliases[fold(row["alias"])] = canonical
    for column in CANONICAL_COLUMNS:
        aliases[column] = column
    return aliases


def canonical_column(folded_name: str, extra_path: str | None = None) -> str | None:
    """The canonical column a folded header maps to, or None when unknown."""
    return column_aliases(extra_path).get(folded_name)


# --- conditions -------------------------------------------------------------

OTHER = "Other"
UNSPECIFIED = "Unspecified"
_ICD_LIKE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")


@functools.lru_cache(maxsize=1)
def _condition_tables() -> tuple[tuple[str, ...], dict[str, str], list[tuple[str, str]]]:
    names: list[str] = []
    by_text: dict[str, str] = {}
    prefixes: list[tuple[str, str]] = []
    for row in _read_csv("conditions.csv"):
        name = row["condition"].strip()
        names.append(name)
        by_text[fold(name)] = name
        for synonym in filter(None, (s.strip() for s in row["synonyms"].split(";"))):
            by_text[fold(synonym)] = name
        for prefix in filter(None, (p.strip() for p in row["icd10_prefixes"].split(";"))):
            prefixes.append((prefix.replace(".", "").upper(), name))
    prefixes.sort(key=lambda item: -len(item[0]))  # longest prefix first
    return tuple(names), by_text, prefixes


@functools.lru_cache(maxsize=1)
def _snomed_conditions() -> dict[str, str]:
    return {code.strip(): row["condition"].strip()
            for row in _read_csv("conditions.csv")
            for code in (row.get("snomed_codes") or "").split(";") if code.strip()}


def condition_for_snomed(code: object) -> str | None:
    """The condition a SNOMED CT concept id stands for (``data/conditions.csv``,
    column ``snomed_codes``), or None when it is none of the clinic's 13."""
    return _snomed_conditions().get(str(code or "").strip())


def condition_names() -> tuple[str, ...]:
    """The clinic's 13 conditions in the order of ``data/conditions.csv``."""
    return _condition_tables()[0]


def map_condition(raw: object) -> str | None:
    """Canonical condition for a name, synonym or ICD-10-CM code.

    Empty -> None (this row says nothing).  Unknown -> ``Other``.
    Codes match with or without their dot, case-blind; longest prefix wins.
    """
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    _, by_text, prefixes = _condition_tables()
    folded = fold(text)
    if folded in by_text:
        return by_text[folded]
    code = text.upper().replace(" ", "")
    if _ICD_LIKE.match(code):
        bare = code.replace(".", "")
        for prefix, name in prefixes:
            if bare.startswith(prefix):
                return name
    return OTHER


# --- medications ------------------------------------------------------------

@dataclass(frozen=True)
class Drug:
    generic: str
    drug_class: str          # "opioid" or "benzodiazepine"
    factor: float | None     # CDC 2022 MME factor (opioids)
    dose_unit: str | None    # "mg" or "mcg/hr"


@functools.lru_cache(maxsize=1)
def drug_lexicon() -> list[tuple[str, Drug]]:
    """(folded name, drug) pairs, longest name first, for free-text matching."""
    lexicon: list[tuple[str, Drug]] = []
    for row in _read_csv("mme_factors_cdc2022.csv"):
        drug = Drug(row["drug"].strip(), "opioid", float(row["factor"]),
                    row["dose_unit"].strip())
        names = [row["drug"]] + [s for s in row["synonyms"].split(";") if s.strip()]
        lexicon += [(fold(n), drug) for n in names]
    for row in _read_csv("benzodiazepines.csv"):
        drug = Drug(row["drug"].strip(), "benzodiazepine", None, None)
        names = [row["drug"]] + [s for s in row["synonyms"].split(";") if s.strip()]
        lexicon += [(fold(n), drug) for n in names]
    lexicon.sort(key=lambda item: -len(item[0]))
    return lexicon


def match_drug(raw: object, unit: object = None) -> Drug | None:
    """Match a free-text drug ("Percocet 5/325 mg") to a known drug.

    Plain "fentanyl" is the transdermal patch when the unit is mcg/hr.
    """
    folded = "_" + fold(raw) + "_"
    for name, drug in drug_lexicon():
        if f"_{name}_" in folded:
            return drug
    if "_fentanyl_" in folded:
        if fold_unit(unit) in PATCH_RATE_UNITS or "patch" in folded or "transdermal" in folded:
            return next(d for n, d in drug_lexicon() if d.generic == "fentanyl transdermal")
    return None


def reference_unit(generic: str | None) -> str | None:
    """The unit a drug's MME factor applies to: mg, or mcg/hr for the patch."""
    return next((d.dose_unit for _, d in drug_lexicon() if d.generic == generic), None)


# --------------------------------------------------------------------------
# dose units: one rule for the medication export and FHIR dosages
#
# A dose is converted to its drug's reference unit (mg; mcg/hr for the
# fentanyl patch) before the MME factor applies.  A unit that cannot be
# converted for that drug (mcg/hr for morphine, mg for a patch, mL without a
# strength per mL) leaves the dose, and so the date's MME, unknown: never a
# number in the wrong unit.

MASS_UNITS_MG = {"mg": 1.0, "milligram": 1.0, "milligrams": 1.0, "g": 1000.0, "gram": 1000.0,
                 "grams": 1000.0, "mcg": 0.001, "ug": 0.001, "microgram": 0.001,
                 "micrograms": 0.001}
PATCH_RATE_UNITS = frozenset({"mcg/hr", "mcg/h", "mcg/hour", "ug/hr", "ug/h", "ug/hour",
                              "microgram/hr", "microgram/hour", "micrograms/hour",
                              "mcg_hr", "mcg_h"})
VOLUME_UNITS = frozenset({"ml", "milliliter", "milliliters", "millilitre", "millilitres"})
# One tablet, capsule or patch: the dose is a count of the product's strength.
UNIT_DOSE_FORMS = frozenset({"tablet", "tablets", "tab", "tabs", "capsule", "capsules", "cap",
                             "caps", "pill", "pills", "patch", "patches", "each", "ea",
                             "{tbl}", "{tablet}", "{tablets}", "{capsule}", "{capsules}",
                             "{patch}", "1"})


def fold_unit(unit: object) -> str | None:
    """A dose unit as compared: lower case, no blanks, micro sign as u."""
    if unit is None or (isinstance(unit, float) and unit != unit):
        return None
    text = "".join(str(unit).split()).lower().replace("\u00b5", "u").replace("\u03bc", "u")
    return text or None


def unit_fold_sql(expression: str) -> str:
    """:func:`fold_unit` in SQL."""
    return (f"nullif(lower(replace(replace(regexp_replace(trim(CAST({expression} AS VARCHAR)), "
            f"'\\s+', '', 'g'), '\u00b5', 'u'), '\u03bc', 'u')), '')")


def _in(values) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values))


def dose_sql(value: str, unit: str, drug_unit: str, strength: str, strength_unit: str) -> str:
    """SQL: a dose in its drug's reference unit, NULL when its unit cannot be
    converted for that drug.  Arguments are SQL expressions: the dose, its
    unit *folded* (:func:`unit_fold_sql`), the drug's reference unit
    (:func:`reference_unit`; NULL, as for a benzodiazepine, means mg), and the product's strength per tablet, patch or
    mL with its unit (mg, mcg/hr or mg/ml; NULL when unknown)."""
    per_mg = " ".join(f"WHEN '{u}' THEN {f!r}" for u, f in MASS_UNITS_MG.items())
    return f"""(CASE
        WHEN {value} IS NULL THEN NULL
        WHEN coalesce({drug_unit}, 'mg') = 'mg' THEN CASE
            WHEN {unit} IS NULL THEN {value}
            WHEN {unit} IN ({_in(MASS_UNITS_MG)}) THEN {value} * CASE {unit} {per_mg} END
            WHEN {unit} IN ({_in(VOLUME_UNITS)}) AND {strength_unit} = 'mg/ml'
                THEN {value} * {strength}
            WHEN {unit} IN ({_in(UNIT_DOSE_FORMS)}) AND {strength_unit} = 'mg'
                THEN {value} * {strength}
            END
        WHEN {drug_unit} = 'mcg/hr' THEN CASE
            WHEN {unit} IS NULL OR {unit} IN ({_in(PATCH_RATE_UNITS)}) THEN {value}
            WHEN {unit} IN ({_in(UNIT_DOSE_FORMS)}) AND {strength_unit} = 'mcg/hr'
                THEN {value} * {strength}
            END
        END)"""


# A number that is part of a product name ("Tylenol #3": 30 mg codeine) is
# not a strength.  In a combination ("5/325", "300/30") the opioid is the
# smaller number: the other is acetaminophen or ibuprofen (200 mg or more).
_FIRST_NUMBER = re.compile(r"(?<![#\d.])(\d+(?:\.\d+)?)(?:\s*/\s*(\d+(?:\.\d+)?))?")


def dose_from_text(raw: object) -> float | None:
    """The opioid strength written in a drug label: "Percocet 5/325 mg" -> 5,
    "Tylenol-Codeine 300/30" -> 30; "Tylenol #3" -> None (no strength)."""
    match = _FIRST_NUMBER.search(str(raw or ""))
    if not match:
        return None
    numbers = [float(n) for n in match.groups() if n is not None]
    return min(numbers)
