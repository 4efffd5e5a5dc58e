"""The demo clinic as a FHIR R4 Bulk Data export (``demo --format fhir``).

The same visits and medication reconciliations as the CSV demo (before its
deliberate mistakes), written the way an EHR's ``$export`` writes them: one
NDJSON file per resource type, and on the Patient resources what real
exports carry and this product must never store: names, phone numbers,
addresses, birth dates, medical record numbers and a narrative.  Nothing
here is real patient data.

* ``Encounter`` per visit (type as the clinic's local code with a display,
  site as the location, the clinician as an attending participant; times in
  the clinic's own UTC offset, America/Denver, so late sessions fall on the
  next day in UTC); a few induction infusions
  carry no type, and a few have no Encounter at all (the treatment-session
  rule types them);
* ``Observation``: pain before (72514-3) and after the infusion, weight
  (29463-7), PHQ-9 (44261-6), PCL-5 (101698-9), blood pressure as 85354-9
  panels (the day's highest systolic, and a lower reading), SpO2 (59408-5,
  and a higher 2708-6 reading), and the demo clinic's local codes for PGIC,
  MME per day and benzodiazepine use (``data/observation_codes.csv``);
* ``MedicationAdministration`` of ketamine (RxNorm 6130) per treatment
  session, with dose and route; ``AdverseEvent`` per adverse event;
* ``Condition`` per patient (ICD-10-CM, SNOMED CT or text, as the CSV
  labels), ``MedicationStatement`` per medication row (RxNorm clinical drug
  names, dose and frequency; "no known medications" lists).

With ``messy`` the export also holds what a real one holds and the import
must skip: entered-in-error and cancelled observations with other values,
unmapped LOINC codes, social-history answers in ``valueString`` (the
patient's address), notes naming the patient, cancelled appointments,
refuted diagnoses, other medications, Practitioner resources.  None of it
changes a number: the FHIR demo gives the CSV demo's results.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import duckdb
import pyarrow as pa

CLINIC_ZONE = "America/Denver"
LOCAL = "urn:example:demo-clinic:measures"
ENCOUNTER_TYPES = "urn:example:demo-clinic:encounter-type"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"

FAMILY = ("Abernathy", "Blackwood", "Castellano", "Delacroix", "Everhart", "Fairweather",
          "Galloway", "Hargrove", "Ingersoll", "Jablonski", "Kowalczyk", "Lindqvist",
          "Merriweather", "Nakashima", "Oyelaran", "Pemberton", "Quintanilla", "Rosenthal",
          "Sorensen", "Thibodeaux", "Underhill", "Vanderpool", "Whitlock", "Yarborough")
GIVEN = ("Agatha", "Bartholomew", "Cordelia", "Desmond", "Evangeline", "Fitzwilliam",
         "Gwendolyn", "Horatio", "Isadora", "Jebediah", "Katarina", "Leopold", "Marguerite",
         "Nathaniel", "Octavia", "Percival", "Rosalind", "Sebastian", "Theodora", "Ulysses")
STREETS = ("Larkspur Lane", "Columbine Court", "Aspenglow Drive", "Bristlecone Way",
           "Kinnikinnick Road", "Ponderosa Terrace")

ENCOUNTER_DISPLAY = {"intake": ("new-patient", "New patient consultation"),
                     "infusion": ("ket-inf", "Ketamine infusion"),
                     "booster": ("ket-boost", "Booster infusion"),
                     "follow_up": ("fu", "Follow-up visit")}
ROUTE_SNOMED = {"IV": ("47625008", "Intravenous route"), "IM": ("78421000", "Intramuscular route"),
                "intranasal": ("46713006", "Nasal route"), "oral": ("26643006", "Oral route"),
                "sublingual": ("37839007", "Sublingual route")}
# RxNorm-style clinical drug names of the demo's labels ({d}: the strength).
DRUG_NAMES = {
    "oxycodone": "Oxycodone Hydrochloride {d} MG Oral Tablet",
    "hydrocodone": "Hydrocodone Bitartrate {d} MG Extended Release Oral Tablet",
    "morphine": "Morphine Sulfate {d} MG Extended Release Oral Tablet",
    "tramadol": "Tramadol Hydrochloride {d} MG Oral Tablet",
    "hydromorphone": "Hydromorphone Hydrochloride {d} MG Oral Tablet",
    "fentanyl transdermal": "72 HR Fentanyl {mg_hr} MG/HR Transdermal System",
    "methadone": "Methadone Hydrochloride {d} MG Oral Tablet",
    "tapentadol": "Tapentadol {d} MG Oral Tablet",
    "codeine": "Acetaminophen 300 MG / Codeine Phosphate {d} MG Oral Tablet",
    "oxymorphone": "Oxymorphone Hydrochloride {d} MG Oral Tablet",
    "alprazolam": "Alprazolam {d} MG Oral Tablet",
    "clonazepam": "Clonazepam {d} MG Oral Tablet",
    "lorazepam": "Lorazepam {d} MG Oral Tablet",
    "diazepam": "Diazepam {d} MG Oral Tablet",
}
COMBINATIONS = {"oxycodone": "Acetaminophen 325 MG / Oxycodone Hydrochloride {d} MG Oral Tablet",
                "hydrocodone": "Acetaminophen 325 MG / Hydrocodone Bitartrate {d} MG Oral Tablet"}
CONDITION_SNOMED_DISPLAY = "{name} (disorder)"


def write_export(out: Path, sessions: pa.Table, medications: pa.Table, *, seed: int,
                 end: dt.date, messy: bool) -> dict[str, int]:
    """Write ``out/<Type>.000.ndjson``; returns resources written by type."""
    from analysis.ingest.fhir import codes as fhir_codes
    from analysis.storage import reference
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        con.register("sessions_in", sessions)
        con.register("medications_in", medications)
        con.execute("""CREATE TABLE s AS
                       SELECT row_number() OVER () AS n, * FROM sessions_in""")
        con.execute("""CREATE TABLE m AS
                       SELECT row_number() OVER () AS n, * FROM medications_in""")
        _offsets(con)
        _drug_names(con, reference)
        _condition_codes(con, reference, fhir_codes)
        salt = f"demo-{seed}-"
        con.execute(f"""
            CREATE TABLE pt AS
            SELECT patient_id, row_number() OVER (ORDER BY patient_id) AS k,
                   'pt-' || substr(md5('{salt}' || patient_id), 1, 20) AS fid
            FROM (SELECT DISTINCT patient_id FROM s)""")
        con.execute(_PEOPLE)
        counts = {}
        for kind, sql in _resources(messy, end).items():
            counts[kind] = _write(con, out / f"{kind}.000.ndjson", sql)
        return {k: v for k, v in counts.items() if v}
    finally:
        con.close()


def _write(con, path: Path, sql: str) -> int:
    """One resource a line: JSON with absent elements left out (FHIR has no nulls)."""
    relation = con.execute(f"""
        SELECT regexp_replace(regexp_replace(line, ',"[A-Za-z]+":null', '', 'g'),
                              '"[A-Za-z]+":null,?', '', 'g') AS line
        FROM ({sql}) AS t(line) WHERE line IS NOT NULL""")
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        while True:
            batch = relation.fetchmany(50_000)
            if not batch:
                break
            handle.write("\n".join(row[0] for row in batch))
            handle.write("\n")
            written += len(batch)
    if not written:
        path.unlink(missing_ok=True)
    return written


def _offsets(con) -> None:
    """The clinic's UTC offset on each day (daylight saving time)."""
    days = [r[0] for r in con.execute(
        "SELECT DISTINCT visit_date FROM s UNION SELECT DISTINCT date FROM m").fetchall()]
    zone = zoneinfo.ZoneInfo(CLINIC_ZONE)
    rows = []
    for day in days:
        offset = dt.datetime(day.year, day.month, day.day, 12, tzinfo=zone).utcoffset()
        minutes = int(offset.total_seconds() // 60)
        sign = "-" if minutes < 0 else "+"
        rows.append((day, f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"))
    con.execute("CREATE TABLE offsets (day DATE, tz VARCHAR)")
    con.executemany("INSERT INTO offsets VALUES (?, ?)", rows)


def _drug_names(con, reference) -> None:
    labels = [r[0] for r in con.execute("SELECT DISTINCT drug FROM m").fetchall()]
    units = dict(con.execute("SELECT drug, any_value(unit) FROM m GROUP BY 1").fetchall())
    rows = []
    for label in labels:
        if label == "none":
            rows.append((label, None, None))
            continue
        drug = reference.match_drug(label, units.get(label))
        generic = drug.generic if drug else None
        template = (COMBINATIONS.get(generic) if "/3" in label else None) or DRUG_NAMES.get(generic)
        rows.append((label, generic, template))
    con.execute("CREATE TABLE drug_names (label VARCHAR, generic VARCHAR, template VARCHAR)")
    con.executemany("INSERT INTO drug_names VALUES (?, ?, ?)", rows)


def _condition_codes(con, reference, fhir_codes) -> None:
    """How each CSV condition label is coded: an ICD-10-CM code as such, a
    canonical name with its SNOMED CT concept, anything else as text."""
    import re
    labels = [r[0] for r in con.execute(
        "SELECT DISTINCT condition FROM s WHERE condition IS NOT NULL").fetchall()]
    snomed = {}
    for code, name in reference._snomed_conditions().items():
        snomed.setdefault(name, code)
    rows = []
    for label in labels:
        if re.fullmatch(r"[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?", label):
            rows.append((label, ICD10CM, label.replace(".", "")[:3] + ("." + label.replace(".", "")[3:]
                                                                        if len(label.replace(".", "")) > 3 else ""),
                         None, None))
        elif label in snomed:
            rows.append((label, SNOMED, snomed[label], CONDITION_SNOMED_DISPLAY.format(name=label),
                         label))
        else:
            rows.append((label, None, None, None, label))
    con.execute("""CREATE TABLE condition_codes (label VARCHAR, system VARCHAR, code VARCHAR,
                                                 display VARCHAR, text VARCHAR)""")
    con.executemany("INSERT INTO condition_codes VALUES (?, ?, ?, ?, ?)", rows)


def _resources(messy: bool, end: dt.date) -> dict[str, str]:
    """SELECTs giving one column ``line`` (a resource's JSON) per type."""
    ref = "json_object('reference', 'Patient/' || pt.fid)"
    # A visit's local start: intake in the morning, follow-ups late morning,
    # treatment sessions in the afternoon (to 17:55).
    start = """(s.visit_date + INTERVAL (CASE s.visit_type
                    WHEN 'intake' THEN 540 + hash(s.n) % 120
                    WHEN 'follow_up' THEN 600 + hash(s.n) % 180
                    ELSE 780 + hash(s.n) % 300 END) MINUTE)"""
    stamp = lambda minutes: (  # noqa: E731
        f"strftime({start} + INTERVAL ({minutes}) MINUTE, '%Y-%m-%dT%H:%M:%S') || s.tz")
    visits = f"""(SELECT s.*, pt.* EXCLUDE (patient_id), o.tz, lower(s.visit_id) AS vid,
                        s.visit_type = 'infusion' AND hash(s.n || 'untyped') % 10 = 0 AS untyped,
                        s.visit_type = 'infusion' AND hash(s.n || 'noenc') % 33 = 0
                          AND (SELECT count(*) FROM s x WHERE x.patient_id = s.patient_id
                               AND x.visit_date = s.visit_date) = 1 AS no_encounter
                 FROM s JOIN pt USING (patient_id) JOIN offsets o ON o.day = s.visit_date)"""
    encounter_ref = "CASE WHEN s.no_encounter THEN NULL ELSE json_object('reference', 'Encounter/enc-' || s.vid) END"

    def observation(suffix: str, code: str, value_sql: str, minutes: str, where: str,
                    system: str = LOINC, display: str | None = None,
                    value_kind: str = "valueQuantity", status: str = "'final'",
                    extra: str = "") -> str:
        value = (f"json_object('value', {value_sql}, 'unit', '{{score}}', 'system', "
                 f"'http://unitsofmeasure.org')" if value_kind == "valueQuantity" else value_sql)
        return f"""
            SELECT json_object('resourceType', 'Observation', 'id', 'obs-' || s.vid || '-{suffix}',
                   'status', {status},
                   'code', json_object('coding', [json_object('system', '{system}', 'code', '{code}',
                                                               'display', {_q(display)})]),
                   'subject', json_object('reference', 'Patient/' || s.fid),
                   'encounter', {encounter_ref},
                   'effectiveDateTime', {stamp(minutes)},
                   '{value_kind}', {value}{extra})::VARCHAR AS line
            FROM {visits} s WHERE {where}"""

    def bp(suffix: str, systolic: str, minutes: str, where: str) -> str:
        component = lambda code, display, value: (  # noqa: E731
            f"json_object('code', json_object('coding', [json_object('system', '{LOINC}', "
            f"'code', '{code}', 'display', '{display}')]), 'valueQuantity', "
            f"json_object('value', {value}, 'unit', 'mm[Hg]', 'system', 'http://unitsofmeasure.org', "
            f"'code', 'mm[Hg]'))")
        return f"""
            SELECT json_object('resourceType', 'Observation', 'id', 'obs-' || s.vid || '-{suffix}',
                   'status', 'final',
                   'code', json_object('coding', [json_object('system', '{LOINC}', 'code', '85354-9',
                                       'display', 'Blood pressure panel with all children optional')]),
                   'subject', json_object('reference', 'Patient/' || s.fid),
                   'encounter', {encounter_ref},
                   'effectiveDateTime', {stamp(minutes)},
                   'component', [{component('8480-6', 'Systolic blood pressure', systolic)},
                                 {component('8462-4', 'Diastolic blood pressure', f'round({systolic} * 0.62)')}])::VARCHAR AS line
            FROM {visits} s WHERE {where}"""

    session = "s.visit_type IN ('infusion', 'booster')"
    observations = [
        observation("pain", "72514-3", "s.pain_score", "5", "s.pain_score IS NOT NULL",
                    display="Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
        observation("pain-post", "72514-3", "s.pain_post", "70", "s.pain_post IS NOT NULL",
                    display="Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
        observation("weight", "29463-7",
                    "json_object('value', s.weight_kg, 'unit', 'kg', 'system', 'http://unitsofmeasure.org', 'code', 'kg')",
                    "2", "s.weight_kg IS NOT NULL", display="Body weight", value_kind="valueQuantity_raw"),
        observation("phq9", "44261-6", "s.phq9", "8", "s.phq9 IS NOT NULL",
                    display="Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
        observation("pcl5", "101698-9", "s.pcl5", "9", "s.pcl5 IS NOT NULL",
                    display="PTSD Checklist for DSM-5 [PCL-5] total score"),
        observation("pgic", "pgic", "s.pgic", "10", "s.pgic IS NOT NULL", system=LOCAL,
                    display="Patient Global Impression of Change", value_kind="valueInteger"),
        observation("mme", "mme-per-day", "s.opioid_mme_per_day", "11",
                    "s.opioid_mme_per_day IS NOT NULL", system=LOCAL,
                    display="Opioid dose, morphine milligram equivalents per day"),
        observation("benzo", "benzodiazepine", "s.benzodiazepine = 'yes'", "12",
                    "s.benzodiazepine IS NOT NULL", system=LOCAL,
                    display="Currently prescribed a benzodiazepine", value_kind="valueBoolean"),
        bp("bp-high", "s.sbp_max", "35", "s.sbp_max IS NOT NULL"),
        bp("bp-low", "s.sbp_max - 12", "60", f"s.sbp_max IS NOT NULL AND {session}"),
        observation("spo2", "59408-5",
                    "json_object('value', s.spo2_min, 'unit', '%', 'system', 'http://unitsofmeasure.org', 'code', '%')",
                    "40", "s.spo2_min IS NOT NULL", display="Oxygen saturation in Arterial blood by Pulse oximetry",
                    value_kind="valueQuantity_raw"),
        observation("spo2-b", "2708-6",
                    "json_object('value', least(s.spo2_min + 2, 100), 'unit', '%', 'system', 'http://unitsofmeasure.org', 'code', '%')",
                    "20", "s.spo2_min IS NOT NULL", display="Oxygen saturation in Arterial blood",
                    value_kind="valueQuantity_raw"),
    ]
    if messy:
        observations += [
            # a pain score entered on the wrong patient, then marked entered-in-error
            observation("pain-eie", "72514-3", "10", "6", "s.pain_score IS NOT NULL AND hash(s.n) % 40 = 0",
                        status="'entered-in-error'"),
            observation("phq9-cancelled", "44261-6", "27", "8", "s.phq9 IS NOT NULL AND hash(s.n) % 50 = 1",
                        status="'cancelled'"),
            observation("hr", "8867-4",
                        "json_object('value', 70 + hash(s.n) % 30, 'unit', '/min', 'system', 'http://unitsofmeasure.org', 'code', '/min')",
                        "36", session, display="Heart rate", value_kind="valueQuantity_raw",
                        extra=", 'note', [json_object('text', 'Called ' || s.given || ' ' || s.family || ' at ' || s.phone)]"),
            # social history with free text: the patient's own address
            observation("housing", "71802-3", "s.street || ', Denver, CO 80203'", "1",
                        "s.visit_type = 'intake'", display="Housing status", value_kind="valueString"),
        ]
    obs_sql = " UNION ALL ".join(observations).replace("'valueQuantity_raw'", "'valueQuantity'")
    people = """(SELECT pt.*, p.given, p.family, p.phone, p.street, p.mrn, p.birth_date FROM pt
                 JOIN people p USING (k))"""
    visits_people = visits.replace("JOIN pt USING (patient_id)",
                                   f"JOIN {people} pt USING (patient_id)")
    obs_sql = obs_sql.replace(visits, visits_people)
    encounter_type = """CASE WHEN s.untyped THEN NULL ELSE [json_object(
                            'coding', [json_object('system', '{sys}', 'code', et.code, 'display', et.display)],
                            'text', et.display)] END""".replace("{sys}", ENCOUNTER_TYPES)
    enc_types = "(VALUES " + ", ".join(f"('{k}', '{c}', '{d}')" for k, (c, d) in ENCOUNTER_DISPLAY.items()) + ") et(visit_type, code, display)"
    encounters = f"""
        SELECT json_object('resourceType', 'Encounter', 'id', 'enc-' || s.vid, 'status', 'finished',
               'class', json_object('system', 'http://terminology.hl7.org/CodeSystem/v3-ActCode',
                                    'code', 'AMB', 'display', 'ambulatory'),
               'type', {encounter_type},
               'subject', json_object('reference', 'Patient/' || s.fid),
               'period', json_object('start', {stamp('0')}, 'end', {stamp('90')}),
               'location', [json_object('location', json_object('display', s.site))],
               'participant', CASE WHEN s.provider IS NOT NULL THEN [json_object(
                   'type', [json_object('coding', [json_object(
                       'system', 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType',
                       'code', 'ATND', 'display', 'attender')])],
                   'individual', json_object('reference', 'Practitioner/' || s.provider,
                                             'display', 'Dr Demo ' || s.provider))] END,
               'serviceProvider', json_object('display', 'Front Range Ketamine Clinic'))::VARCHAR AS line
        FROM {visits} s JOIN {enc_types} USING (visit_type) WHERE NOT s.no_encounter"""
    if messy:   # cancelled appointments on days without a visit, before the export
        encounters += f"""
        UNION ALL
        SELECT json_object('resourceType', 'Encounter', 'id', 'enc-' || s.vid || '-cancelled',
               'status', 'cancelled',
               'class', json_object('system', 'http://terminology.hl7.org/CodeSystem/v3-ActCode', 'code', 'AMB'),
               'type', [json_object('text', 'Follow-up visit')],
               'subject', json_object('reference', 'Patient/' || s.fid),
               'period', json_object('start', strftime(s.visit_date - INTERVAL 1 DAY, '%Y-%m-%d') || 'T09:00:00' || s.tz))::VARCHAR
        FROM {visits} s WHERE s.visit_type = 'follow_up' AND hash(s.n) % 20 = 0
          AND NOT EXISTS (SELECT 1 FROM s x WHERE x.patient_id = s.patient_id
                          AND x.visit_date = s.visit_date - INTERVAL 1 DAY)"""
    route = " ".join(f"WHEN '{k}' THEN json_object('coding', [json_object('system', '{SNOMED}', "
                     f"'code', '{c}', 'display', '{d}')])" for k, (c, d) in ROUTE_SNOMED.items())
    administrations = f"""
        SELECT json_object('resourceType', 'MedicationAdministration', 'id', 'adm-' || s.vid,
               'status', 'completed',
               'medicationCodeableConcept', json_object('coding', [json_object(
                   'system', '{RXNORM}', 'code', '6130', 'display', 'ketamine')],
                   'text', 'Ketamine hydrochloride'),
               'subject', json_object('reference', 'Patient/' || s.fid),
               'context', {encounter_ref},
               'effectivePeriod', json_object('start', {stamp('15')}, 'end', {stamp('55')}),
               'dosage', json_object('route', CASE s.route {route} END,
                                     'dose', CASE WHEN s.ketamine_mg IS NOT NULL THEN json_object(
                                         'value', s.ketamine_mg, 'unit', 'mg',
                                         'system', 'http://unitsofmeasure.org', 'code', 'mg') END))::VARCHAR
        FROM {visits} s WHERE s.visit_type IN ('infusion', 'booster')"""
    adverse_events = f"""
        SELECT json_object('resourceType', 'AdverseEvent', 'id', 'ae-' || s.vid,
               'actuality', 'actual',
               'event', json_object('coding', [json_object('system', '{SNOMED}',
                                    'display', upper(s.adverse_event[1]) || s.adverse_event[2:])]),
               'subject', json_object('reference', 'Patient/' || s.fid),
               'encounter', {encounter_ref},
               'date', {stamp('50')})::VARCHAR
        FROM {visits} s WHERE s.adverse_event IS NOT NULL"""
    if messy:
        adverse_events += f"""
        UNION ALL
        SELECT json_object('resourceType', 'AdverseEvent', 'id', 'ae-' || s.vid || '-potential',
               'actuality', 'potential', 'event', json_object('text', 'Hypertension'),
               'subject', json_object('reference', 'Patient/' || s.fid), 'date', {stamp('50')})::VARCHAR
        FROM {visits} s WHERE s.visit_type = 'booster' AND hash(s.n) % 30 = 0"""
    # A patient's condition, recorded on the first day a label appears.
    conditions = f"""
        WITH first_label AS (
            SELECT patient_id, arg_min(condition, (visit_date, n)) AS label, min(visit_date) AS day
            FROM s WHERE condition IS NOT NULL GROUP BY patient_id)
        SELECT json_object('resourceType', 'Condition', 'id', 'cond-' || pt.fid,
               'clinicalStatus', json_object('coding', [json_object(
                   'system', 'http://terminology.hl7.org/CodeSystem/condition-clinical', 'code', 'active')]),
               'verificationStatus', json_object('coding', [json_object(
                   'system', 'http://terminology.hl7.org/CodeSystem/condition-ver-status', 'code', 'confirmed')]),
               'code', json_object('coding', CASE WHEN c.system IS NOT NULL THEN [json_object(
                                       'system', c.system, 'code', c.code, 'display', c.display)] END,
                                   'text', c.text),
               'subject', json_object('reference', 'Patient/' || pt.fid),
               'recordedDate', strftime(f.day, '%Y-%m-%d'))::VARCHAR AS line
        FROM first_label f JOIN pt USING (patient_id) JOIN condition_codes c ON c.label = f.label"""
    if messy:   # an older unrelated diagnosis and a refuted one, for patients with one of the 13
        conditions += f"""
        UNION ALL
        SELECT json_object('resourceType', 'Condition', 'id', 'cond-' || pt.fid || '-htn',
               'code', json_object('coding', [json_object('system', '{ICD10CM}', 'code', 'I10',
                                                          'display', 'Essential (primary) hypertension')]),
               'subject', json_object('reference', 'Patient/' || pt.fid),
               'recordedDate', '2019-05-14')::VARCHAR
        FROM pt WHERE hash(pt.k) % 4 = 0 AND pt.patient_id IN (
            SELECT patient_id FROM s JOIN condition_codes c ON c.label = s.condition
            WHERE c.system IS NOT NULL AND c.system <> '{ICD10CM}')
        UNION ALL
        SELECT json_object('resourceType', 'Condition', 'id', 'cond-' || pt.fid || '-refuted',
               'verificationStatus', json_object('coding', [json_object(
                   'system', 'http://terminology.hl7.org/CodeSystem/condition-ver-status', 'code', 'refuted')]),
               'code', json_object('coding', [json_object('system', '{SNOMED}', 'code', '55464009',
                                                          'display', 'Systemic lupus erythematosus (disorder)')]),
               'subject', json_object('reference', 'Patient/' || pt.fid),
               'recordedDate', '2018-02-01')::VARCHAR
        FROM pt WHERE hash(pt.k) % 9 = 0"""
    name = """CASE WHEN d.template IS NULL THEN NULL
                   ELSE replace(replace(d.template, '{d}', regexp_replace(CAST(m.dose AS VARCHAR), '\\.0$', '')),
                                '{mg_hr}', CAST(round(m.dose / 1000, 6) AS VARCHAR)) END"""
    statements = f"""
        SELECT json_object('resourceType', 'MedicationStatement', 'id', 'med-' || m.n,
               'status', 'active',
               'medicationCodeableConcept', CASE WHEN m.drug = 'none' THEN json_object('coding', [json_object(
                       'system', 'http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips',
                       'code', 'no-known-medications', 'display', 'No known medications')])
                   ELSE json_object('coding', [json_object('system', '{RXNORM}', 'display', {name})],
                                    'text', m.drug) END,
               'subject', json_object('reference', 'Patient/' || pt.fid),
               'effectiveDateTime', strftime(m.date, '%Y-%m-%d'),
               'dosage', CASE WHEN m.drug <> 'none' THEN [json_object(
                   'timing', CASE WHEN m.doses_per_day IS NOT NULL THEN json_object('repeat', json_object(
                       'frequency', m.doses_per_day, 'period', 1, 'periodUnit', 'd')) END,
                   'doseAndRate', [json_object('doseQuantity', json_object(
                       'value', 1, 'unit', CASE WHEN m.unit = 'mcg/hr' THEN 'patch' ELSE 'tablet' END))])] END
               )::VARCHAR AS line
        FROM m JOIN pt USING (patient_id) JOIN drug_names d ON d.label = m.drug"""
    if messy:
        statements += f"""
        UNION ALL
        SELECT json_object('resourceType', 'MedicationStatement', 'id', 'med-' || m.n || '-other',
               'status', 'active',
               'medicationCodeableConcept', json_object('coding', [json_object(
                   'system', '{RXNORM}', 'code', '314076', 'display', 'Lisinopril 10 MG Oral Tablet')]),
               'subject', json_object('reference', 'Patient/' || pt.fid),
               'effectiveDateTime', strftime(m.date, '%Y-%m-%d'),
               'dosage', [json_object('timing', json_object('repeat', json_object(
                   'frequency', 1, 'period', 1, 'periodUnit', 'd')))])::VARCHAR
        FROM m JOIN pt USING (patient_id) WHERE hash(m.n) % 7 = 0 AND m.drug <> 'none'"""
    patients = f"""
        SELECT json_object('resourceType', 'Patient', 'id', pt.fid,
               'text', json_object('status', 'generated', 'div',
                   '<div xmlns="http://www.w3.org/1999/xhtml">' || pt.given || ' ' || pt.family
                   || ', born ' || strftime(pt.birth_date, '%Y-%m-%d') || '</div>'),
               'identifier', [json_object('type', json_object('text', 'Medical record number'),
                                          'system', 'urn:example:demo-clinic:mrn', 'value', pt.mrn)],
               'name', [json_object('use', 'official', 'family', pt.family, 'given', [pt.given])],
               'telecom', [json_object('system', 'phone', 'value', pt.phone, 'use', 'home')],
               'gender', CASE WHEN hash(pt.k) % 2 = 0 THEN 'female' ELSE 'male' END,
               'birthDate', strftime(pt.birth_date, '%Y-%m-%d'),
               'address', [json_object('line', [pt.street], 'city', 'Denver', 'state', 'CO',
                                       'postalCode', '80203')])::VARCHAR AS line
        FROM {people} pt"""
    practitioners = """
        SELECT json_object('resourceType', 'Practitioner', 'id', 'pract-' || i,
               'name', [json_object('family', 'Clinician', 'given', ['Demo'])])::VARCHAR AS line
        FROM range(1, 4) t(i)"""
    out = {"Patient": patients, "Encounter": encounters, "Observation": obs_sql,
           "MedicationAdministration": administrations, "AdverseEvent": adverse_events,
           "Condition": conditions, "MedicationStatement": statements}
    if messy:
        out["Practitioner"] = practitioners
    return out


_PEOPLE = f"""
    CREATE OR REPLACE TEMP TABLE people AS
    SELECT k,
           list_extract({list(GIVEN)}, CAST(1 + hash(k || 'g') % {len(GIVEN)} AS BIGINT)) AS given,
           list_extract({list(FAMILY)}, CAST(1 + hash(k || 'f') % {len(FAMILY)} AS BIGINT)) AS family,
           '(303) 555-' || lpad(CAST(1000 + k % 9000 AS VARCHAR), 4, '0') AS phone,
           CAST(100 + k % 9800 AS VARCHAR) || ' ' || list_extract({list(STREETS)}, CAST(1 + hash(k || 's') % {len(STREETS)} AS BIGINT)) AS street,
           CAST(70000000 + k AS VARCHAR) AS mrn,
           DATE '1942-01-01' + CAST(hash(k || 'b') % 20000 AS INTEGER) AS birth_date
    FROM pt"""


def _q(text: str | None) -> str:
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"
