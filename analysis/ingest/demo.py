"""A synthetic ketamine clinic: session and medication exports (SPEC §2).

``generate_demo`` writes ``sessions.csv`` (one row per visit) and
``medications.csv`` (medication reconciliations) for a made-up network of
three Colorado clinics.  Nothing here is real patient data.  The same
arguments always give byte-identical files.

The patient journey, one named function per stage:

1. ``_enrol_patients``: intake dates spread over the 30 months before ``end``
   (volume growing over time), site, route, condition (13 conditions with
   their own prevalence and true response rate, ~2% ``Other``, ~1% none),
   latent responder status, baseline pain, weight, mood, durability.
2. ``_plan_induction``: 0-8 induction infusions 2-4 days apart, starting 3-21
   days after intake (a few later).  Of treated patients ~20% stop after the
   first infusion and ~50% before the sixth; early drop-out is more common
   among non-responders.
3. ``_plan_follow_ups``: visits around day 28, 90, 180 and 365 after the first
   infusion (jittered, ~5% off-window), attended until the patient is lost to
   follow-up (loss grows with time, faster for non-responders).
4. ``_plan_boosters``: responders get boosters every 1-4 months (roughly when
   their pain comes back); a few non-responders try one to three.
5. ``_lay_out_visits``: one long table of visits, weekend visits moved to
   Friday/Monday, nothing after ``end``.
6. ``_record_pain``: NRS before (``pain_score``) and after (``pain_post``)
   treatment.  Responders improve 40-80% (less after an incomplete
   induction) and fade with time since their last treatment; non-responders
   change by -8% to +22%.
7. ``_assign_opioid_regimens`` / ``_record_medications``: ~55% arrive on
   opioids (one or two drugs, 10-200 MME, skewed); responders often taper
   (mostly ~10% of the dose a month, a few >10% a week), non-responders mostly
   do not.  ~15% take a benzodiazepine.  The session MME equals the
   medication export's MME wherever both exist.
8. ``_record_mood``: PHQ-9, PCL-5 (PTSD, ~30%) and PGIC.  The demo's PGIC
   orientation is ``PGIC_BEST = 1`` (the IMMPACT / CGI-I wording: 1 = very
   much improved, 2 = much improved, 4 = no change, 7 = very much worse).
9. ``_record_treatment``: route, ketamine dose, weight, vital signs, adverse
   events.  ``_assign_providers``: each patient's attending clinician (a
   pseudonymous code, ``PROVIDERS``) at their site, on every visit; ~8% of
   treatment sessions are covered by a colleague at the same site.  Drawn
   from a generator of their own, so providers change no other value, and
   they have no effect on response (the funnel plot should find none).
10. ``_make_messy`` (``messy=True``): ~0.3% bad rows or values.

Size: about 7.9 visit rows and 2.7 medication rows per patient, whatever
``end`` and the seed (intake always spans the 30 months before ``end``):
600 patients give ~4,800 visits, 127,500 patients ~1,009,000 visits
(about 4-8 s on a 2-core machine, a third of it writing the CSV).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from analysis.storage.reference import CANONICAL_COLUMNS

# --------------------------------------------------------------------------
# the clinic

SITES = ("Denver", "Boulder", "Colorado Springs")
# Clinicians (pseudonymous codes) by site, with their share of the site's
# patients: one locum per site sees few patients (a small provider on the
# funnel plot).
PROVIDERS = (
    (("CLN-01", 0.45), ("CLN-02", 0.35), ("CLN-03", 0.17), ("CLN-L1", 0.03)),
    (("CLN-04", 0.55), ("CLN-05", 0.40), ("CLN-L2", 0.05)),
    (("CLN-06", 0.60), ("CLN-07", 0.35), ("CLN-L3", 0.05)),
)
PROVIDER_CODES = tuple(code for site in PROVIDERS for code, _ in site)
COVER_SHARE = 0.08        # treatment sessions given by a colleague at the same site
# The demo's PGIC orientation: 1 = very much improved ... 7 = very much worse.
PGIC_BEST = 1
SITE_SHARE = (0.45, 0.30, 0.25)
SITE_SHOW_RATE = (0.90, 0.92, 0.82)      # follow-up attendance while in care
SITE_DECIMAL_PAIN = (0.05, 0.60, 0.25)   # share of pain scores with one decimal

ROUTES = ("IV", "IM", "intranasal", "oral", "sublingual")
ROUTE_SHARE = (0.85, 0.05, 0.04, 0.03, 0.03)
ROUTE_RESPONSE = (1.0, 0.95, 0.85, 0.80, 0.80)   # multiplies the response rate

VISIT_TYPES = ("intake", "infusion", "booster", "follow_up")
INTAKE, INFUSION, BOOSTER, FOLLOW_UP = range(4)

# condition, share of patients with one of the 13, probability of being a
# (latent) responder.  Observed pain30 among those followed up at 3 months is
# ~70-80% for the high group and ~35-45% for the low group.
CONDITION_MIX = (
    ("Migraine", 0.140, 0.72),
    ("Neuropathy", 0.120, 0.88),
    ("Cancer pain", 0.050, 0.65),
    ("Fibromyalgia", 0.130, 0.34),
    ("Rheumatoid arthritis", 0.060, 0.58),
    ("Intractable back pain", 0.160, 0.62),
    ("Trigeminal neuralgia", 0.050, 0.88),
    ("Lupus", 0.035, 0.35),
    ("Chronic Lyme disease", 0.045, 0.33),
    ("Gastroparesis", 0.030, 0.35),
    ("Cyclic vomiting", 0.030, 0.65),
    ("Phantom limb pain", 0.030, 0.90),
    ("Chronic pancreatitis", 0.030, 0.58),
)
OTHER_SHARE, NO_CONDITION_SHARE = 0.02, 0.01
OTHER_RESPONSE, NO_CONDITION_RESPONSE = 0.80, 0.60

# How each condition is written: names/synonyms, then ICD-10-CM codes.
CONDITION_LABELS = {
    "Migraine": (("Migraine", "migraines", "chronic migraine", "migraine headache"),
                 ("G43.909", "G43909", "G43.709", "G43.019", "G43.719")),
    "Neuropathy": (("Neuropathy", "peripheral neuropathy", "diabetic neuropathy",
                    "small fiber neuropathy", "neuropathic pain"),
                   ("G62.9", "E11.42", "E1142", "G60.9", "M79.2")),
    "Cancer pain": (("Cancer pain", "cancer-related pain", "oncologic pain"),
                    ("G89.3", "G893")),
    "Fibromyalgia": (("Fibromyalgia", "fibro", "FMS", "fibromyalgia syndrome"),
                     ("M79.7", "M797")),
    "Rheumatoid arthritis": (("Rheumatoid arthritis", "RA"),
                             ("M06.9", "M069", "M05.79", "M06.09")),
    "Intractable back pain": (("Intractable back pain", "low back pain", "chronic back pain",
                               "failed back surgery syndrome"),
                              ("M54.50", "M5450", "M51.26", "M47.816", "M96.1")),
    "Trigeminal neuralgia": (("Trigeminal neuralgia", "TN", "tic douloureux"),
                             ("G50.0", "G500")),
    "Lupus": (("Lupus", "SLE", "systemic lupus erythematosus"), ("M32.9", "M329", "M32.10")),
    "Chronic Lyme disease": (("Chronic Lyme disease", "lyme", "PTLDS",
                              "post-treatment Lyme disease syndrome"),
                             ("A69.20", "A6920", "A69.22")),
    "Gastroparesis": (("Gastroparesis", "gastroparesis"), ("K31.84", "K3184")),
    "Cyclic vomiting": (("Cyclic vomiting", "CVS", "cyclic vomiting syndrome",
                         "cyclical vomiting"),
                        ("G43.A0", "G43A0", "G43.A1", "R11.15")),
    "Phantom limb pain": (("Phantom limb pain", "phantom limb syndrome", "phantom pain"),
                          ("G54.6", "G546")),
    "Chronic pancreatitis": (("Chronic pancreatitis", "chronic pancreatitis"),
                             ("K86.1", "K861", "K86.0")),
}
OTHER_LABELS = ("CRPS", "complex regional pain syndrome", "CRPS type 1",
                "post-herpetic neuralgia", "occipital neuralgia", "interstitial cystitis",
                "endometriosis", "Ehlers-Danlos syndrome", "G90.50", "B02.29")

ADVERSE_EVENTS = ("nausea", "dissociation", "dizziness", "headache",
                  "emergence reaction", "hypertension")
ADVERSE_EVENT_SHARE = (0.40, 0.18, 0.15, 0.12, 0.08, 0.07)
HYPERTENSION = ADVERSE_EVENTS.index("hypertension")

# Opioids: generic (as in data/mme_factors_cdc2022.csv), share of first
# drugs, CDC factor, strength step, unit, most doses a day, labels.  "{d}" in
# a label is the strength and is used only for the strengths in ``combo``.
OPIOIDS = (
    ("oxycodone", 0.34, 1.5, 2.5, "mg", 4,
     ("oxycodone", "Oxycodone HCl", "OxyContin", "Roxicodone", "Percocet {d}/325 mg"),
     (2.5, 5.0, 7.5, 10.0)),
    ("hydrocodone", 0.20, 1.0, 2.5, "mg", 4,
     ("hydrocodone", "Norco {d}/325", "Vicodin", "hydrocodone-acetaminophen {d}/325 mg"),
     (5.0, 7.5, 10.0)),
    ("morphine", 0.10, 1.0, 15.0, "mg", 3, ("morphine", "MS Contin", "morphine ER"), ()),
    ("tramadol", 0.12, 0.2, 50.0, "mg", 4, ("tramadol", "Ultram"), ()),
    ("hydromorphone", 0.07, 5.0, 2.0, "mg", 4, ("hydromorphone", "Dilaudid"), ()),
    ("fentanyl transdermal", 0.06, 2.4, 12.5, "mcg/hr", 1,
     ("fentanyl patch", "Duragesic", "fentanyl"), ()),
    ("methadone", 0.04, 4.7, 5.0, "mg", 3, ("methadone",), ()),
    ("tapentadol", 0.03, 0.4, 50.0, "mg", 4, ("Nucynta", "tapentadol"), ()),
    ("codeine", 0.02, 0.15, 30.0, "mg", 4, ("Tylenol #3", "codeine"), ()),
    ("oxymorphone", 0.02, 3.0, 5.0, "mg", 2, ("Opana", "oxymorphone"), ()),
)
OPIOID_FACTOR = np.array([o[2] for o in OPIOIDS])
OPIOID_STEP = np.array([o[3] for o in OPIOIDS])
OPIOID_MAX_DPD = np.array([o[5] for o in OPIOIDS])
_OPIOID = {o[0]: i for i, o in enumerate(OPIOIDS)}
PATCH = _OPIOID["fentanyl transdermal"]
# short-acting drugs added on top of a first one (hydromorphone, else oxycodone,
# when the first is the same drug)
SECOND_OPIOIDS = tuple(_OPIOID[d] for d in ("oxycodone", "hydrocodone", "hydromorphone",
                                            "tramadol"))

BENZODIAZEPINES = (  # label, strength (mg), doses a day
    ("Xanax", 0.5, 2), ("alprazolam", 0.25, 3), ("clonazepam", 0.5, 2), ("Klonopin", 1.0, 1),
    ("lorazepam", 1.0, 2), ("Ativan", 0.5, 3), ("diazepam", 5.0, 2), ("Valium", 10.0, 1),
)

TAPER_NONE, TAPER_SLOW, TAPER_FAST, TAPER_UP = range(4)

MAX_INFUSIONS, MAX_BOOSTERS = 8, 30
FOLLOW_UP_DAYS = (28, 90, 180, 365)
MONTHS_OF_INTAKE = 30


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
    (``out_dir/<Type>.000.ndjson``, see :mod:`analysis.ingest.demo_fhir`).

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

    p = _enrol_patients(rng, patients, end)
    infusion_days = _plan_induction(rng, p)
    follow_up_days = _plan_follow_ups(rng, p)
    booster_days = _plan_boosters(rng, p)
    v = _lay_out_visits(p, infusion_days, follow_up_days, booster_days, _day_number(end))
    _record_pain(rng, p, v)
    _assign_opioid_regimens(rng, p)
    medications = _record_medications(rng, p, v)
    _record_mood(rng, p, v)
    _record_treatment(rng, p, v)
    _record_conditions(rng, p, v)
    _assign_providers(np.random.default_rng([seed, 18]), p, v)

    sessions = _session_table(p, v)
    if format == "fhir":
        from analysis.ingest import demo_fhir
        counts = demo_fhir.write_export(out, sessions, medications, seed=seed, end=end,
                                        messy=messy)
        return DemoFiles(out, out, sessions.num_rows, medications.num_rows, patients, counts)
    if format != "csv":
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if messy:
        sessions = _make_messy(rng, sessions, v)
        medications = _make_medications_messy(rng, medications)

    sessions_path = out / "sessions.csv"
    medications_path = out / "medications.csv"
    _write_csv(sessions, sessions_path)
    _write_csv(medications, medications_path)
    return DemoFiles(sessions_path, medications_path, sessions.num_rows,
                     medications.num_rows, patients)


# --------------------------------------------------------------------------
# 1. enrolment


def _enrol_patients(rng: np.random.Generator, n: int, end: dt.date) -> SimpleNamespace:
    """Patient-level traits.  Patients are numbered in order of intake."""
    p = SimpleNamespace(n=n)
    end_day = _day_number(end)
    start_day = _day_number(_months_before(end, MONTHS_OF_INTAKE))
    # Intake volume grows linearly (density 1 + x on [0, 1]): invert the CDF.
    u = rng.random(n)
    x = (np.sqrt(1.0 + 3.0 * u) - 1.0)
    p.intake = np.sort(start_day + np.floor(x * (end_day - start_day + 1))).astype(np.int64)
    width = max(6, len(str(n)))
    p.ids = pa.array([f"P{i:0{width}d}" for i in range(1, n + 1)], pa.string())

    p.site = rng.choice(len(SITES), size=n, p=SITE_SHARE)
    p.route = rng.choice(len(ROUTES), size=n, p=ROUTE_SHARE)

    # condition: 0-12 the clinic's list, 13 Other, 14 none written anywhere
    shares = np.array([c[1] for c in CONDITION_MIX])
    shares = shares / shares.sum() * (1 - OTHER_SHARE - NO_CONDITION_SHARE)
    shares = np.append(shares, [OTHER_SHARE, NO_CONDITION_SHARE])
    p.condition = rng.choice(len(shares), size=n, p=shares / shares.sum())
    response_rate = np.array([c[2] for c in CONDITION_MIX] + [OTHER_RESPONSE,
                                                              NO_CONDITION_RESPONSE])
    rate = response_rate[p.condition] * np.array(ROUTE_RESPONSE)[p.route]
    p.responder = rng.random(n) < rate
    # fraction of pain relief at full effect
    p.relief = np.where(p.responder, rng.uniform(0.40, 0.80, n), rng.uniform(-0.08, 0.22, n))
    # days after the last treatment over which relief fades by 1/e (after 21 days' grace)
    p.durability = np.where(p.responder, rng.uniform(90, 480, n), 1e9)

    base = np.clip(rng.normal(7.0, 1.3, n), 3.0, 10.0)
    p.zero_baseline = rng.random(n) < 0.004
    p.no_baseline = rng.random(n) < 0.008
    p.pain0 = np.where(p.zero_baseline, 0.0, base)
    p.decimal_pain = np.array(SITE_DECIMAL_PAIN)[p.site]

    p.weight = np.clip(np.exp(rng.normal(np.log(82), 0.22, n)), 45, 160)
    p.depressed = rng.random(n) < 0.45
    p.ptsd = rng.random(n) < 0.30
    p.phq0 = np.where(p.depressed, rng.normal(15.5, 4.0, n), rng.normal(6.0, 3.0, n))
    p.pcl0 = rng.normal(47, 12, n)
    p.mood_gain = rng.uniform(0.3, 0.65, n)   # share of mood scores lost at full relief
    p.mg_per_kg = rng.uniform(0.5, 0.75, n)   # first IV dose
    p.fixed_dose = rng.integers(0, 4, n)      # which usual dose for non-IV routes
    p.sbp0 = rng.normal(126, 11, n)           # resting systolic pressure
    return p


# --------------------------------------------------------------------------
# 2-4. planning the visits (day numbers; a slot is kept when its mask is set)

INFUSION_COUNT_P = {  # number of induction infusions, 0 = intake only
    True: (0.05, 0.14, 0.05, 0.06, 0.07, 0.08, 0.51, 0.03, 0.01),
    False: (0.08, 0.25, 0.08, 0.08, 0.08, 0.07, 0.33, 0.02, 0.01),
}


def _plan_induction(rng: np.random.Generator, p: SimpleNamespace) -> np.ndarray:
    """Induction infusion days (n x 8, -1 where there is none); sets the index day."""
    n = p.n
    count = np.empty(n, dtype=np.int64)
    for responder, probs in INFUSION_COUNT_P.items():
        rows = p.responder == responder
        count[rows] = rng.choice(len(probs), size=int(rows.sum()), p=probs)
    delay = np.where(rng.random(n) < 0.08, rng.integers(22, 76, n), rng.integers(3, 22, n))
    gaps = rng.integers(2, 5, (n, MAX_INFUSIONS))
    gaps[:, 0] = 0
    days = p.intake[:, None] + delay[:, None] + np.cumsum(gaps, axis=1)
    days = np.where(np.arange(MAX_INFUSIONS)[None, :] < count[:, None], days, -1)
    p.infusions = count
    p.index = np.where(count > 0, p.intake + delay, -1)
    p.induction_end = np.where(count > 0, days.max(axis=1), -1)
    # incomplete induction gives weaker relief
    p.relief = p.relief * np.minimum(1.0, (count + 1) / 5.0)
    # Days after the index infusion until the patient is lost to follow-up.
    early = count <= 2
    mean_stay = np.where(early, 35.0, np.where(p.responder, 560.0, 220.0))
    p.stay = rng.exponential(mean_stay)
    return days


def _plan_follow_ups(rng: np.random.Generator, p: SimpleNamespace) -> np.ndarray:
    """Follow-up days (n x 4, -1 where missed): ~day 28, 90, 180 and 365."""
    n = p.n
    target = np.array(FOLLOW_UP_DAYS)[None, :]
    spread = np.array([4.0, 8.0, 9.0, 10.0])[None, :]
    limit = np.array([10, 21, 21, 21])[None, :]
    jitter = np.clip(np.round(rng.normal(0, 1, (n, 4)) * spread), -limit, limit)
    # ~5% come late, outside the timepoint's window but before the next visit's
    late = rng.random((n, 4)) < 0.05
    lateness = rng.integers(np.array([15, 31, 31, 66]), np.array([26, 51, 61, 101]), (n, 4))
    jitter = np.where(late, lateness, jitter)
    rel = target + jitter
    days = p.index[:, None] + rel
    days[:, 0] = np.maximum(days[:, 0], p.induction_end + 3)   # 4 weeks: after induction
    show = rng.random((n, 4)) < np.array(SITE_SHOW_RATE)[p.site][:, None]
    kept = (p.infusions[:, None] > 0) & show & ((days - p.index[:, None]) <= p.stay[:, None])
    return np.where(kept, days, -1).astype(np.int64)


def _plan_boosters(rng: np.random.Generator, p: SimpleNamespace) -> np.ndarray:
    """Booster days (n x 30, -1 where none).  Responders come back roughly when
    their pain returns, every 1-4 months; a few non-responders try 1-3."""
    n = p.n
    full = p.infusions >= 3
    takes = np.where(p.responder & full, rng.random(n) < 0.88,
                     np.where(full, rng.random(n) < 0.25, rng.random(n) < 0.04))
    takes &= p.infusions > 0
    most = np.where(p.responder, MAX_BOOSTERS, rng.integers(1, 4, n))
    interval = np.clip(p.durability * rng.uniform(0.15, 0.4, n), 30, 120)
    interval = np.where(p.responder, interval, rng.uniform(30, 90, n))
    steps = interval[:, None] * rng.uniform(0.8, 1.2, (n, MAX_BOOSTERS))
    days = p.induction_end[:, None] + np.round(np.cumsum(steps, axis=1)).astype(np.int64)
    slot = np.arange(MAX_BOOSTERS)[None, :]
    kept = (takes[:, None] & (slot < most[:, None])
            & ((days - p.index[:, None]) <= p.stay[:, None]))
    return np.where(kept, days, -1)


# --------------------------------------------------------------------------
# 5. the visit table


def _lay_out_visits(p: SimpleNamespace, infusion_days: np.ndarray, follow_up_days: np.ndarray,
                    booster_days: np.ndarray, end_day: int) -> SimpleNamespace:
    """All visits of all patients, sorted by date, patient and visit type."""
    parts = [(p.intake[:, None], INTAKE), (infusion_days, INFUSION),
             (booster_days, BOOSTER), (follow_up_days, FOLLOW_UP)]
    pi, day, kind, slot = [], [], [], []
    for days, visit_type in parts:
        rows, cols = np.nonzero(days >= 0)
        pi.append(rows)
        day.append(days[rows, cols])
        kind.append(np.full(rows.size, visit_type))
        slot.append(cols)
    v = SimpleNamespace(pi=np.concatenate(pi), day=np.concatenate(day).astype(np.int64),
                        kind=np.concatenate(kind), slot=np.concatenate(slot))
    # Clinics are closed at weekends: Saturday -> Friday, Sunday -> Monday.
    weekday = (v.day + 3) % 7                    # 1970-01-01 was a Thursday
    v.day = v.day - (weekday == 5) + (weekday == 6)
    keep = v.day <= end_day
    for name in ("pi", "day", "kind", "slot"):
        setattr(v, name, getattr(v, name)[keep])
    order = np.lexsort((v.slot, v.kind, v.pi, v.day))
    for name in ("pi", "day", "kind", "slot"):
        setattr(v, name, getattr(v, name)[order])
    v.n = v.pi.size
    index = p.index[v.pi]                        # days after the index infusion,
    v.t = np.where(index >= 0, v.day - index, -1)  # -1 for the untreated
    v.treatment = (v.kind == INFUSION) | (v.kind == BOOSTER)
    return v


def _days_since_treatment(v: SimpleNamespace) -> np.ndarray:
    """Days since the patient's last infusion or booster on an earlier day (inf if none)."""
    big = np.int64(1 << 32)
    keys = v.pi.astype(np.int64) * big + v.day
    treated = np.sort(keys[v.treatment])
    at = np.searchsorted(treated, keys, side="left") - 1
    found = at >= 0
    prev = treated[np.maximum(at, 0)]
    found &= (prev // big) == v.pi
    return np.where(found, (v.day - (prev - v.pi * big)).astype(float), np.inf)


# --------------------------------------------------------------------------
# 6. pain


def _relief_at_visits(p: SimpleNamespace, v: SimpleNamespace) -> np.ndarray:
    """Fraction of baseline pain relieved at each visit (before that day's infusion)."""
    relief = p.relief[v.pi]
    since = _days_since_treatment(v)
    ramp = np.minimum(1.0, v.slot / 3.0)                       # induction builds up
    fade = np.exp(-np.maximum(since - 21.0, 0.0) / p.durability[v.pi])
    out = np.where(v.kind == INFUSION, relief * ramp, relief * fade)
    return np.where(v.kind == INTAKE, 0.0, out)


def _round_pain(rng: np.random.Generator, p: SimpleNamespace, v: SimpleNamespace,
                pain: np.ndarray) -> np.ndarray:
    pain = np.clip(pain, 0.0, 10.0)
    decimal = rng.random(v.n) < p.decimal_pain[v.pi]
    return np.where(decimal, np.round(pain, 1), np.floor(pain + 0.5))


def _record_pain(rng: np.random.Generator, p: SimpleNamespace, v: SimpleNamespace) -> None:
    v.relief = _relief_at_visits(p, v)
    base = p.pain0[v.pi]
    noise = rng.normal(0, 0.6, v.n) * (base > 0)
    returned = np.where(v.kind == BOOSTER, rng.uniform(0.0, 1.0, v.n), 0.0) * (base > 0)
    pain = base * (1 - v.relief) + noise + returned
    pain = _round_pain(rng, p, v, pain)
    drop = rng.uniform(2.0, 4.0, v.n)
    post = _round_pain(rng, p, v, pain - drop)
    missing = rng.random(v.n) < 0.02
    missing |= p.no_baseline[v.pi] & ((v.kind == INTAKE) | ((v.kind == INFUSION) & (v.slot <= 1)))
    v.pain_score = np.where(missing, np.nan, pain)
    v.pain_post = np.where(v.treatment & (rng.random(v.n) > 0.04), post, np.nan)


# --------------------------------------------------------------------------
# 7. opioids and benzodiazepines


def _assign_opioid_regimens(rng: np.random.Generator, p: SimpleNamespace) -> None:
    """Opioid regimen at intake (up to two drugs) and its taper; benzodiazepines."""
    n = p.n
    p.opioid_unknown = rng.random(n) < 0.05
    user = rng.random(n) < 0.55
    target = np.clip(np.exp(rng.normal(np.log(40), 0.75, n)), 10, 200)
    first = rng.choice(len(OPIOIDS), size=n, p=[o[1] for o in OPIOIDS])
    second = np.array(SECOND_OPIOIDS)[rng.integers(0, len(SECOND_OPIOIDS), n)]
    hydromorphone, oxycodone = _OPIOID["hydromorphone"], _OPIOID["oxycodone"]
    second = np.where(second == first,
                      np.where(first == hydromorphone, oxycodone, hydromorphone), second)
    two = user & (rng.random(n) < 0.18)
    share = np.where(two, rng.uniform(0.2, 0.4, n), 0.0)
    p.drug = np.stack([np.where(user, first, -1), np.where(two, second, -1)])
    p.label = np.stack([rng.integers(0, 100, n), rng.integers(0, 100, n)])
    p.dose0 = np.zeros((2, n))
    p.dpd0 = np.zeros((2, n), dtype=np.int64)
    for slot, mme in ((0, target * (1 - share)), (1, target * share)):
        drug = np.maximum(p.drug[slot], 0)
        most = OPIOID_MAX_DPD[drug]
        dpd = 1 + np.floor(rng.random(n) * most).astype(np.int64)     # 1..most a day
        once_daily_ok = rng.random(n) < 0.3            # else at least twice when allowed
        dpd = np.where(once_daily_ok, dpd, np.minimum(np.maximum(dpd, 2), most))
        step = OPIOID_STEP[drug]
        dose = np.maximum(step, np.round(mme / (dpd * OPIOID_FACTOR[drug]) / step) * step)
        on = p.drug[slot] >= 0
        p.dose0[slot] = np.where(on, dose, 0.0)
        p.dpd0[slot] = np.where(on, dpd, 0)

    # taper: kind, start (days after index), rate (share of the first dose a day), floor
    kinds_responder = rng.choice(4, size=n, p=(0.30, 0.55, 0.10, 0.05))
    kinds_other = rng.choice(4, size=n, p=(0.80, 0.12, 0.03, 0.05))
    p.taper = np.where(p.responder, kinds_responder, kinds_other)
    p.taper_start = np.where(p.taper == TAPER_FAST, rng.uniform(14, 60, n), rng.uniform(21, 75, n))
    rate = np.select([p.taper == TAPER_SLOW, p.taper == TAPER_FAST, p.taper == TAPER_UP],
                     [rng.uniform(0.07, 0.13, n) / 30, rng.uniform(0.12, 0.30, n) / 7,
                      rng.uniform(0.03, 0.08, n) / 30], 0.0)
    p.taper_rate = rate
    u = rng.random(n)
    floor_responder = np.select([u < 0.35, u < 0.70], [0.0, rng.uniform(0.2, 0.5, n)],
                                rng.uniform(0.55, 0.85, n))
    floor_fast = np.where(rng.random(n) < 0.6, 0.0, rng.uniform(0.3, 0.6, n))
    p.taper_floor = np.select(
        [p.taper == TAPER_FAST, p.responder], [floor_fast, floor_responder],
        rng.uniform(0.6, 0.9, n))

    p.benzo = rng.random(n) < np.where(p.ptsd, 0.25, 0.11)
    stops = rng.random(n) < np.where(p.responder, 0.30, 0.08)
    p.benzo_stop = np.where(stops, rng.uniform(30, 365, n), np.inf)
    p.benzo_drug = rng.integers(0, len(BENZODIAZEPINES), n)


def _taper_factor(p: SimpleNamespace, pi: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Daily opioid amount as a share of the intake amount, t days after index."""
    kind = p.taper[pi]
    elapsed = np.maximum(t - p.taper_start[pi], 0.0)
    down = np.maximum(p.taper_floor[pi], 1.0 - p.taper_rate[pi] * elapsed)
    up = np.minimum(1.3, 1.0 + p.taper_rate[pi] * elapsed)
    return np.select([(kind == TAPER_SLOW) | (kind == TAPER_FAST), kind == TAPER_UP],
                     [down, up], 1.0)


def _opioid_doses(p: SimpleNamespace, pi: np.ndarray, t: np.ndarray):
    """Per drug slot (dose, doses a day) at t days after index, and the total MME.

    A taper lowers the daily amount; it is written as the strength (a multiple
    of the drug's step, never above the intake strength) and doses a day (never
    more than at intake) that come closest.  Less than half a step is stopped.
    """
    f = _taper_factor(p, pi, t)
    doses, mme = [], np.zeros(pi.size)
    for slot in (0, 1):
        drug = p.drug[slot][pi]
        d = np.maximum(drug, 0)
        step, factor = OPIOID_STEP[d], OPIOID_FACTOR[d]
        dose0, dpd0 = p.dose0[slot][pi], p.dpd0[slot][pi]
        total = dose0 * dpd0 * f
        cap = np.ceil(dose0 * np.maximum(f, 1.0) / step - 1e-9) * step
        best_dose = np.zeros(pi.size)
        best_dpd = np.zeros(pi.size, dtype=np.int64)
        best_err = np.full(pi.size, np.inf)
        for per_day in (4, 3, 2, 1):
            dose = np.clip(np.round(total / per_day / step) * step, step, cap)
            err = np.abs(dose * per_day - total)
            better = (per_day <= dpd0) & (err < best_err - 1e-9)
            best_dose = np.where(better, dose, best_dose)
            best_dpd = np.where(better, per_day, best_dpd)
            best_err = np.where(better, err, best_err)
        on = (drug >= 0) & (total >= 0.5 * step)
        best_dose = np.where(on, best_dose, 0.0)
        best_dpd = np.where(on, best_dpd, 0)
        doses.append((best_dose, best_dpd))
        mme += best_dose * best_dpd * factor
    return doses, np.round(mme, 3)


def _opioid_labels(drug: np.ndarray, label: np.ndarray, dose: np.ndarray) -> np.ndarray:
    """Free-text drug names; a strength in a name always equals ``dose``."""
    quarter_mg = np.round(dose * 4).astype(np.int64)          # strengths are k/4 mg
    key = (drug.astype(np.int64) * 100 + label % 100) * 100_000 + quarter_mg
    combos, inverse = np.unique(key, return_inverse=True)
    names = []
    for k in combos:
        d, l, strength = k // 10_000_000, (k // 100_000) % 100, (k % 100_000) / 4
        _, _, _, _, _, _, labels, combo = OPIOIDS[int(d)]
        text = labels[int(l) % len(labels)]
        if "{d}" in text:
            text = text.format(d=_number(strength)) if strength in combo else labels[0]
        names.append(text)
    return np.array(names, dtype=object)[inverse.ravel()]


def _record_medications(rng: np.random.Generator, p: SimpleNamespace,
                        v: SimpleNamespace) -> pa.Table:
    """Session MME and benzodiazepine columns, and the medication export.

    Reconciled visits (intake and follow-ups of patients whose opioid use is
    known) get medication rows; ~10% of them leave the session MME blank so the
    medication export must fill it.  Boosters record MME ~40% of the time.
    """
    doses, mme = _opioid_doses(p, v.pi, v.t.astype(float))
    on_benzo = p.benzo[v.pi] & ~(v.t >= p.benzo_stop[v.pi])
    known = ~p.opioid_unknown[v.pi]
    reconciled = known & ((v.kind == INTAKE) | (v.kind == FOLLOW_UP))
    at_booster = known & (v.kind == BOOSTER) & (rng.random(v.n) < 0.4)
    blank_mme = reconciled & (rng.random(v.n) < 0.10)
    blank_benzo = reconciled & (rng.random(v.n) < 0.05)
    v.mme = np.where((reconciled | at_booster) & ~blank_mme, mme, np.nan)
    v.benzo = np.where((reconciled | at_booster) & ~blank_benzo,
                       np.where(on_benzo, 1, 0), -1)

    rows = np.nonzero(reconciled)[0]
    parts = []   # (visit row, order within the date, drug, dose, unit, doses a day)
    for slot in (0, 1):
        dose, per_day = doses[slot][0][rows], doses[slot][1][rows]
        take = dose > 0
        r = rows[take]
        drug = p.drug[slot][v.pi[r]]
        parts.append(dict(row=r, order=np.full(r.size, slot),
                          drug=_opioid_labels(drug, p.label[slot][v.pi[r]], dose[take]),
                          dose=dose[take],
                          unit=np.where(drug == PATCH, "mcg/hr", "mg").astype(object),
                          per_day=np.where(drug == PATCH, -1, per_day[take])))
    r = rows[on_benzo[rows]]
    b = p.benzo_drug[v.pi[r]]
    parts.append(dict(row=r, order=np.full(r.size, 2),
                      drug=np.array([x[0] for x in BENZODIAZEPINES], dtype=object)[b],
                      dose=np.array([x[1] for x in BENZODIAZEPINES])[b],
                      unit=np.full(r.size, "mg", dtype=object),
                      per_day=np.array([x[2] for x in BENZODIAZEPINES])[b]))
    nothing = (doses[0][0][rows] == 0) & (doses[1][0][rows] == 0) & ~on_benzo[rows]
    r = rows[nothing]
    parts.append(dict(row=r, order=np.full(r.size, 3), drug=np.full(r.size, "none", dtype=object),
                      dose=np.full(r.size, np.nan), unit=np.full(r.size, None, dtype=object),
                      per_day=np.full(r.size, -1)))
    cat = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    order = np.lexsort((cat["order"], cat["row"]))     # visit rows are already sorted
    cat = {k: a[order] for k, a in cat.items()}
    row = cat["row"]
    per_day = cat["per_day"]
    return pa.table({
        "patient_id": _take_text(p.ids, v.pi[row]),
        "date": pa.array(v.day[row].astype(np.int32), type=pa.date32()),
        "drug": pa.array(cat["drug"], type=pa.string()),
        "dose": pa.array(cat["dose"], from_pandas=True),
        "unit": pa.array(cat["unit"], type=pa.string()),
        "doses_per_day": pa.array(per_day, mask=per_day < 0, type=pa.int16()),
    })


# --------------------------------------------------------------------------
# 8. mood


def _record_mood(rng: np.random.Generator, p: SimpleNamespace, v: SimpleNamespace) -> None:
    """PHQ-9 and PCL-5 at intake, follow-ups and some treatments; PGIC at follow-ups.
    Mood improves with pain relief, so more in pain responders."""
    gain = p.mood_gain[v.pi] * np.clip(v.relief / 0.5, -0.3, 1.0)
    asked = ((v.kind == INTAKE) | (v.kind == FOLLOW_UP)
             | ((v.kind == BOOSTER) & (rng.random(v.n) < 0.5))
             | ((v.kind == INFUSION) & (rng.random(v.n) < 0.3)))
    asked &= rng.random(v.n) > 0.05
    phq = np.clip(np.round(p.phq0[v.pi] * (1 - gain) + rng.normal(0, 1.8, v.n)), 0, 27)
    pcl = np.clip(np.round(p.pcl0[v.pi] * (1 - 0.8 * gain) + rng.normal(0, 4, v.n)), 0, 80)
    v.phq9 = np.where(asked, phq, -1).astype(np.int64)
    v.pcl5 = np.where(asked & p.ptsd[v.pi], pcl, -1).astype(np.int64)
    pgic = np.clip(np.round(4.3 - v.relief * 5 + rng.normal(0, 0.8, v.n)), 1, 7)
    v.pgic = np.where((v.kind == FOLLOW_UP) & (rng.random(v.n) > 0.1), pgic, -1).astype(np.int64)


# --------------------------------------------------------------------------
# 9. treatment details


def _record_treatment(rng: np.random.Generator, p: SimpleNamespace, v: SimpleNamespace) -> None:
    """Route, ketamine dose, weight, vital signs and adverse events."""
    n, treat = v.n, v.treatment
    route = p.route[v.pi]
    v.route = np.where(treat, route, -1)
    weight = p.weight[v.pi]
    # IV: 0.5-0.75 mg/kg at the first infusion, +0.05 mg/kg per infusion, at most 1 mg/kg
    start = p.mg_per_kg[v.pi]
    step = np.where(v.kind == INFUSION, v.slot, p.infusions[v.pi] - 1)
    per_kg = np.minimum(1.0, start + 0.05 * step)
    iv = np.round(per_kg * weight / 5) * 5
    im = np.round(0.5 * weight / 5) * 5
    pick = p.fixed_dose[v.pi]
    usual = {"intranasal": np.array([50, 60, 80, 100]), "oral": np.array([100, 150, 200, 250]),
             "sublingual": np.array([50, 75, 100, 150])}
    is_route = {name: route == ROUTES.index(name) for name in ROUTES}
    mg = np.select([is_route["IV"], is_route["IM"], is_route["intranasal"], is_route["oral"]],
                   [iv, im, usual["intranasal"][pick], usual["oral"][pick]],
                   usual["sublingual"][pick])
    v.ketamine = np.where(treat & (rng.random(n) > 0.01), mg, np.nan)

    weighed = ((v.kind == INTAKE) | treat) & (rng.random(n) > 0.02)
    v.weight = np.where(weighed, np.round(weight + rng.normal(0, 0.7, n), 1), np.nan)

    event = treat & (rng.random(n) < np.where(is_route["IV"], 0.12, 0.07))
    which = rng.choice(len(ADVERSE_EVENTS), size=n, p=ADVERSE_EVENT_SHARE)
    v.adverse = np.where(event, which, -1)

    sbp = p.sbp0[v.pi] + rng.normal(14, 9, n)
    spike = rng.random(n) < 0.025
    sbp = np.where(spike, rng.uniform(180, 205, n), sbp)
    sbp = np.where(v.adverse == HYPERTENSION, np.maximum(sbp, rng.uniform(172, 200, n)), sbp)
    sbp = np.clip(np.round(sbp), 90, 230)
    spo2 = np.round(100 - np.abs(rng.normal(0, 1.8, n)))
    spo2 = np.where(rng.random(n) < 0.01, rng.integers(84, 90, n), np.clip(spo2, 91, 100))
    monitored = treat & (rng.random(n) > 0.02)
    v.sbp = np.where(monitored, sbp, -1).astype(np.int64)
    v.spo2 = np.where(monitored, spo2, -1).astype(np.int64)


def _assign_providers(rng: np.random.Generator, p: SimpleNamespace, v: SimpleNamespace) -> None:
    """Each patient's attending clinician at their site, on all their visits;
    a colleague at the same site covers ~8% of treatment sessions."""
    offset = np.cumsum([0] + [len(site) for site in PROVIDERS])
    p.provider = np.empty(p.n, dtype=np.int64)
    cover = np.empty(p.n, dtype=np.int64)
    for s, site in enumerate(PROVIDERS):
        rows = np.nonzero(p.site == s)[0]
        shares = np.array([share for _, share in site])
        own = rng.choice(len(site), size=rows.size, p=shares / shares.sum())
        # the colleague: the next clinician of the site
        p.provider[rows] = offset[s] + own
        cover[rows] = offset[s] + (own + 1) % len(site)
    covered = v.treatment & (rng.random(v.n) < COVER_SHARE)
    v.provider = np.where(covered, cover[v.pi], p.provider[v.pi])


# --------------------------------------------------------------------------
# conditions


def _condition_labels(rng: np.random.Generator, p: SimpleNamespace) -> list[str]:
    """Label each patient's condition as a name, synonym or ICD-10-CM code."""
    vocabulary: list[str] = []
    code = np.full(p.n, -1)
    for c, (name, _, _) in enumerate(CONDITION_MIX):
        names, codes = CONDITION_LABELS[name]
        labels = list(names) + [names[0].lower()] + list(codes)
        weights = ([0.35] + [0.30 / (len(names) - 1)] * (len(names) - 1) + [0.05]
                   + [0.30 / len(codes)] * len(codes))
        rows = np.nonzero(p.condition == c)[0]
        code[rows] = len(vocabulary) + rng.choice(len(labels), size=rows.size,
                                                  p=np.array(weights) / sum(weights))
        vocabulary += labels
    rows = np.nonzero(p.condition == len(CONDITION_MIX))[0]
    code[rows] = len(vocabulary) + rng.integers(0, len(OTHER_LABELS), rows.size)
    vocabulary += list(OTHER_LABELS)
    p.condition_label = code
    return vocabulary


def _record_conditions(rng: np.random.Generator, p: SimpleNamespace, v: SimpleNamespace) -> None:
    """The label sits on the intake row; ~2.5% of patients have it only on a
    later row; ~3% of later rows repeat it; ~1% never have one."""
    v.condition_vocabulary = _condition_labels(rng, p)
    label = p.condition_label[v.pi]
    late = (rng.random(p.n) < 0.025) & (p.infusions > 0)
    first_infusion = (v.kind == INFUSION) & (v.slot == 0)
    on_row = np.where(late[v.pi], first_infusion, v.kind == INTAKE)
    on_row |= (v.kind != INTAKE) & (rng.random(v.n) < 0.03)
    v.condition = np.where(on_row, label, -1)


# --------------------------------------------------------------------------
# output


def _session_table(p: SimpleNamespace, v: SimpleNamespace) -> pa.Table:
    width = max(7, len(str(v.n)))
    numbers = pa.array(np.arange(1, v.n + 1)).cast(pa.string())
    visit_id = pc.binary_join_element_wise("V", pc.utf8_lpad(numbers, width, "0"), "")
    columns = {
        "patient_id": _take_text(p.ids, v.pi),
        "visit_date": pa.array(v.day.astype(np.int32), type=pa.date32()),
        "visit_type": _take_text(VISIT_TYPES, v.kind),
        "visit_id": visit_id,
        "condition": _take_text(v.condition_vocabulary, v.condition),
        "site": _take_text(SITES, p.site[v.pi]),
        "provider": _take_text(PROVIDER_CODES, v.provider),
        "route": _take_text(ROUTES, v.route),
        "ketamine_mg": _float(v.ketamine),
        "weight_kg": _float(v.weight),
        "pain_score": _float(v.pain_score),
        "pain_post": _float(v.pain_post),
        "opioid_mme_per_day": _float(v.mme),
        "benzodiazepine": _take_text(("no", "yes"), v.benzo),
        "phq9": _int(v.phq9),
        "pcl5": _int(v.pcl5),
        "pgic": _int(v.pgic),
        "adverse_event": _take_text(ADVERSE_EVENTS, v.adverse),
        "sbp_max": _int(v.sbp),
        "spo2_min": _int(v.spo2),
    }
    assert tuple(columns) == CANONICAL_COLUMNS
    return pa.table(columns)


def _take_text(labels, codes: np.ndarray) -> pa.Array:
    """labels[codes] as a (dictionary-encoded) text column; a negative code is an
    empty cell."""
    codes = np.asarray(codes)
    index = pa.array(np.maximum(codes, 0).astype(np.int32), mask=codes < 0)
    dictionary = labels if isinstance(labels, pa.Array) else pa.array(list(labels), pa.string())
    return pa.DictionaryArray.from_arrays(index, dictionary)


def _float(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype(float), from_pandas=True)


def _int(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype(np.int64), mask=values < 0, type=pa.int64())


def _write_csv(table: pa.Table, path: Path) -> None:
    """Plain CSV: header of bare names, no quoting (no value holds a comma)."""
    with open(path, "wb") as handle:
        handle.write((",".join(table.column_names) + "\n").encode("utf-8"))
        pacsv.write_csv(table, handle, pacsv.WriteOptions(include_header=False,
                                                          quoting_style="none"))


# --------------------------------------------------------------------------
# 10. bad data


def _make_messy(rng: np.random.Generator, table: pa.Table, v: SimpleNamespace) -> pa.Table:
    """Spoil ~0.3% of rows the way real exports are spoiled.

    Exact duplicates, a missing patient_id, an unknown visit type ("phone
    call", ...), pain scores of 11 or "n/a", a PHQ-9 of "abc", a date written
    the US way or impossible, a systolic pressure typed with an extra digit.
    """
    n = table.num_rows
    bad = 0.003 * n
    kinds = {"duplicate": 0.30, "patient": 0.10, "visit_type": 0.12, "pain": 0.20,
             "phq9": 0.12, "date": 0.08, "sbp": 0.08}
    # every kind at least once (pain twice: an 11 and an "n/a"), even in a small file
    counts = {k: max(2 if k == "pain" else 1, int(round(bad * share)))
              for k, share in kinds.items()}
    rows = rng.choice(n, size=min(n, sum(counts.values())), replace=False)
    picked, start = {}, 0
    for k, count in counts.items():
        picked[k] = np.sort(rows[start:start + count])
        start += count

    columns = {name: table.column(name) for name in table.column_names}

    def spoil(name: str, at: np.ndarray, values) -> None:
        """Write text ``values`` into rows ``at`` (sorted) of a column."""
        text = columns[name].combine_chunks().cast(pa.string())
        mask = np.zeros(n, dtype=bool)
        mask[at] = True
        replacement = pa.array(list(values) if values is not None else [None] * at.size,
                               pa.string())
        columns[name] = pc.replace_with_mask(text, pa.array(mask), replacement)

    def values(at: np.ndarray, first: tuple[str, ...], more: tuple[str, ...]) -> np.ndarray:
        # the ``first`` values always appear, then random ones
        choices = np.array(first + more, dtype=object)
        out = choices[rng.integers(0, choices.size, at.size)]
        out[:len(first)] = np.array(first, dtype=object)[:at.size]
        return out

    spoil("patient_id", picked["patient"], None)
    spoil("visit_type", picked["visit_type"],
          values(picked["visit_type"], ("phone call",), ("no show", "Telehealth")))
    spoil("pain_score", picked["pain"], values(picked["pain"], ("11", "n/a"), ("N/A", "15", "-1")))
    spoil("phq9", picked["phq9"], values(picked["phq9"], ("abc",), ("refused", "35")))
    day = v.day[picked["date"]]
    dates = [dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in day]
    spoil("visit_date", picked["date"], np.array(
        [f"{d.month:02d}/{d.day:02d}/{d.year}" if i % 2 == 0 else f"{d.year}-02-30"
         for i, d in enumerate(dates)], dtype=object))
    sbp = v.sbp[picked["sbp"]]
    spoil("sbp_max", picked["sbp"], [str(x * 10) if x > 0 else "1400" for x in sbp])
    table = pa.table(columns)
    take = np.sort(np.concatenate([np.arange(n), picked["duplicate"]]), kind="stable")
    return table.take(pa.array(take))


def _make_medications_messy(rng: np.random.Generator, table: pa.Table) -> pa.Table:
    """A few duplicate rows, a strength left in the name only, an unknown drug."""
    n = table.num_rows
    if n == 0:
        return table
    columns = {name: table.column(name) for name in table.column_names}
    drug = columns["drug"].to_numpy(zero_copy_only=False)
    in_name = np.nonzero(np.array(["/325" in str(d) for d in drug]))[0]
    if in_name.size:
        at = rng.choice(in_name, size=min(3, in_name.size), replace=False)
        dose = columns["dose"].to_numpy(zero_copy_only=False).copy()
        dose[at] = np.nan
        columns["dose"] = pa.array(dose, from_pandas=True)
    table = pa.table(columns)
    extra = table.slice(int(rng.integers(0, n)), 1)
    extra = pa.table({"patient_id": extra.column("patient_id"), "date": extra.column("date"),
                      "drug": pa.array(["kratom"]), "dose": pa.array([2.0]),
                      "unit": pa.array(["g"]), "doses_per_day": pa.array([3], type=pa.int16())})
    dup = np.sort(rng.choice(n, size=min(n, max(2, n // 2000)), replace=False))
    take = np.sort(np.concatenate([np.arange(n), dup]), kind="stable")
    return pa.concat_tables([table.take(pa.array(take)), extra])


# --------------------------------------------------------------------------
# dates and numbers


def _day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _months_before(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month + 1, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _number(x: float) -> str:
    return f"{x:g}"
