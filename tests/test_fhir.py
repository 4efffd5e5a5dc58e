"""The FHIR R4 export contract (SPEC §2 "FHIR R4 export"), one test per
mapping rule, on hand-written NDJSON ingested into a real DuckDB file.

Every ingest goes through ``run``, which also checks the accounting:
resources read = used + quarantined + collapsed + skipped, and that the
ingest log agrees.
"""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest

from analysis.storage import db, model_chain
from analysis.ingest.fhir.export import ingest_export
from analysis.ingest.pipeline import ingest_files
from analysis.ingest.ingest_log import FileResult
from analysis.access import keys

INGEST_DATE = dt.date(2024, 12, 31)
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"


# --------------------------------------------------------------------------
# resources


def patient(pid="p1"):
    return {"resourceType": "Patient", "id": pid,
            "name": [{"family": "Quackenbush", "given": ["Ottoline"]}],
            "telecom": [{"system": "phone", "value": "(720) 555-0199"}],
            "address": [{"line": ["77 Wisteria Close"], "city": "Golden"}],
            "birthDate": "1961-07-23",
            "identifier": [{"system": "urn:mrn", "value": "MRN-4417"}]}


def encounter(eid, start, text=None, coding=None, status="finished", pid="p1", site=None,
              provider=None, participant=None):
    resource = {"resourceType": "Encounter", "id": eid, "status": status,
                "class": {"code": "AMB"}, "subject": {"reference": f"Patient/{pid}"},
                "period": {"start": start}}
    if text or coding:
        resource["type"] = [{**({"text": text} if text else {}),
                             **({"coding": [coding]} if coding else {})}]
    if site:
        resource["location"] = [{"location": {"display": site}}]
    if provider:
        resource["serviceProvider"] = {"display": provider}
    if participant:
        resource["participant"] = participant
    return resource


def obs(oid, code, value, when, status="final", enc=None, pid="p1", system=LOINC, unit=None,
        components=None, value_key="valueQuantity"):
    resource = {"resourceType": "Observation", "id": oid, "status": status,
                "code": {"coding": [{"system": system, "code": code}]},
                "effectiveDateTime": when}
    if pid is not None:
        resource["subject"] = {"reference": f"Patient/{pid}"}
    if enc:
        resource["encounter"] = {"reference": f"Encounter/{enc}"}
    if value is not None:
        resource[value_key] = ({"value": value, **({"unit": unit} if unit else {})}
                               if value_key == "valueQuantity" else value)
    if components:
        resource["component"] = [
            {"code": {"coding": [{"system": LOINC, "code": c}]}, "valueQuantity": {"value": v}}
            for c, v in components]
    return resource


def ketamine(aid, start, end, mg=None, route="47625008", enc=None, pid="p1", status="completed",
             medication=None):
    resource = {"resourceType": "MedicationAdministration", "id": aid, "status": status,
                "subject": {"reference": f"Patient/{pid}"},
                "medicationCodeableConcept": medication or {
                    "coding": [{"system": RXNORM, "code": "6130", "display": "ketamine"}]},
                "effectivePeriod": {"start": start, "end": end},
                "dosage": {"route": {"coding": [{"system": SNOMED, "code": route}]},
                           **({"dose": {"value": mg, "unit": "mg"}} if mg is not None else {})}}
    if enc:
        resource["context"] = {"reference": f"Encounter/{enc}"}
    return resource


def statement(sid, day, display=None, text=None, frequency=None, period_unit="d", count=1,
              pid="p1", rxnorm=True, kind="MedicationStatement", status="active"):
    coding = [{"system": RXNORM if rxnorm else "urn:local:meds", "display": display}] if display else []
    dosage = [{**({"timing": {"repeat": {"frequency": frequency, "period": 1,
                                         "periodUnit": period_unit}}} if frequency else {}),
               "doseAndRate": [{"doseQuantity": {"value": count}}]}]
    resource = {"resourceType": kind, "id": sid, "status": status,
                "subject": {"reference": f"Patient/{pid}"},
                "medicationCodeableConcept": {**({"coding": coding} if coding else {}),
                                              **({"text": text} if text else {})}}
    if kind == "MedicationStatement":
        resource.update(effectiveDateTime=day, dosage=dosage)
    else:
        resource.update(authoredOn=day, intent="order", dosageInstruction=dosage)
    return resource


def condition(cid, system, code, recorded, pid="p1", display=None, verification=None):
    resource = {"resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{pid}"},
                "code": {"coding": [{"system": system, "code": code,
                                     **({"display": display} if display else {})}]},
                "recordedDate": recorded}
    if verification:
        resource["verificationStatus"] = {"coding": [{"code": verification}]}
    return resource


# --------------------------------------------------------------------------
# running


@pytest.fixture
def con(tmp_path):
    connection = db.connect(tmp_path / "outcomes.duckdb")
    yield connection
    connection.close()


