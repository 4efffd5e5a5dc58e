"""Adverse events counted by controlled category (issue 14, SPEC §2 and §4):
the bundled table, a clinic's own rows, the split and fold rule checked
against an independent Python reading of the table, and free text that never
leaves the clinical team (a name and a phone number typed into the field are
counted as "other", never shown)."""

from __future__ import annotations

import csv
import random

import pytest

from analysis.metrics import adverse_events, safety
from analysis.core.audience import Audience
from analysis.storage.reference import fold
from tests.helpers.builders import measures_clinic, write_csv

PROBE = "called John Smith 555-123-4567"
PROBE_WORDS = ("john", "smith", "555", "4567", "called")


def test_categories_by_hand():
    cells = ["Nausea; headache", PROBE, "Emergence-Reaction", "dissociation", None, "none",
             "hypertension (SBP 190, treated); nausea", "N/A", "  ;  ", "Dizziness , NAUSEA",
             "vomit,Vomiting", "elevated BP", "desaturation", "drowsy", "agitation",
             "hallucinations", "jaw tightness"]
    assert adverse_events.categorise(cells) == [
        ["headache", "nausea"], ["other"], ["dissociation or emergence reaction"],
        ["dissociation or emergence reaction"], [], [], ["hypertension", "nausea"], [], [],
        ["dizziness", "nausea"], ["vomiting"], ["hypertension"], ["low oxygen saturation"],
        ["sedation"], ["anxiety"], ["hallucination"], ["other"]]


