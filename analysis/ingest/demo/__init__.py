"""A synthetic ketamine clinic: session and medication exports (SPEC §2).

``generate.generate_demo`` writes ``sessions.csv`` (one row per visit) and
``medications.csv`` (medication reconciliations) for a made-up network of
three Colorado clinics.  Nothing here is real patient data.  The same
arguments always give byte-identical files.

The patient journey, one named function per stage:

1. ``enrol_patients``: intake dates spread over the 30 months before ``end``
   (volume growing over time), site, route, condition (13 conditions with
   their own prevalence and true response rate, ~2% ``Other``, ~1% none),
   latent responder status, baseline pain, weight, mood, durability.
2. ``plan_induction``: 0-8 induction infusions 2-4 days apart, starting 3-21
   days after intake (a few later).  Of treated patients ~20% stop after the
   first infusion and ~50% before the sixth; early drop-out is more common
   among non-responders.
3. ``plan_follow_ups``: visits around day 28, 90, 180 and 365 after the first
   infusion (jittered, ~5% off-window), attended until the patient is lost to
   follow-up (loss grows with time, faster for non-responders).
4. ``plan_boosters``: responders get boosters every 1-4 months (roughly when
   their pain comes back); a few non-responders try one to three.
5. ``lay_out_visits``: one long table of visits, weekend visits moved to
   Friday/Monday, nothing after ``end``.
6. ``record_pain``: NRS before (``pain_score``) and after (``pain_post``)
   treatment.  Responders improve 40-80% (less after an incomplete
   induction) and fade with time since their last treatment; non-responders
   change by -8% to +22%.
7. ``assign_opioid_regimens`` / ``record_medications``: ~55% arrive on
   opioids (one or two drugs, 10-200 MME, skewed); responders often taper
   (mostly ~10% of the dose a month, a few >10% a week), non-responders mostly
   do not.  ~15% take a benzodiazepine.  The session MME equals the
   medication export's MME wherever both exist.
8. ``record_mood``: PHQ-9, PCL-5 (PTSD, ~30%) and PGIC.  The demo's PGIC
   orientation is ``PGIC_BEST = 1`` (the IMMPACT / CGI-I wording: 1 = very
   much improved, 2 = much improved, 4 = no change, 7 = very much worse).
9. ``record_treatment``: route, ketamine dose, weight, vital signs, adverse
   events.  ``assign_providers``: each patient's attending clinician (a
   pseudonymous code, ``PROVIDERS``) at their site, on every visit; ~8% of
   treatment sessions are covered by a colleague at the same site.  Drawn
   from a generator of their own, so providers change no other value, and
   they have no effect on response (the funnel plot should find none).
10. ``make_messy`` (``messy=True``): ~0.3% bad rows or values.

Size: about 7.9 visit rows and 2.7 medication rows per patient, whatever
``end`` and the seed (intake always spans the 30 months before ``end``):
600 patients give ~4,800 visits, 127,500 patients ~1,009,000 visits
(about 4-8 s on a 2-core machine, a third of it writing the CSV).

Where each part lives: ``clinic`` (sites, clinicians, conditions, drugs),
``patients`` (steps 1-5), ``records`` (6, 8, 9 and conditions),
``medications`` (7), ``export`` (the CSV, and 10), ``fhir_export`` (the same
clinic as FHIR), ``generate`` (the steps in order).
"""
