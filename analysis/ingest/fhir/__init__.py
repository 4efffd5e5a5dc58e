"""Ingest of a FHIR R4 export (Bulk Data NDJSON or Bundles) into the same
visits and medications as the session export (SPEC §2 "FHIR R4 export").

One export (a folder, a zip, or the NDJSON/Bundle files given together) is
one transaction: all of it lands or none of it.  Set-based throughout:
DuckDB reads every file once (``read_ndjson_objects`` / ``read_json_objects``
and ``json_transform`` into the few fields the mapping needs) and SQL maps
resources to visit days; Python only maps the few distinct codes, condition
labels and drug names, and pseudonymises the distinct patient ids.

Identity: only the fields listed in :data:`resources.FIELDS` are ever taken out of a
resource.  Patient names, telecom, addresses, birth dates and identifiers,
``valueString``, ``note`` and narrative ``text`` are not among them, so they
never reach the database, the quarantine or a message.  A patient's key is
the keyed pseudonym of their ``Patient.id`` (:func:`analysis.access.keys.pseudonym`).

How resources become visits (see README "Loading a FHIR export"):

* a visit is a patient's calendar day (the local date written in the
  resource's own time) and visit type; an Encounter gives its type
  (``codes``); an Encounter of no mapped type that day with a ketamine
  administration, or a ketamine administration without an Encounter, is a
  treatment session (``booster`` more than 28 days after the patient's
  previous session, else ``infusion``); a day with observations and
  neither is a ``follow_up``; an Encounter of an unmapped type without
  ketamine is quarantined, like a session row of an unknown visit type;
* an observation, administration or adverse event belongs to the Encounter
  it references on its day, else to the day's treatment session, follow-up
  or intake (in that order);
* a visit's natural key is ``fhir:<patient>|<date>|<visit type>``; a later
  export replaces the FHIR visits of every patient-day it covers.

Where each part lives: ``files`` (which files make one export, their
limits), ``resources`` (types mapped, fields read), ``export`` (one export in
one transaction: :func:`export.ingest_export`), ``staging``, ``version`` (R4
only), ``mapping`` (resources to rows, with the clinic's ``codes``),
``visits`` (rows to visit days) and ``load`` (into visits and medications).
"""