def export(folder: Path, *resources) -> Path:
    """Write resources as a Bulk Data export: one NDJSON file per type."""
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    for kind, items in by_type.items():
        (folder / f"{kind}.000.ndjson").write_text(
            "".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return folder


def run(con, *paths, ingest_date=INGEST_DATE, **kwargs) -> FileResult:
    summary = ingest_files(con, [Path(p) for p in paths], ingest_date=ingest_date, **kwargs)
    assert len(summary.files) == 1
    result = summary.files[0]
    if result.status == "ingested":
        skipped = result.details["resources_skipped"]
        assert result.rows_read == (result.rows_accepted + result.rows_quarantined
                                    + result.duplicates_collapsed + skipped), result
        log = con.execute("SELECT rows_read, rows_accepted, rows_quarantined, export_kind "
                          "FROM ingest_log ORDER BY ingest_id DESC LIMIT 1").fetchall()[0]
        assert log == (result.rows_read, result.rows_accepted, result.rows_quarantined, "fhir")
    return result


def visits(con, columns="visit_date, visit_type"):
    return con.execute(f"SELECT {columns} FROM visits ORDER BY visit_date, visit_type").fetchall()


def quarantine(con):
    return con.execute("SELECT file_name, line, raw_row, reason FROM quarantine "
                       "ORDER BY file_name, line").fetchall()


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# --------------------------------------------------------------------------
# Patient, visit days, visit types


def test_patient_key_is_the_pseudonym_of_its_id_and_nothing_else_is_read(con, tmp_path):
    folder = export(tmp_path / "x", patient(),
                    encounter("e1", "2024-03-01T10:00:00-07:00", text="Intake"))
    result = run(con, folder)
    assert result.status == "ingested"
    assert visits(con, "patient_id, visit_type") == [(keys.pseudonym("p1"), "intake")]
    blob = (tmp_path / "outcomes.duckdb").read_bytes()
    for secret in (b"Quackenbush", b"Ottoline", b"555-0199", b"Wisteria", b"1961-07-23",
                   b"MRN-4417", b'"p1"'):
        assert secret not in blob


def test_local_date_of_a_time_with_an_offset_is_that_day_not_the_next_in_utc(con, tmp_path):
    # 17:30 at UTC-7 is 00:30 the next day in UTC
    folder = export(tmp_path / "x", patient(),
                    encounter("e1", "2024-03-01T17:30:00-07:00", text="Follow-up"),
                    obs("o1", "72514-3", 6, "2024-03-01T23:50:00-07:00"))
    run(con, folder)
    assert visits(con, "visit_date, visit_type, pain_score") == [(day("2024-03-01"), "follow_up", 6.0)]


def test_visit_type_from_encounter_type_text_display_or_a_clinic_code(con, tmp_path):
    codes = tmp_path / "codes.csv"
    codes.write_text("table,system,code,maps_to\n"
                     "encounter_types,urn:clinic:enc,KB,booster\n", encoding="utf-8")
    folder = export(tmp_path / "x", patient(),
                    encounter("e1", "2024-01-02T09:00:00-07:00", text="Consultation"),
                    encounter("e2", "2024-01-03T09:00:00-07:00",
                              coding={"system": "urn:other", "code": "X", "display": "Ketamine Infusion"}),
                    encounter("e3", "2024-03-04T09:00:00-07:00",
                              coding={"system": "urn:clinic:enc", "code": "KB"}),
                    encounter("e4", "2024-03-05T09:00:00-07:00", text="Check-in"))
    run(con, folder, codes_file=str(codes))
    assert visits(con) == [(day("2024-01-02"), "intake"), (day("2024-01-03"), "infusion"),
                           (day("2024-03-04"), "booster"), (day("2024-03-05"), "follow_up")]


def test_encounter_of_unmapped_type_without_ketamine_is_quarantined_with_its_codes(con, tmp_path):
    folder = export(tmp_path / "x", patient(),
                    encounter("e1", "2024-01-02T09:00:00-07:00",
                              coding={"system": "urn:x", "code": "PHONE", "display": "Phone call"}),
                    obs("o1", "72514-3", 5, "2024-01-02T09:05:00-07:00", enc="e1"))
    result = run(con, folder)
    assert visits(con) == []
    assert result.rows_quarantined == 2
    reasons = [r[3] for r in quarantine(con)]
    assert reasons == ["Encounter e1: Encounter type not mapped to a visit type (urn:x|PHONE)",
                       "Observation o1: its Encounter's type is not mapped to a visit type"]


def test_ketamine_without_a_mapped_type_is_a_session_booster_after_28_days(con, tmp_path):
    folder = export(
        tmp_path / "x", patient(),
        # no Encounter at all: the administration makes the day a session
        ketamine("a1", "2024-01-02T10:00:00-07:00", "2024-01-02T10:40:00-07:00", mg=40),
        # an Encounter of an unmapped type with ketamine given in it
        encounter("e2", "2024-01-05T10:00:00-07:00", coding={"system": "urn:x", "code": "OV"}),
        ketamine("a2", "2024-01-05T10:00:00-07:00", "2024-01-05T10:40:00-07:00", mg=45, enc="e2"),
        # 28 days after the previous session: still induction
        ketamine("a3", "2024-02-02T10:00:00-07:00", "2024-02-02T10:40:00-07:00"),
        # 29 days after: a booster
        ketamine("a4", "2024-03-02T10:00:00-07:00", "2024-03-02T10:40:00-07:00"),
        # a Procedure naming ketamine
        {"resourceType": "Procedure", "id": "pr1", "status": "completed",
         "subject": {"reference": "Patient/p1"}, "code": {"text": "Ketamine infusion therapy"},
         "performedDateTime": "2024-03-06T10:00:00-07:00"})
    run(con, folder)
    assert visits(con, "visit_date, visit_type, ketamine_mg, route") == [
        (day("2024-01-02"), "infusion", 40.0, "IV"), (day("2024-01-05"), "infusion", 45.0, "IV"),
        (day("2024-02-02"), "infusion", None, "IV"), (day("2024-03-02"), "booster", None, "IV"),
        (day("2024-03-06"), "infusion", None, None)]


def test_previous_session_already_stored_counts_for_the_28_day_rule(con, tmp_path):
    run(con, export(tmp_path / "a", patient(),
                    ketamine("a1", "2024-01-02T10:00:00-07:00", "2024-01-02T10:40:00-07:00")))
    run(con, export(tmp_path / "b", patient(),
                    ketamine("a2", "2024-01-20T10:00:00-07:00", "2024-01-20T10:40:00-07:00")))
    assert visits(con) == [(day("2024-01-02"), "infusion"), (day("2024-01-20"), "infusion")]


def test_a_day_with_only_observations_is_a_follow_up(con, tmp_path):
    run(con, export(tmp_path / "x", patient(), obs("o1", "44261-6", 12, "2024-04-01")))
    assert visits(con, "visit_date, visit_type, phq9") == [(day("2024-04-01"), "follow_up", 12)]


def test_dose_route_and_site_from_administration_location_or_provider(con, tmp_path):
    folder = export(
        tmp_path / "x", patient(),
        encounter("e1", "2024-01-02T09:00:00-07:00", text="Infusion", site="Boulder",
                  provider="Front Range Clinic"),
        ketamine("a1", "2024-01-02T09:10:00-07:00", "2024-01-02T09:50:00-07:00", mg=0.05,
                 route="78421000", enc="e1"),
        encounter("e2", "2024-01-04T09:00:00-07:00", text="Infusion", provider="Front Range Clinic"))
    run(con, folder)
    assert visits(con, "visit_date, site, route, ketamine_mg") == [
        (day("2024-01-02"), "Boulder", "IM", 0.05), (day("2024-01-04"), "Front Range Clinic", None, None)]


def test_provider_is_the_practitioner_id_of_the_encounter_participant(con, tmp_path):
    """Encounter.participant -> provider: the id of the first Practitioner
    reference (R4 individual, R5 actor, an absolute URL too); a display name
    is never read, another kind of participant is ignored."""
    def who(reference, display="Dr Jane Roe"):
        return {"individual": {"reference": reference, "display": display}}

    folder = export(
        tmp_path / "x", patient(),
        encounter("e1", "2024-01-02T09:00:00-07:00", text="Infusion",
                  participant=[who("RelatedPerson/r1"), who("Practitioner/dr-7"),
                               who("Practitioner/dr-8")]),
        encounter("e2", "2024-01-04T09:00:00-07:00", text="Infusion",
                  participant=[{"actor": {"reference": "https://ehr.example/fhir/Practitioner/"
                                                       "dr-9/_history/2"}}]),
        encounter("e3", "2024-01-06T09:00:00-07:00", text="Infusion",
                  participant=[{"individual": {"display": "Dr No Reference"}}]),
        encounter("e4", "2024-01-08T09:00:00-07:00", text="Infusion"))
    run(con, folder)
    assert visits(con, "visit_date, provider") == [
        (day("2024-01-02"), "dr-7"), (day("2024-01-04"), "dr-9"), (day("2024-01-06"), None),
        (day("2024-01-08"), None)]
    stored = con.execute("SELECT * FROM visits").fetchall()
    assert "Jane Roe" not in repr(stored) and "No Reference" not in repr(stored)


# --------------------------------------------------------------------------
# observations


def test_pain_before_and_after_the_infusion_on_a_treatment_day(con, tmp_path):
    folder = export(
        tmp_path / "x", patient(),
        encounter("e1", "2024-01-02T13:00:00-07:00", text="Infusion"),
        obs("o1", "72514-3", 7, "2024-01-02T13:05:00-07:00", enc="e1"),
        ketamine("a1", "2024-01-02T13:15:00-07:00", "2024-01-02T13:55:00-07:00", enc="e1"),
        obs("o2", "72514-3", 3, "2024-01-02T14:10:00-07:00", enc="e1"),
        # a later one after the infusion: pain_post is the first after it ended
        obs("o3", "72514-3", 4, "2024-01-02T15:10:00-07:00", enc="e1"),
        # a follow-up day: never pain_post
        encounter("e2", "2024-01-20T13:00:00-07:00", text="Follow-up"),
        obs("o4", "72514-3", 5, "2024-01-20T16:00:00-07:00", enc="e2"))
    run(con, folder)
    assert visits(con, "visit_type, pain_score, pain_post") == [
        ("infusion", 7.0, 3.0), ("follow_up", 5.0, None)]


def test_systolic_from_blood_pressure_panels_components_highest_that_day(con, tmp_path):
    folder = export(
        tmp_path / "x", patient(), encounter("e1", "2024-01-02T13:00:00-07:00", text="Infusion"),
        obs("bp1", "85354-9", None, "2024-01-02T13:10:00-07:00", enc="e1",
            components=[("8480-6", 142), ("8462-4", 91)]),
        obs("bp2", "85354-9", None, "2024-01-02T13:40:00-07:00", enc="e1",
            components=[("8480-6", 171), ("8462-4", 99)]),
        obs("bp3", "8480-6", 150, "2024-01-02T13:50:00-07:00", enc="e1"),
        obs("s1", "59408-5", 96, "2024-01-02T13:20:00-07:00", enc="e1", unit="%"),
        obs("s2", "2708-6", 93, "2024-01-02T13:30:00-07:00", enc="e1", unit="%"))
    run(con, folder)
    assert visits(con, "sbp_max, spo2_min") == [(171.0, 93.0)]


def test_cancelled_and_entered_in_error_observations_are_skipped_and_counted(con, tmp_path):
    folder = export(
        tmp_path / "x", patient(), encounter("e1", "2024-01-02T13:00:00-07:00", text="Follow-up"),
        obs("o1", "72514-3", 6, "2024-01-02T13:05:00-07:00", enc="e1"),
        obs("o2", "72514-3", 10, "2024-01-02T13:06:00-07:00", enc="e1", status="entered-in-error"),
        obs("o3", "44261-6", 27, "2024-01-02T13:07:00-07:00", enc="e1", status="cancelled"),
        obs("o4", "44261-6", 26, "2024-01-02T13:07:00-07:00", enc="e1", status="preliminary"),
        obs("o5", "8867-4", 72, "2024-01-02T13:08:00-07:00", enc="e1"))
    result = run(con, folder)
    assert visits(con, "pain_score, phq9") == [(6.0, None)]
    assert result.details["skipped"] == {
        "Observation status entered-in-error": 1, "Observation status cancelled": 1,
        "Observation status preliminary": 1, "Observation code not mapped": 1}
    assert result.details["resources_skipped"] == 4
    message = con.execute("SELECT message FROM ingest_log").fetchall()[0][0]
    assert "Observation status entered-in-error: 1" in message


def test_mood_weight_and_clinic_codes_and_value_problems(con, tmp_path):
    codes = tmp_path / "codes.csv"
    codes.write_text("table,system,code,maps_to\n"
                     "observation_codes,urn:clinic:obs,PGIC,pgic\n"
                     "observation_codes,urn:clinic:obs,MME,MME per day\n", encoding="utf-8")
    folder = export(
        tmp_path / "x", patient(), encounter("e1", "2024-01-02T13:00:00-07:00", text="Follow-up"),
        obs("o1", "44261-6", 14, "2024-01-02T13:01:00-07:00", enc="e1"),
        obs("o2", "101698-9", 40, "2024-01-02T13:02:00-07:00", enc="e1", value_key="valueInteger"),
        obs("o3", "29463-7", 176.37, "2024-01-02T13:03:00-07:00", enc="e1", unit="[lb_av]"),
        obs("o4", "PGIC", 2, "2024-01-02T13:04:00-07:00", enc="e1", system="urn:clinic:obs",
            value_key="valueInteger"),
        obs("o5", "MME", 45, "2024-01-02T13:05:00-07:00", enc="e1", system="urn:clinic:obs"),
        obs("o6", "72514-3", 11, "2024-01-02T13:06:00-07:00", enc="e1"))
    result = run(con, folder, codes_file=str(codes))
    (row,) = visits(con, "phq9, pcl5, round(weight_kg, 2), pgic, opioid_mme_per_day, pain_score")
    assert row == (14, 40, 80.0, 2, 45.0, None)
    assert result.values_nulled == 1
    assert con.execute("SELECT file_name, line, column_name, raw_value, reason FROM value_issues"
                       ).fetchall() == [("x/Observation.000.ndjson", 6, "pain_score", "11",
                                         "out of range (must be between 0 and 10)")]


def test_adverse_events_by_encounter_and_coded_observation(con, tmp_path):
    codes = tmp_path / "codes.csv"
    codes.write_text("table,system,code,maps_to\nobservation_codes,urn:c,AE,adverse_event\n",
                     encoding="utf-8")
    folder = export(
        tmp_path / "x", patient(), encounter("e1", "2024-01-02T13:00:00-07:00", text="Infusion"),
        {"resourceType": "AdverseEvent", "id": "ae1", "actuality": "actual",
         "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"},
         "event": {"coding": [{"system": SNOMED, "code": "422587007", "display": "Nausea"}]},
         "date": "2024-01-02T13:50:00-07:00"},
        {"resourceType": "AdverseEvent", "id": "ae2", "actuality": "potential",
         "subject": {"reference": "Patient/p1"}, "event": {"text": "Headache"},
         "date": "2024-01-02T13:50:00-07:00"},
        obs("o1", "AE", None, "2024-01-02T13:51:00-07:00", enc="e1", system="urn:c")
        | {"valueCodeableConcept": {"text": "Dizziness"}})
    result = run(con, folder, codes_file=str(codes))
    assert visits(con, "adverse_event") == [("dizziness; nausea",)]
    assert result.details["skipped"] == {"AdverseEvent potential": 1}