def test_the_bundled_table_has_spec_categories_and_one_for_dissociation_and_emergence():
    table = adverse_events.load()
    for name in ("nausea", "vomiting", "dissociation or emergence reaction", "hypertension",
                 "headache", "dizziness", "sedation", "other"):     # SPEC §2
        assert name in table.names
    assert table.category("dissociation") == table.category("emergence_reaction") \
        == "dissociation or emergence reaction"
    # every synonym in the file maps to the category of its row
    with open(adverse_events.BUNDLED, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            for text in [row["category"], *row["synonyms"].split(";")]:
                if fold(text):
                    assert table.category(fold(text)) == row["category"], text


def test_the_sql_rule_equals_an_independent_reading_of_the_table():
    """categorise (the SQL the counts use) against plain Python: drop text in
    parentheses, split on ; and ,, fold (reference.fold), look up."""
    table = adverse_events.load()
    known = [t for t, _ in table.mapping]
    pieces = known + ["", " ", "none", "No", "n/a", "nil", "0", "FALSE", PROBE, "(x)",
                      "Émergence réaction", "nausea (mild)", "head-ache", "HEAD  ACHE", "?"]
    rng = random.Random(14)
    cells = []
    for _ in range(1500):
        parts = [rng.choice(pieces).replace("_", rng.choice(["_", " ", "-", "  "]))
                 for _ in range(rng.randint(1, 4))]
        parts = [p.upper() if rng.random() < 0.2 else p for p in parts]
        cells.append("".join(p + rng.choice([";", ",", " ; ", ", "]) for p in parts)[:-1])

    def expected(cell: str) -> list[str]:
        import re
        text = re.sub(r"\([^)]*\)", " ", cell)
        found = set()
        for part in re.split(r"[;,]", text):
            folded = fold(part)
            if folded and folded not in ("none", "no", "n_a", "na", "nil", "0", "false"):
                found.add(table.category(folded))
        return sorted(found)

    assert adverse_events.categorise(cells) == [expected(c) for c in cells]
    # one event as written: the same category as the counts give it
    for piece in pieces:
        found = adverse_events.categorise([piece])[0]
        if found:
            assert [adverse_events.category(piece)] == found, piece
    assert adverse_events.category("Dissociation or emergence reaction") == \
        "dissociation or emergence reaction"


def test_a_clinic_adds_a_synonym_and_a_category_beside_its_database(tmp_path):
    db_path = tmp_path / "outcomes.duckdb"
    cells = ["sick to stomach", "eye flicker", "agitation"]
    assert adverse_events.categorise(cells, db_path) == [["other"], ["other"], ["anxiety"]]
    own = adverse_events.clinic_file(db_path)
    assert own == tmp_path / "outcomes.adverse_event_categories.csv"
    write_csv(own, [["category", "synonyms"], ["nausea", "sick to stomach"],
                 ["Nystagmus", "eye flicker"],
                 ["dissociation or emergence reaction", "agitation"]])   # wins over bundled
    assert adverse_events.categorise(cells, db_path) == [
        ["nausea"], ["nystagmus"], ["dissociation or emergence reaction"]]
    assert "nystagmus" in adverse_events.load(db_path).names
    # a file without the category column: one line naming the file
    write_csv(own, [["text", "group"], ["x", "y"]])
    with pytest.raises(adverse_events.CategoriesFileError,
                       match=r"^outcomes\.adverse_event_categories\.csv: expected the columns"):
        adverse_events.load(db_path)


PROBE_ROWS = [
    {"patient_id": "A1", "visit_date": "2025-01-01", "visit_type": "intake", "weight_kg": 80},
    {"patient_id": "A1", "visit_date": "2025-01-05", "visit_type": "infusion", "route": "IV",
     "ketamine_mg": 40, "adverse_event": f"Nausea; {PROBE}"},
    {"patient_id": "A1", "visit_date": "2025-01-08", "visit_type": "infusion", "route": "IV",
     "ketamine_mg": 40, "adverse_event": "Emergence reaction"},
    {"patient_id": "A1", "visit_date": "2025-01-12", "visit_type": "infusion", "route": "IV",
     "ketamine_mg": 40, "adverse_event": "dissociation, nausea"},
    {"patient_id": "A2", "visit_date": "2025-01-06", "visit_type": "infusion", "route": "IM",
     "ketamine_mg": 40, "adverse_event": "bad trip"},
    {"patient_id": "A2", "visit_date": "2025-01-09", "visit_type": "booster", "route": "IM",
     "ketamine_mg": 40},
]


@pytest.fixture(scope="module")
def probe_clinic(tmp_path_factory):
    return measures_clinic(tmp_path_factory.mktemp("ae_probe"), PROBE_ROWS)


def test_safety_counts_categories_and_never_carries_the_text(probe_clinic):
    summary = safety.safety_summary(probe_clinic)
    assert summary.sessions == 5
    # dissociation and emergence reaction: one category, once per session
    assert summary.rate("dissociation or emergence reaction").events == 2
    assert summary.rate("nausea").events == 2
    assert summary.rate("other").events == 2            # the probe and "bad trip"
    assert summary.rate("any_adverse_event").events == 4
    assert set(summary.adverse_event_types) == {
        "nausea", "dissociation or emergence reaction", "other"}
    rows = safety.infusions(probe_clinic)
    everything = (repr(summary) + summary.rates.to_csv() + rows.to_csv()).lower()
    for word in PROBE_WORDS + ("bad trip",):
        assert word not in everything
    assert "adverse_event" not in rows.columns


def test_the_text_as_exported_is_for_the_clinical_team_only(probe_clinic):
    texts = adverse_events.texts(probe_clinic, Audience.CLINICAL)
    by_text = dict(zip(texts["text"], texts["categories"]))
    assert by_text[f"nausea; {PROBE.lower()}"] == "nausea; other"
    assert by_text["emergence reaction"] == "dissociation or emergence reaction"
    assert by_text["bad trip"] == "other"
    assert texts["sessions"].sum() == 4
    for audience in (Audience.ANALYST, Audience.EXTERNAL):
        with pytest.raises(PermissionError):
            adverse_events.texts(probe_clinic, audience)


def test_a_bad_clinic_table_is_one_line_on_the_safety_page(probe_clinic, tmp_path, monkeypatch):
    import shutil

    from tests.helpers.apptest import run_page
    clinic_db = tmp_path / "clinic.duckdb"
    shutil.copy(probe_clinic.db_path, clinic_db)
    write_csv(adverse_events.clinic_file(clinic_db), [["text", "group"], ["x", "y"]])
    monkeypatch.setenv("OUTCOMES_DB", str(clinic_db))
    app = run_page("pages/safety.py")
    assert not app.exception, [e.message for e in app.exception]
    assert [e.value.replace("\\", "") for e in app.error] == [
        "The clinic's adverse-event categories cannot be read: "
        "clinic.adverse_event_categories.csv: expected the columns category,synonyms; "
        "found text, group"]
