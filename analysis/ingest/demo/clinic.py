"""The made-up clinic: three Colorado sites and their clinicians, routes,
the 13 conditions and how each is written, adverse events, opioids and
benzodiazepines, follow-up days, and the calendar arithmetic every step shares.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

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
OPIOID_INDEX = {o[0]: i for i, o in enumerate(OPIOIDS)}
PATCH = OPIOID_INDEX["fentanyl transdermal"]
# short-acting drugs added on top of a first one (hydromorphone, else oxycodone,
# when the first is the same drug)
SECOND_OPIOIDS = tuple(OPIOID_INDEX[d] for d in ("oxycodone", "hydrocodone", "hydromorphone",
                                            "tramadol"))

BENZODIAZEPINES = (  # label, strength (mg), doses a day
    ("Xanax", 0.5, 2), ("alprazolam", 0.25, 3), ("clonazepam", 0.5, 2), ("Klonopin", 1.0, 1),
    ("lorazepam", 1.0, 2), ("Ativan", 0.5, 3), ("diazepam", 5.0, 2), ("Valium", 10.0, 1),
)

TAPER_NONE, TAPER_SLOW, TAPER_FAST, TAPER_UP = range(4)

MAX_INFUSIONS, MAX_BOOSTERS = 8, 30
FOLLOW_UP_DAYS = (28, 90, 180, 365)
MONTHS_OF_INTAKE = 30


# --------------------------------------------------------------------------
# dates and numbers


def day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def months_before(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month + 1, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def number_text(x: float) -> str:
    return f"{x:g}"