# --------------------------------------------------------------------------
# conditions


def test_condition_by_snomed_ct(con, tmp_path):
    run(con, export(tmp_path / "x", patient(), encounter("e1", "2024-01-02T09:00:00-07:00", text="Intake"),
                    condition("c1", SNOMED, "203082005", "2023-11-01", display="Fibromyalgia (disorder)")))
    assert visits(con, "condition, condition_raw") == [("Fibromyalgia", "Fibromyalgia (disorder)")]


def test_condition_earliest_of_the_thirteen_icd_longest_prefix_refuted_skipped(con, tmp_path):
    folder = export(
        tmp_path / "x", patient(),
        encounter("e1", "2024-01-02T09:00:00-07:00", text="Intake"),
        encounter("e2", "2024-01-09T09:00:00-07:00", text="Follow-up"),
        condition("c0", ICD10, "I10", "2015-01-01"),                          # not one of the 13
        condition("c1", SNOMED, "37796009", "2016-01-01", verification="refuted"),
        condition("c2", ICD10, "G43.A0", "2020-05-05"),                       # cyclic vomiting
        condition("c3", ICD10, "M79.7", "2021-05-05"))
    result = run(con, folder)
    assert visits(con, "visit_type, condition") == [("intake", "Cyclic vomiting"), ("follow_up", None)]
    assert result.details["skipped"] == {"Condition refuted": 1}


