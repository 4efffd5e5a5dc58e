"""Opioid tapering among baseline opioid users (SPEC §3, §5).

* :func:`mme_by_week`         median MME (and IQR) by week since the index date;
* :func:`monthly_use`         share of patients on opioids, ≥ 50 and ≥ 90 MME/day,
  by calendar month (CDC 2022 thresholds);
* :func:`mme_changes`         % MME change at a timepoint (for a histogram);
* :func:`opioid_summary`      baseline use, and the mme_stop / mme50 rates with CIs;
* :func:`benzodiazepine_by_month`  benzodiazepine co-prescription over time;
* :func:`taper_intervals`     pace of each drop between consecutive MME records
  (SPEC §3, HHS 2019): *rapid* at ≥ 10% of the baseline dose per week,
  *faster than the usual starting pace* at ≥ 10% per 30 days (boundaries
  inclusive, a stop to 0 counts like any other drop), and flagged against a
  threshold the user sets in % per week or % per month (30 days).

Every function takes a :class:`analysis.storage.store.Snapshot` first and the shared
:class:`analysis.metrics.outcomes.Filters`; results are DataFrames or small frozen
dataclasses (picklable, so the dashboard can cache them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from analysis.metrics import charts
from analysis.core import definitions, stats
from analysis.core.audience import SUPPRESSED, Audience, too_few
from analysis.core.definitions import TIMEPOINTS
from analysis.metrics.outcomes import internal_only
from analysis.core.filters import Filters
from analysis.storage.queries import run_query
from analysis.storage.store import Snapshot

# CDC 2022 risk thresholds (MME/day).
THRESHOLDS = (50, 90)
# Taper paces (SPEC §3, HHS 2019), as a share of the baseline dose per unit
# of time; a "month" is 30 days (HHS: ~10% a month is a common starting pace).
DAYS_PER_UNIT = {"week": 7, "month": 30}
UNIT_TEXT = {"week": "per week", "month": "per month (30 days)"}
TOLERANCE = 1e-9


@dataclass(frozen=True)
class TaperThreshold:
    """A taper pace: ``percent`` of the patient's baseline dose per ``unit``
    ("week" or "month" = 30 days).  A drop at least this fast meets it
    (inclusive, with the 1e-9 tolerance of every ratio)."""
    percent: float
    unit: str = "week"

    def __post_init__(self):
        if self.unit not in DAYS_PER_UNIT:
            raise ValueError(f"unknown taper unit {self.unit!r}; one of week, month")
        if not self.percent > 0:
            raise ValueError("a taper threshold must be above 0%")

    def pace_in_unit(self, pace_per_week: float) -> float:
        """A pace per week as a fraction of the baseline per this unit."""
        return pace_per_week * DAYS_PER_UNIT[self.unit] / 7

    def met_by(self, mme_before: float, mme_after: float, baseline_mme: float,
               days: int) -> bool:
        drop = (mme_before - mme_after) / baseline_mme / (days / DAYS_PER_UNIT[self.unit])
        return drop >= self.percent / 100 - TOLERANCE

    def text(self) -> str:
        return f"{self.percent:g}% of the baseline dose {UNIT_TEXT[self.unit]}"


# SPEC §3: rapid (HHS "10% a week is already fast") and faster than the usual
# starting pace (HHS "about 10% a month").
RAPID = TaperThreshold(10, "week")
FASTER_THAN_USUAL = TaperThreshold(10, "month")
DEFAULT_THRESHOLD = RAPID


def _share(part, whole) -> float | None:
    return None if not whole else float(part) / float(whole)


# --------------------------------------------------------------------------
# MME over time


def mme_records(snap: Snapshot, filters: Filters = Filters()) -> pd.DataFrame:
    """Each baseline opioid user's daily MME records from the baseline record on:
    patient_id, condition, site, route, index_date, baseline_mme,
    baseline_mme_date, record_date, days_since_index, mme."""
    frame = run_query(snap, "opioids_mme_records", filters, alias="p")
    for column in ("index_date", "baseline_mme_date", "record_date"):
        frame[column] = pd.to_datetime(frame[column]).dt.date
    frame["days_since_index"] = frame["days_since_index"].astype(int)
    return frame


def week_since_index(days: int) -> int:
    """Week 0 is the baseline (on or before the index date); days 1–7 after
    the index date are week 1, days 8–14 week 2, and so on."""
    return 0 if days <= 0 else math.ceil(days / 7)


def mme_by_week(snap: Snapshot, filters: Filters = Filters(),
                min_patients: int = charts.MIN_PER_POINT) -> pd.DataFrame:
    """Median MME/day with its quartiles by week since the index date.

    Week 0 is every baseline user's baseline MME; each later week takes each
    patient's last record in that week, so a patient counts once per week.
    Weeks with fewer than ``min_patients`` patients are left out.  Columns:
    week, patients, median_mme, q1_mme, q3_mme, median_percent_of_baseline.
    """
    records = mme_records(snap, filters)
    columns = ["week", "patients", "median_mme", "q1_mme", "q3_mme",
               "median_percent_of_baseline"]
    if records.empty:
        return pd.DataFrame(columns=columns)
    after = records[records.days_since_index > 0].copy()
    after["week"] = after["days_since_index"].map(week_since_index)
    after = after.sort_values(["patient_id", "record_date"]).groupby(
        ["patient_id", "week"], as_index=False).last()
    baseline = records.drop_duplicates("patient_id")[["patient_id", "baseline_mme"]]
    baseline = baseline.assign(week=0, mme=baseline["baseline_mme"])
    weekly = pd.concat([baseline[["patient_id", "week", "mme", "baseline_mme"]],
                        after[["patient_id", "week", "mme", "baseline_mme"]]])
    weekly["percent_of_baseline"] = 100 * weekly["mme"] / weekly["baseline_mme"]
    grouped = weekly.groupby("week")
    out = pd.DataFrame({
        "patients": grouped["patient_id"].nunique(),
        "median_mme": grouped["mme"].median(),
        "q1_mme": grouped["mme"].quantile(0.25),
        "q3_mme": grouped["mme"].quantile(0.75),
        "median_percent_of_baseline": grouped["percent_of_baseline"].median(),
    }).reset_index()
    out = out[out.patients >= min_patients].reset_index(drop=True)
    out["week"] = out["week"].astype(int)
    out["patients"] = out["patients"].astype(int)
    return out[columns]


def monthly_use(snap: Snapshot, filters: Filters = Filters()) -> pd.DataFrame:
    """Per calendar month, treated patients in view with an MME recorded and
    the shares on opioids (> 0), at ≥ 50 and at ≥ 90 MME/day.  Columns:
    month, patients_recorded, on_opioids, at_least_50, at_least_90,
    share_on_opioids, share_at_least_50, share_at_least_90."""
    frame = run_query(snap, "opioids_monthly_use", filters, alias="p")
    frame["month"] = pd.to_datetime(frame["month"]).dt.date
    for column in ("patients_recorded", "on_opioids", "at_least_50", "at_least_90"):
        frame[column] = frame[column].astype(int)
    for column in ("on_opioids", "at_least_50", "at_least_90"):
        frame[f"share_{column}"] = [_share(k, n) for k, n in
                                    zip(frame[column], frame["patients_recorded"])]
    return frame


def benzodiazepine_by_month(snap: Snapshot, filters: Filters = Filters()) -> pd.DataFrame:
    """Benzodiazepine co-prescription per month.  Columns: month,
    visits_recorded, visits_on_benzodiazepine, share_visits,
    opioid_users_recorded, opioid_users_on_benzodiazepine, share_opioid_users."""
    frame = run_query(snap, "opioids_benzodiazepine_by_month", filters, alias="p")
    frame["month"] = pd.to_datetime(frame["month"]).dt.date
    for column in ("visits_recorded", "visits_on_benzodiazepine", "opioid_users_recorded",
                   "opioid_users_on_benzodiazepine"):
        frame[column] = frame[column].astype(int)
    frame["share_visits"] = [_share(k, n) for k, n in
                             zip(frame["visits_on_benzodiazepine"], frame["visits_recorded"])]
    frame["share_opioid_users"] = [
        _share(k, n) for k, n in
        zip(frame["opioid_users_on_benzodiazepine"], frame["opioid_users_recorded"])]
    return frame[["month", "visits_recorded", "visits_on_benzodiazepine", "share_visits",
                  "opioid_users_recorded", "opioid_users_on_benzodiazepine",
                  "share_opioid_users"]]


# --------------------------------------------------------------------------
# outcomes at a timepoint


def mme_week_chart(snap: Snapshot, filters: Filters = Filters(),
                   audience: Audience = Audience.CLINICAL) -> charts.Chart:
    """The weekly dose (:func:`mme_by_week`) as a page draws it: weeks 0 to
    the last drawn one, a week from fewer than 11 baseline users empty (the
    line breaks there), and the sentence naming those weeks."""
    internal_only(audience, "Opioid dose by week")
    counted = "baseline opioid users with a dose recorded that week"
    weekly = mme_by_week(snap, filters, charts.MIN_PER_POINT)
    if weekly.empty:
        return charts.Chart(weekly, nothing=charts.nothing_text(
            "Median daily opioid dose by week", counted))
    weekly = weekly.set_index("week").reindex(
        range(0, int(weekly["week"].max()) + 1)).rename_axis("week").reset_index()
    gaps = list(weekly.loc[weekly["patients"].isna(), "week"])
    return charts.Chart(weekly, charts.not_drawn_text(
        [f"weeks {charts.ranges(gaps)}"] if gaps else [], counted))


def monthly_chart(snap: Snapshot, filters: Filters = Filters(),
                  audience: Audience = Audience.CLINICAL) -> charts.Chart:
    """Opioid use by month (:func:`monthly_use`) as a page draws it: a
    month with fewer than 11 patients recorded keeps its counts but loses
    its shares (no point), and is named."""
    internal_only(audience, "Opioid use by month")
    counted = "patients with a dose recorded that month"
    monthly = monthly_use(snap, filters)
    if monthly.empty:
        return charts.Chart(monthly, nothing="No opioid dose is recorded for the patients "
                                             "matching these filters.")
    drawn = [charts.enough(n) for n in monthly["patients_recorded"]]
    if not any(drawn):
        return charts.Chart(monthly, nothing=charts.nothing_text("Opioid use by month",
                                                                 counted))
    monthly = monthly.copy()
    keep = pd.Series(drawn, index=monthly.index)
    for column in ("share_on_opioids", "share_at_least_50", "share_at_least_90"):
        monthly[column] = monthly[column].astype(object).where(keep, None)
    thin = monthly.loc[~keep, "month"]
    return charts.Chart(monthly, charts.not_drawn_text(
        [charts.month_list(thin)] if len(thin) else [], counted))


@dataclass(frozen=True)
class BenzodiazepineChart:
    months: pd.DataFrame     # benzodiazepine_by_month, shares from too few left empty
    visits_recorded: int     # over the whole period
    visits_on_benzodiazepine: int
    not_drawn: str
    nothing: str = ""

    @property
    def drawn(self) -> bool:
        return not self.nothing

    @property
    def share(self) -> float | None:
        return _share(self.visits_on_benzodiazepine, self.visits_recorded)


def benzodiazepine_chart(snap: Snapshot, filters: Filters = Filters(),
                         audience: Audience = Audience.CLINICAL) -> BenzodiazepineChart:
    """Benzodiazepine co-prescription by month (:func:`benzodiazepine_by_month`)
    as a page draws it: a month's share of visits from fewer than 11 visits,
    and its share of opioid users from fewer than 11 users, left empty and
    named."""
    internal_only(audience, "Benzodiazepine co-prescription")
    benzo = benzodiazepine_by_month(snap, filters)
    total = int(benzo["visits_recorded"].sum()) if len(benzo) else 0
    on = int(benzo["visits_on_benzodiazepine"].sum()) if len(benzo) else 0
    if benzo.empty:
        return BenzodiazepineChart(benzo, 0, 0, "", "No benzodiazepine status is recorded for "
                                                    "the patients matching these filters.")
    visits_ok = pd.Series([charts.enough(n) for n in benzo["visits_recorded"]], index=benzo.index)
    users_ok = pd.Series([charts.enough(n) for n in benzo["opioid_users_recorded"]],
                         index=benzo.index)
    if not visits_ok.any():
        return BenzodiazepineChart(benzo, total, on, "", charts.nothing_text(
            "Benzodiazepine co-prescription by month", "visits recording it a month"))
    benzo = benzo.copy()
    benzo["share_visits"] = benzo["share_visits"].astype(object).where(visits_ok, None)
    benzo["share_opioid_users"] = benzo["share_opioid_users"].astype(object).where(users_ok,
                                                                                   None)
    missing = []
    if not visits_ok.all():
        missing.append(f"visits in {charts.month_list(benzo.loc[~visits_ok, 'month'])}")
    if not users_ok.all():
        missing.append(f"opioid users in {charts.month_list(benzo.loc[~users_ok, 'month'])}")
    return BenzodiazepineChart(benzo, total, on, charts.not_drawn_text(
        missing, "visits or opioid users recording it that month"))


def mme_changes(snap: Snapshot, timepoint: str = "3m",
                filters: Filters = Filters(),
                audience: Audience = Audience.CLINICAL) -> pd.DataFrame:
    """Per baseline opioid user with a follow-up MME at the timepoint:
    patient_id, condition, site, route, baseline_mme, follow_up_mme,
    percent_change (follow-up − baseline as % of baseline; −100 = stopped).
    Internal readers only (one row is one patient)."""
    internal_only(audience, "Opioid dose changes")
    if timepoint not in TIMEPOINTS:
        raise ValueError(f"unknown timepoint {timepoint!r}")
    return run_query(snap, "opioids_mme_change", filters, {"timepoint": timepoint}, alias="p")


@dataclass(frozen=True)
class OpioidSummary:
    timepoint: str
    population: str
    treated: int                  # treated patients in view
    baseline_known: int           # … with a baseline MME (user or not)
    baseline_users: int           # … with baseline MME > 0
    baseline_at_least_50: int
    baseline_at_least_90: int
    median_baseline_mme: float | None
    stopped: stats.Proportion     # mme_stop: follow-up MME = 0
    halved: stats.Proportion      # mme50: MME cut by ≥ 50%
    with_follow_up: int           # baseline users with a follow-up MME at the timepoint
    median_percent_change: float | None


def flag(rate: stats.Proportion) -> str:
    """" · too few to report" after a rate over fewer than 11 patients (an
    internal reader sees it, flagged), else ""."""
    return f" · {SUPPRESSED}" if too_few(rate.n) and rate.n else ""


def opioid_summary(snap: Snapshot, timepoint: str = "3m", population: str = "itt",
                   filters: Filters = Filters(), ci: str = "wilson",
                   audience: Audience = Audience.CLINICAL) -> OpioidSummary:
    """Opioid use at baseline and the opioid outcomes (mme_stop, mme50) at one
    timepoint for one population, with Wilson (or exact) intervals.
    Internal readers only: a rate over fewer than 11 is flagged, not hidden."""
    definitions.check_setting(timepoint, "mme50", population, ci)
    internal_only(audience, "Opioid tapering")
    use = run_query(snap, "opioids_baseline_use", filters, alias="p").iloc[0]
    counts = run_query(snap, "opioids_outcome_counts", filters, {"timepoint": timepoint}, alias="p")
    counts = counts.set_index("definition")

    def rate(definition: str) -> stats.Proportion:
        if definition not in counts.index:
            return stats.proportion(0, 0, method=ci)
        row = counts.loc[definition]
        return stats.proportion(int(row[f"{population}_responders"]),
                                int(row[f"{population}_n"]), method=ci)

    changes = mme_changes(snap, timepoint, filters)["percent_change"]
    median_baseline = use["median_baseline_mme"]
    return OpioidSummary(
        timepoint, population, int(use["treated"]), int(use["baseline_known"]),
        int(use["baseline_users"]), int(use["baseline_at_least_50"]),
        int(use["baseline_at_least_90"]),
        None if pd.isna(median_baseline) else float(median_baseline),
        rate("mme_stop"), rate("mme50"), int(changes.size),
        None if changes.empty else float(changes.median()))


# --------------------------------------------------------------------------
# taper pace


def taper_pace(mme_before: float, mme_after: float, baseline_mme: float, days: int) -> float:
    """Drop in MME as a fraction of the baseline dose, per week.

    100 → 70 MME/day over 14 days with a baseline of 100 is 0.15 (15% of the
    baseline per week).  An increase gives a negative pace.
    """
    if baseline_mme <= 0:
        raise ValueError("the taper pace needs a baseline MME above 0")
    if days <= 0:
        raise ValueError("the records must be on different days")
    return (mme_before - mme_after) / baseline_mme / (days / 7)


def taper_intervals(snap: Snapshot, filters: Filters = Filters(),
                    threshold: TaperThreshold = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Every interval between consecutive MME records of each baseline user,
    from the baseline record on, with its pace (fraction of the baseline dose
    per week; a stop to 0 is a drop like any other) and whether it is
    ``rapid`` (≥ 10%/week), ``faster_than_usual`` (≥ 10%/30 days) and
    ``flagged`` (at least as fast as ``threshold``).

    Columns: patient_id, condition, site, baseline_mme, from_date, to_date,
    days, mme_before, mme_after, pace, pace_per_30_days, rapid,
    faster_than_usual, flagged.
    """
    if not isinstance(threshold, TaperThreshold):
        raise TypeError("threshold must be a TaperThreshold (percent and unit)")
    records = mme_records(snap, filters).sort_values(["patient_id", "record_date"])
    columns = ["patient_id", "condition", "site", "baseline_mme", "from_date", "to_date",
               "days", "mme_before", "mme_after", "pace", "pace_per_30_days", "rapid",
               "faster_than_usual", "flagged"]
    if records.empty:
        return pd.DataFrame(columns=columns)
    by_patient = records.groupby("patient_id")
    records["from_date"] = by_patient["record_date"].shift()
    records["mme_before"] = by_patient["mme"].shift()
    intervals = records.dropna(subset=["mme_before"]).rename(
        columns={"record_date": "to_date", "mme": "mme_after"})
    intervals["days"] = [(b - a).days for a, b in
                         zip(intervals["from_date"], intervals["to_date"])]
    rows = list(zip(intervals["mme_before"], intervals["mme_after"],
                    intervals["baseline_mme"], intervals["days"]))
    intervals["pace"] = [taper_pace(b, a, base, d) for b, a, base, d in rows]
    intervals["pace_per_30_days"] = intervals["pace"] * DAYS_PER_UNIT["month"] / 7
    for column, rule in (("rapid", RAPID), ("faster_than_usual", FASTER_THAN_USUAL),
                         ("flagged", threshold)):
        intervals[column] = [rule.met_by(*row) for row in rows]
    intervals["days"] = intervals["days"].astype(int)
    return intervals[columns].reset_index(drop=True)


