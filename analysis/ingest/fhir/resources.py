"""What is read out of a FHIR resource: the resource types mapped and the
statuses skipped, and the only fields ever taken out of a resource
(:data:`FIELDS`); nothing else leaves the file.
"""

from __future__ import annotations

import json

from analysis.ingest.ingest_log import sql_literal

# Resource types mapped (SPEC §2); every other type is counted and skipped.
PATIENT_TYPES = ("Encounter", "Observation", "Condition", "MedicationAdministration",
                 "Procedure", "MedicationRequest", "MedicationStatement", "AdverseEvent")
USED_TYPES = ("Patient", "Medication", *PATIENT_TYPES)
OBSERVATION_OK = ("final", "amended", "corrected")
ENCOUNTER_SKIPPED = ("planned", "cancelled", "entered-in-error")
ADMINISTRATION_OK = ("completed", "in-progress")
REQUEST_SKIPPED = ("entered-in-error", "cancelled", "draft")
STATEMENT_SKIPPED = ("entered-in-error", "not-taken")
CONDITION_SKIPPED = ("entered-in-error", "refuted")
SESSION_GAP_DAYS = 28
NOT_R4_TYPES = {"MedicationOrder": "DSTU2", "DiagnosticOrder": "DSTU2", "Order": "DSTU2",
                "OrderResponse": "DSTU2", "DeviceUseRequest": "DSTU2",
                "ProcedureRequest": "STU3", "ReferralRequest": "STU3", "BodySite": "STU3",
                "DataElement": "STU3", "ProcessRequest": "STU3", "ImagingManifest": "STU3",
                "MedicationUsage": "R5", "Transport": "R5", "InventoryItem": "R5",
                "DeviceAssociation": "R5", "ConditionDefinition": "R5"}


# --------------------------------------------------------------------------
# the fields read out of a resource (nothing else ever leaves the file)

_CODING = [{"system": "VARCHAR", "code": "VARCHAR", "display": "VARCHAR"}]
_CONCEPT = {"coding": _CODING, "text": "VARCHAR"}
_REF = {"reference": "VARCHAR", "display": "VARCHAR"}
_QTY = {"value": "VARCHAR", "unit": "VARCHAR", "code": "VARCHAR"}
_PERIOD = {"start": "VARCHAR", "end": "VARCHAR"}
FIELDS = {
    "resourceType": "VARCHAR", "id": "VARCHAR",
    "meta": {"profile": ["VARCHAR"]},
    "status": "VARCHAR",
    "subject": _REF,
    "encounter": _REF, "context": _REF,
    "type": "JSON", "class": "JSON", "actualPeriod": "JSON",
    "period": _PERIOD,
    "location": [{"location": _REF}],
    "serviceProvider": _REF,
    "participant": [{"individual": _REF, "actor": _REF}],   # R4 individual, R5 actor
    "code": _CONCEPT,
    "effectiveDateTime": "VARCHAR", "effectiveInstant": "VARCHAR", "effectivePeriod": _PERIOD,
    "issued": "VARCHAR",
    "valueQuantity": _QTY, "valueInteger": "VARCHAR", "valueBoolean": "VARCHAR",
    "valueCodeableConcept": _CONCEPT,
    "component": [{"code": _CONCEPT, "valueQuantity": _QTY, "valueInteger": "VARCHAR",
                   "valueBoolean": "VARCHAR", "valueCodeableConcept": _CONCEPT}],
    "medicationCodeableConcept": _CONCEPT, "medicationReference": _REF,
    "dosage": "JSON", "dosageInstruction": "JSON",
    "performedDateTime": "VARCHAR", "performedPeriod": _PERIOD,
    "authoredOn": "VARCHAR", "dateAsserted": "VARCHAR",
    "verificationStatus": _CONCEPT,
    "onsetDateTime": "VARCHAR", "onsetPeriod": _PERIOD, "recordedDate": "VARCHAR",
    "actuality": "VARCHAR", "event": _CONCEPT, "date": "VARCHAR", "detected": "VARCHAR",
}
RESOURCE_STRUCTURE = json.dumps(FIELDS)
BUNDLE_STRUCTURE = json.dumps({"resourceType": "VARCHAR", "entry": [{"fullUrl": "VARCHAR",
                                                            "resource": "JSON"}]})
ADMIN_DOSAGE_STRUCTURE = json.dumps({"dose": _QTY, "route": _CONCEPT})
DOSAGES_STRUCTURE = json.dumps([{"timing": {"repeat": {"frequency": "VARCHAR", "period": "VARCHAR",
                                              "periodUnit": "VARCHAR"},
                                   "code": _CONCEPT},
                        "doseAndRate": [{"doseQuantity": _QTY}],
                        "asNeededBoolean": "VARCHAR"}])
TYPES_STRUCTURE = json.dumps([_CONCEPT])
# Timing codes (HL7 v3 GTSAbbreviation) -> doses a day.
TIMING_CODES = {"QD": 1, "BID": 2, "TID": 3, "QID": 4, "AM": 1, "PM": 1, "QOD": 0.5,
                "Q4H": 6, "Q6H": 4, "Q8H": 3, "Q12H": 2, "Q24H": 1}
PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1, "wk": 7, "mo": 30,
                "a": 365}


def types_sql(types) -> str:
    return ", ".join(sql_literal(t) for t in types)