def test_condition_other_when_none_of_the_thirteen(con, tmp_path):
    run(con, export(tmp_path / "x", patient(), encounter("e1", "2024-01-02T09:00:00-07:00", text="Intake"),
                    {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                     "code": {"text": "Complex regional pain syndrome"}}))
    assert visits(con, "condition") == [("Other",)]


# --------------------------------------------------------------------------
# medications


def stored_mme(con):
    """MME and benzodiazepine flag of each visit as the outcome models see
    them (the medication rows fill what the visit does not say)."""
    model = model_chain.models()["stg_visits"].sql
    return con.execute(f"SELECT visit_date, opioid_mme_per_day, benzodiazepine FROM ({model}) "
                       "ORDER BY visit_date").fetchall()


def test_dose_quantities_are_converted_by_the_medication_exports_rule(con, tmp_path):
    """The FHIR dose and the medication export share one unit rule
    (reference.dose_sql): micrograms become mg, a unitless dose of a product
    with a strength counts tablets, and a patch rate given for a tablet
    leaves the date's MME unknown, never a number in the wrong unit."""
    def dosed(sid, day, display, value, unit):
        resource = statement(sid, day, display, frequency=2)
        quantity = resource["dosage"][0]["doseAndRate"][0]["doseQuantity"]
        quantity["value"] = value
        if unit:
            quantity.update(unit=unit, code=unit, system="http://unitsofmeasure.org")
        return resource

    folder = export(
        tmp_path / "x", patient(),
        encounter("e1", "2024-01-02T09:00:00-07:00", text="Intake"),
        encounter("e2", "2024-01-03T09:00:00-07:00", text="Intake"),
        encounter("e3", "2024-01-04T09:00:00-07:00", text="Intake"),
        dosed("s1", "2024-01-02", "Hydromorphone Hydrochloride 2 MG Oral Tablet", 1000, "ug"),
        dosed("s2", "2024-01-03", "Morphine Sulfate 15 MG Oral Tablet", 2, None),
        dosed("s3", "2024-01-04", "Morphine Sulfate 15 MG Oral Tablet", 10, "ug/h"))
    run(con, folder)
    mme = con.execute("SELECT record_date::VARCHAR, mme FROM medications ORDER BY 1").fetchall()
    assert mme == [("2024-01-02", pytest.approx(1 * 2 * 5.0)),   # 1 mg x 2/day x 5
                   ("2024-01-03", pytest.approx(30 * 2 * 1.0)),  # 2 tablets x 15 mg x 2/day
                   ("2024-01-04", None)]
    assert [day for day, mme, _ in stored_mme(con)] == [dt.date(2024, 1, 2), dt.date(2024, 1, 3),
                                                       dt.date(2024, 1, 4)]
    assert stored_mme(con)[2][1] is None