@dataclass(frozen=True)
class FastTapers:
    threshold: TaperThreshold     # the user's flag
    baseline_users: int           # baseline users in view with at least one interval
    intervals: int
    flagged_intervals: int        # at least as fast as the threshold
    flagged_patients: int
    rapid_patients: int           # with an interval >= 10% per week
    faster_than_usual_patients: int   # with an interval >= 10% per 30 days
    flagged: pd.DataFrame | None  # the flagged intervals (see taper_intervals); None
                                  # for anyone but the clinical team (they name patients)


def fast_tapers(snap: Snapshot, filters: Filters = Filters(),
                threshold: TaperThreshold = DEFAULT_THRESHOLD,
                audience: Audience = Audience.CLINICAL) -> FastTapers:
    """The intervals tapered at least as fast as ``threshold``, and how many
    patients had a rapid taper and a taper faster than the usual starting
    pace (SPEC §3).  The flagged intervals themselves (patient ids) for the
    clinical team only; counts for analysts; nothing for the external
    audience."""
    internal_only(audience, "Fast tapers")
    intervals = taper_intervals(snap, filters, threshold)
    flagged = intervals[intervals["flagged"].astype(bool)].sort_values(
        ["pace", "patient_id"], ascending=[False, True]).reset_index(drop=True)

    def patients(column: str) -> int:
        return int(intervals.loc[intervals[column].astype(bool), "patient_id"].nunique())

    return FastTapers(threshold, int(intervals["patient_id"].nunique()), int(len(intervals)),
                      int(len(flagged)), int(flagged["patient_id"].nunique()),
                      patients("rapid"), patients("faster_than_usual"),
                      flagged if audience.sees_patients else None)
