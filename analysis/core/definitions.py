"""The clinic's outcome definitions (SPEC §3), the one owner on the Python
side: the follow-up timepoints and their windows, the responder definitions
and which baselines each needs, the populations, the CI methods and the
thresholds, with the words the pages use for them.

The SQL reference models (``sql/models/reference/``: timepoints,
definitions, populations, thresholds) hold the same facts for the queries;
``tests/test_definitions.py`` checks that the two agree, so neither can
drift.  Plain data, no database.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Timepoint:
    key: str            # "3m"
    label: str          # "3 months"
    target_day: int     # calendar days from the index date
    window_start: int   # the follow-up window, inclusive
    window_end: int


TIMEPOINT_WINDOWS = (
    Timepoint("4w", "4 weeks", 28, 14, 42),
    Timepoint("3m", "3 months", 90, 60, 120),
    Timepoint("6m", "6 months", 180, 150, 210),
    Timepoint("12m", "12 months", 365, 300, 430),
)
TIMEPOINTS = tuple(t.key for t in TIMEPOINT_WINDOWS)
TIMEPOINT_LABELS = {t.key: t.label for t in TIMEPOINT_WINDOWS}


@dataclass(frozen=True)
class Definition:
    key: str             # "pain30"
    label: str           # what the pages call it: "≥30% less pain"
    description: str     # the reference model's label, with its source
    needs_pain: bool     # needs a baseline pain above 0
    needs_mme: bool      # needs a baseline opioid dose above 0 (an opioid user)


RESPONDER_DEFINITIONS = (
    Definition("pain30", "≥30% less pain", "≥30% less pain (IMMPACT: moderately important)",
               True, False),
    Definition("pain50", "≥50% less pain", "≥50% less pain (IMMPACT: substantial)",
               True, False),
    Definition("pain2pt", "pain down ≥2 points", "pain down ≥2 points on the 0–10 scale",
               True, False),
    Definition("mme50", "opioid dose cut by ≥50%", "opioid dose (MME/day) cut by ≥50%",
               False, True),
    Definition("mme_stop", "off opioids", "off opioids (0 MME/day)", False, True),
    Definition("claim", "≥30% less pain and opioid dose cut by ≥50%",
               "≥30% less pain and opioid dose cut by ≥50%", True, True),
)
DEFINITIONS = tuple(d.key for d in RESPONDER_DEFINITIONS)
DEFINITION_LABELS = {d.key: d.label for d in RESPONDER_DEFINITIONS}
#: The definitions on pain alone (a pain waterfall is coloured by one).
PAIN_DEFINITIONS = tuple(d.key for d in RESPONDER_DEFINITIONS if d.needs_pain and not d.needs_mme)
#: The definitions whose denominator is the baseline opioid users.
OPIOID_DEFINITIONS = tuple(d.key for d in RESPONDER_DEFINITIONS if d.needs_mme)


def definition(key: str) -> Definition:
    return next(d for d in RESPONDER_DEFINITIONS if d.key == key)


#: Why a treated patient is not in a definition's denominator for want of a
#: baseline it needs (the counts of sql/queries/outcome_exclusions.sql).
BASELINE_EXCLUSIONS = ("no_baseline_pain", "baseline_pain_zero", "opioid_use_unknown",
                       "not_on_opioids_at_baseline")

#: Completed induction (the patient flow's stage, the worklist's "stopped in
#: induction", the dose & course groups): at least 4 ketamine infusions
#: (infusion or booster visits, counted once per day) on days 0–42 after the
#: index date, i.e. within the first 6 weeks.
INDUCTION_MIN_INFUSIONS = 4
INDUCTION_DAYS = 42          # days 0..42 after the index date: the first 6 weeks
INDUCTION_TEXT = (f"at least {INDUCTION_MIN_INFUSIONS} ketamine infusions (infusion or booster "
                  f"visits, once per day) within {INDUCTION_DAYS // 7} weeks of the first "
                  f"(days 0–{INDUCTION_DAYS})")


#: SPEC §3's populations: ITT (eligible and due; a missing follow-up is not a
#: responder; the default) and completers (due with every follow-up value
#: needed, a subset of ITT).  Each is a flag column of the populations model
#: (and so of patient_outcomes, mood_outcomes and the PGIC query).
POPULATIONS = ("itt", "completers")
POPULATION_COLUMNS = {"itt": "in_itt", "completers": "in_completers"}
#: Two-sided 95% intervals of a proportion (SPEC §4): Wilson by default.
CI_METHODS = ("wilson", "exact")

#: The numbers of the responder definitions and mood measures: the
#: thresholds reference model's one row, name for name.
THRESHOLDS = {
    "pain30_reduction": 0.30,
    "pain50_reduction": 0.50,
    "pain2pt_points": 2.0,
    "mme50_reduction": 0.50,
    "tolerance": 1e-9,
    "phq9_eligible_from": 10,
    "phq9_response_reduction": 0.50,
    "phq9_remission_below": 5,
    "pcl5_eligible_from": 33,
    "pcl5_improvement_points": 10,
}


def check_setting(timepoint: str | None = None, definition: str | None = None,
                  population: str | None = None, ci: str | None = None) -> None:
    """ValueError naming the allowed values when a setting is unknown (a
    setting left as None is not checked)."""
    for name, value, allowed in (("timepoint", timepoint, TIMEPOINTS),
                                 ("definition", definition, DEFINITIONS),
                                 ("population", population, POPULATIONS),
                                 ("CI method", ci, CI_METHODS)):
        if value is not None and value not in allowed:
            raise ValueError(f"unknown {name} {value!r}; one of {', '.join(allowed)}")