def test_medication_statement_with_an_rxnorm_combination_product(con, tmp_path):
    folder = export(
        tmp_path / "x", patient(), encounter("e1", "2024-01-02T09:00:00-07:00", text="Intake"),
        statement("s1", "2024-01-02",
                  "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet", frequency=4,
                  count=2),
        statement("s2", "2024-01-02", "72 HR Fentanyl 0.025 MG/HR Transdermal System"),
        statement("s3", "2024-01-02", "Lorazepam 1 MG Oral Tablet", frequency=2),
        statement("s4", "2024-01-02", "Lisinopril 10 MG Oral Tablet", frequency=1))
    result = run(con, folder)
    rows = con.execute("SELECT drug, drug_class, dose, unit, doses_per_day, mme FROM medications "
                       "ORDER BY drug").fetchall()
    assert rows == [("fentanyl transdermal", "opioid", 25.0, "mcg/hr", None, 60.0),
                    ("lorazepam", "benzodiazepine", 1.0, "mg", 2.0, None),
                    ("oxycodone", "opioid", 10.0, "mg", 4.0, 60.0)]
    assert result.details["skipped"] == {"medication neither an opioid nor a benzodiazepine": 1}
    assert stored_mme(con) == [(day("2024-01-02"), 120.0, True)]


def test_medication_request_dosage_instruction_on_its_authored_date(con, tmp_path):
    folder = export(
        tmp_path / "x", patient(), encounter("e1", "2024-02-02T09:00:00-07:00", text="Follow-up"),
        statement("r1", "2024-02-02", "Morphine Sulfate 15 MG Extended Release Oral Tablet",
                  frequency=1, period_unit="h", kind="MedicationRequest"),
        statement("r2", "2024-02-02", "Tramadol Hydrochloride 50 MG Oral Tablet", frequency=2,
                  kind="MedicationRequest", status="entered-in-error"))
    # frequency 1 per 1 h = 24 doses a day
    run(con, folder)
    assert con.execute("SELECT drug, doses_per_day, mme FROM medications").fetchall() == [
        ("morphine", 24.0, 360.0)]


def test_an_unknown_drug_leaves_mme_unknown_never_zero(con, tmp_path):
    folder = export(
        tmp_path / "x", patient(),
        encounter("e1", "2024-01-02T09:00:00-07:00", text="Intake"),
        encounter("e2", "2024-02-02T09:00:00-07:00", text="Follow-up"),
        encounter("e3", "2024-03-02T09:00:00-07:00", text="Follow-up"),
        # a local medication the import cannot identify
        statement("s1", "2024-01-02", text="Kratom powder 2 g", rxnorm=False, frequency=3),
        # an opioid without a CDC factor
        statement("s2", "2024-02-02", "Meperidine Hydrochloride 50 MG Oral Tablet", frequency=4),
        # nothing: no known medications
        {"resourceType": "MedicationStatement", "id": "s3", "status": "active",
         "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2024-03-02",
         "medicationCodeableConcept": {"coding": [{
             "system": "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips",
             "code": "no-known-medications"}]}})
    result = run(con, folder)
    assert stored_mme(con) == [(day("2024-01-02"), None, False), (day("2024-02-02"), None, False),
                               (day("2024-03-02"), 0.0, False)]
    issues = con.execute("SELECT line, column_name, reason FROM value_issues ORDER BY line").fetchall()
    assert [i[1] for i in issues] == ["drug", "drug"]
    assert "MME for this date unknown" in issues[0][2] and "Kratom" not in str(issues)
    assert result.values_nulled == 2


# --------------------------------------------------------------------------
# quarantine, duplicates, replacement, transactions


def test_missing_subject_and_unknown_patient_are_quarantined_with_type_id_and_reason(con, tmp_path):
    folder = export(tmp_path / "x", patient(),
                    obs("o1", "72514-3", 5, "2024-01-02", pid=None),
                    obs("o2", "72514-3", 5, "2024-01-02", pid="ghost"),
                    obs("o3", "72514-3", 5, "2025-06-02"),
                    obs("o4", "72514-3", 5, "2024-01"))
    result = run(con, folder)
    assert quarantine(con) == [
        ("x/Observation.000.ndjson", 1, '{"resourceType":"Observation","id":"o1"}',
         "Observation o1: no subject (patient reference)"),
        ("x/Observation.000.ndjson", 2, '{"resourceType":"Observation","id":"o2"}',
         "Observation o2: subject refers to a patient not in this export"),
        ("x/Observation.000.ndjson", 3, '{"resourceType":"Observation","id":"o3"}',
         "Observation o3: date 2025-06-02 is after the ingest date"),
        ("x/Observation.000.ndjson", 4, '{"resourceType":"Observation","id":"o4"}',
         "Observation o4: date is not a full calendar day")]
    assert result.rows_quarantined == 4 and visits(con) == []
    assert "ghost" not in str(quarantine(con))


def test_patients_of_an_earlier_export_are_known(con, tmp_path):
    run(con, export(tmp_path / "a", patient(), obs("o1", "44261-6", 9, "2024-01-02")))
    result = run(con, export(tmp_path / "b", obs("o2", "44261-6", 8, "2024-02-02")))
    assert result.rows_quarantined == 0
    assert visits(con, "visit_date, phq9") == [(day("2024-01-02"), 9), (day("2024-02-02"), 8)]


def test_duplicate_resources_collapse_and_conflicting_copies_are_quarantined(con, tmp_path):
    one = obs("o1", "44261-6", 9, "2024-01-02")
    folder = export(tmp_path / "x", patient(), one, one,
                    obs("o2", "44261-6", 3, "2024-01-03"), obs("o2", "44261-6", 4, "2024-01-03"))
    result = run(con, folder)
    assert result.duplicates_collapsed == 1 and result.rows_quarantined == 2
    assert [r[3] for r in quarantine(con)] == ["Observation o2: conflicting copies of Observation o2"] * 2
    assert visits(con, "visit_date, phq9") == [(day("2024-01-02"), 9)]


def test_next_months_export_replaces_never_duplicates_and_same_export_changes_nothing(con, tmp_path):
    first = export(tmp_path / "m1", patient(), encounter("e1", "2024-01-02T09:00:00-07:00", text="Intake"),
                   obs("o1", "72514-3", 8, "2024-01-02T09:05:00-07:00", enc="e1"))
    assert run(con, first).status == "ingested"
    assert run(con, first).status == "unchanged"
    second = export(tmp_path / "m2", patient(), encounter("e1", "2024-01-02T09:00:00-07:00", text="Intake"),
                    obs("o1", "72514-3", 7, "2024-01-02T09:05:00-07:00", enc="e1",
                        status="amended"),
                    encounter("e2", "2024-02-02T09:00:00-07:00", text="Follow-up"))
    result = run(con, second)
    assert result.rows_replaced == 1
    assert visits(con, "visit_date, visit_type, pain_score") == [
        (day("2024-01-02"), "intake", 7.0), (day("2024-02-02"), "follow_up", None)]
    assert con.execute("SELECT count(DISTINCT natural_key) FROM visits").fetchall()[0][0] == 2


@pytest.mark.parametrize("step", ["stage", "checked", "quarantine", "delete", "visits", "logged"])
def test_one_transaction_per_export(con, tmp_path, step):
    folder = export(tmp_path / "x", patient(), encounter("e1", "2024-01-02T09:00:00-07:00", text="Intake"),
                    obs("o1", "72514-3", 11, "2024-01-02"), obs("o2", "72514-3", 1, "2024-01-02", pid=None),
                    statement("s1", "2024-01-02", "Oxycodone Hydrochloride 5 MG Oral Tablet", frequency=2))
    with pytest.raises(RuntimeError):
        ingest_export(con, [folder], ingest_date=INGEST_DATE, _fail_after=step)
    for table in ("visits", "medications", "quarantine", "value_issues", "ingest_log"):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] == 0, table


def test_bundles_zip_and_loose_files_are_one_export(con, tmp_path):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:aa", "resource": {k: v for k, v in patient().items() if k != "id"}},
        {"resource": {**encounter("e1", "2024-01-02T09:00:00-07:00", text="Intake"),
                      "subject": {"reference": "urn:uuid:aa"}}}]}
    (tmp_path / "b.json").write_text(json.dumps(bundle, indent=2), encoding="utf-8")
    result = run(con, tmp_path / "b.json")
    assert result.status == "ingested", result.error
    assert visits(con, "patient_id, visit_type") == [(keys.pseudonym("aa"), "intake")]

    folder = export(tmp_path / "z", patient("p2"), obs("o1", "44261-6", 4, "2024-01-05", pid="p2"))
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as archive:
        for path in folder.iterdir():
            archive.write(path, f"output/{path.name}")
    assert run(con, tmp_path / "export.zip").status == "ingested"
    loose = sorted(export(tmp_path / "l", patient("p3"),
                          obs("o9", "44261-6", 6, "2024-01-06", pid="p3")).iterdir())
    assert run(con, *loose).status == "ingested"
    assert con.execute("SELECT count(*) FROM visits").fetchall()[0][0] == 3


# --------------------------------------------------------------------------
# bad input: one line, naming file and line, never a value; nothing stored


def refused(con, *paths) -> str:
    result = run(con, *paths)
    assert result.status == "refused"
    for table in ("visits", "medications", "quarantine", "value_issues"):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] == 0
    assert "\n" not in result.error
    return result.error


def test_truncated_ndjson_line(con, tmp_path):
    folder = export(tmp_path / "x", patient(), obs("o1", "44261-6", 4, "2024-01-05"))
    with open(folder / "Observation.000.ndjson", "a") as handle:
        handle.write('{"resourceType":"Observation","id":"o2","subject":{"reference":"Patient/p1"},"val')
    error = refused(con, folder)
    assert error == ("x/Observation.000.ndjson line 2: not valid JSON (a truncated or broken line); "
                     "nothing from this export was stored")


def test_non_fhir_json(con, tmp_path):
    (tmp_path / "data.json").write_text('{"patients": [{"name": "Ottoline Quackenbush"}]}')
    assert refused(con, tmp_path / "data.json") == \
        "data.json: not FHIR JSON (no resourceType); nothing from this export was stored"
    (tmp_path / "list.ndjson").write_text('[1, 2, 3]\n')
    assert "not FHIR JSON" in refused(con, tmp_path / "list.ndjson")
    (tmp_path / "plain.ndjson").write_text('{"name": "Ottoline Quackenbush"}\n')
    error = refused(con, tmp_path / "plain.ndjson")
    assert error.startswith("plain.ndjson line 1: not a FHIR resource") and "Ottoline" not in error


def test_bundle_of_another_fhir_version(con, tmp_path):
    stu3 = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": patient()},
        {"resource": {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                      "clinicalStatus": "active", "verificationStatus": "confirmed",
                      "code": {"text": "Ottoline's migraine"}}}]}
    (tmp_path / "stu3.json").write_text(json.dumps(stu3))
    error = refused(con, tmp_path / "stu3.json")
    assert error == ("stu3.json line 2: a Condition resource of FHIR STU3; this reads FHIR R4 "
                     "(ask for an R4 export); nothing from this export was stored")
    dstu2 = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "MedicationOrder", "id": "m1"}}]}
    (tmp_path / "dstu2.json").write_text(json.dumps(dstu2))
    assert "of FHIR DSTU2" in refused(con, tmp_path / "dstu2.json")
    r5 = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Encounter", "id": "e1", "status": "completed",
                      "class": [{"coding": [{"code": "AMB"}]}],
                      "subject": {"reference": "Patient/p1"},
                      "actualPeriod": {"start": "2024-01-01"}}}]}
    (tmp_path / "r5.json").write_text(json.dumps(r5))
    assert "an Encounter resource of FHIR R5" in refused(con, tmp_path / "r5.json").replace(
        "a Encounter", "an Encounter")


def test_a_200_mb_single_line_is_refused_without_reading_it(con, tmp_path):
    path = tmp_path / "huge.ndjson"
    with open(path, "wb") as handle:
        handle.write(json.dumps(patient()).encode() + b"\n")
        handle.write(b'{"resourceType":"Observation","valueString":"')
        chunk = b"x" * (1 << 20)
        for _ in range(200):
            handle.write(chunk)
        handle.write(b'"}\n')
    error = refused(con, path)
    assert error == ("huge.ndjson line 2: one line (one resource) is over the limit of 1 MB; "
                     "nothing from this export was stored")


def test_only_unknown_patients_quarantines_every_resource_and_stores_no_visit(con, tmp_path):
    folder = export(tmp_path / "x", patient("p1"),
                    obs("o1", "44261-6", 4, "2024-01-05", pid="stranger"),
                    encounter("e1", "2024-01-05T09:00:00-07:00", text="Intake", pid="stranger"))
    result = run(con, folder)
    assert result.rows_quarantined == 2 and visits(con) == []
    assert {r[3].split(": ", 1)[1] for r in quarantine(con)} == {
        "subject refers to a patient not in this export"}


def test_fhir_files_uploaded_on_the_data_page_are_one_export(tmp_path):
    from analysis.ingest import data_quality
    from tests.helpers.builders import write_grant
    grant = write_grant(tmp_path / "clinic.duckdb")
    folder = export(tmp_path / "x", patient(), encounter("e1", "2024-01-02T09:00:00-07:00", text="Intake"),
                    obs("o1", "44261-6", 11, "2024-01-02T09:10:00-07:00", enc="e1"))
    saved, names = [], {}
    for path in sorted(folder.iterdir()):
        stored = data_quality.save_upload(grant, path.name, path.read_bytes(),
                                          upload_dir=tmp_path / "up")
        saved.append(stored)
        names[str(stored)] = path.name
    summary = data_quality.ingest_uploads(saved, grant, display_names=names,
                                          ingest_date=INGEST_DATE)
    assert [f.status for f in summary.files] == ["ingested"]
    assert not any(path.exists() for path in saved)   # every raw upload deleted once ingested
    assert summary.files[0].export_kind == "fhir" and summary.files[0].rows_read == 3
