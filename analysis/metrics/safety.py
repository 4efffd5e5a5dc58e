"""Safety: adverse events, blood pressure and oxygen saturation per 100
treatment sessions (SPEC §3, "Words").

The denominator is every treatment session, i.e. every ``infusion`` visit and
``booster`` of the treated patients in view (the shared filters pick the
patients; all their sessions count), whatever the route.  Each rate is a
per-session proportion × 100 with a 95% Wilson interval (Clopper–Pearson on
request).  The quarterly report reads the same rates for its quarter
(``visits_from``/``visits_to``), so the page and the report share one
computation:

* **adverse events**, by controlled category (:mod:`analysis.metrics.adverse_events`,
  ``data/adverse_event_categories.csv``, a clinic may add rows): the
  ``adverse_event`` text of a visit may list several, separated by ";" or ","
  ("nausea; headache"); each part takes its category (text no row names:
  ``other``) and each category counts once per session.  "Any adverse
  event" counts sessions with at least one.  No result here carries the
  text itself (SPEC §4): the clinical team reads it through
  :func:`analysis.metrics.adverse_events.texts`;
* **systolic BP ≥ 180** (``sbp_max``), per 100 sessions that recorded a BP;
* **SpO2 below 90%** (``spo2_min``), per 100 sessions that recorded SpO2.  The
  clinic says ketamine does not suppress breathing: the rate is shown with
  its denominator and without comment, for the reader to judge.

Rates are given overall and by route (recorded on the visit, else the
patient's route), ketamine dose band (mg/kg = ``ketamine_mg`` / the weight on
that visit, else the patient's nearest-in-time recorded weight, a tie going
to the earlier weight; < 0.5, 0.5–<1.0, 1.0–<1.5, ≥ 1.5 mg/kg, "unknown"
without a dose or any weight) and quarter of the visit date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from analysis.metrics import adverse_events
from analysis.core import stats
from analysis.core.formatting import count
from analysis.core.audience import SMALL_CELL
from analysis.core.definitions import check_setting
from analysis.metrics.outcomes import cutoff
from analysis.core.filters import Filters, previous_quarter
from analysis.storage.queries import run_query
from analysis.storage.store import Snapshot

CORE_MEASURES = {
    "any_adverse_event": "Any adverse event",
    "sbp_180": "Systolic BP ≥ 180 mmHg",
    "spo2_below_90": "SpO2 below 90%",
}
DOSE_BANDS = ("< 0.5", "0.5–<1.0", "1.0–<1.5", "≥ 1.5", "unknown")
DOSE_BAND_LABELS = {"< 0.5": "below 0.5 mg/kg", "0.5–<1.0": "0.5 to under 1.0 mg/kg",
                    "1.0–<1.5": "1.0 to under 1.5 mg/kg", "≥ 1.5": "1.5 mg/kg or more",
                    "unknown": "unknown (no dose or weight)"}
#: The category of one adverse event as written (analysis.metrics.adverse_events owns the rule).
adverse_event_category = adverse_events.category
RATE_COLUMNS = ["dimension", "group", "kind", "measure", "events", "n", "per_100",
                "ci_low", "ci_high", "too_few"]




def infusions(snap: Snapshot, filters: Filters = Filters(),
              visits_from: dt.date | None = None, visits_to: dt.date | None = None
              ) -> pd.DataFrame:
    """One row per infusion or booster visit in view (optionally only those
    dated in [visits_from, visits_to]): route, dose (mg, weight used and where
    it came from, mg/kg, band), adverse-event categories (a list), ``sbp_max``,
    ``spo2_min`` and the flags the rates count."""
    frame = run_query(snap, "safety_infusions", filters,
                      {"visits_from": visits_from, "visits_to": visits_to,
                       **adverse_events.sql_params(snap.db_path)})
    frame["adverse_events"] = [list(events) for events in frame["adverse_events"]]
    frame["any_adverse_event"] = frame["any_adverse_event"].astype(bool)
    return frame


# --------------------------------------------------------------------------
# rates


@dataclass(frozen=True)
class SafetyRate:
    """One event's rate over treatment sessions: ``proportion`` is sessions
    with the event (its responders) of the sessions counted (its n), read
    per 100 sessions."""
    dimension: str
    group: str
    measure: str
    proportion: stats.Proportion
    too_few: bool

    @property
    def events(self) -> int:
        """Treatment sessions with the event."""
        return self.proportion.responders

    @property
    def n(self) -> int:
        """Treatment sessions in the denominator."""
        return self.proportion.n

    @property
    def per_100(self) -> float | None:
        return _per_100(self.proportion.rate)

    @property
    def ci_low(self) -> float | None:
        """Per 100 sessions."""
        return _per_100(self.proportion.ci_low)

    @property
    def ci_high(self) -> float | None:
        return _per_100(self.proportion.ci_high)


def _per_100(value: float | None) -> float | None:
    return None if value is None else 100 * value


@dataclass(frozen=True)
class SafetySummary:
    ci_method: str
    cutoff: dt.date | None
    patients: int
    sessions: int                    # treatment sessions: infusion visits + boosters
    infusion_visits: int
    boosters: int
    adverse_event_types: list[str]   # categories seen, most frequent first
    weight_from_nearest_visit: int   # sessions dosed with another visit's weight
    dose_unknown: int                # sessions without a dose or any weight
    rates: pd.DataFrame              # RATE_COLUMNS, one row per dimension × group × measure
    filters: Filters = field(default_factory=Filters)

    def rate(self, measure: str, dimension: str = "overall", group: str = "All") -> SafetyRate:
        row = self.rates[(self.rates.dimension == dimension) & (self.rates.group == group)
                         & (self.rates.measure == measure)]
        if row.empty:
            raise KeyError(f"no rate for {measure!r} in {dimension}={group!r}")
        r = row.iloc[0]
        # the numbers of the table's row (stats.intervals, per 100 there)
        proportion = stats.proportion(int(r.events), int(r.n), self.ci_method)
        return SafetyRate(dimension, group, measure, proportion, bool(r.too_few))

    def table(self, dimension: str, kind: str | None = None) -> pd.DataFrame:
        """The rates of one dimension (``kind``: ``"core"`` or ``"adverse_event"``)."""
        rows = self.rates[self.rates.dimension == dimension]
        if kind:
            rows = rows[rows.kind == kind]
        return rows.reset_index(drop=True)

    def groups(self, dimension: str) -> list[str]:
        return list(dict.fromkeys(self.table(dimension)["group"]))


def _rate_rows(dimension: str, group: str, counts: pd.Series | None,
               events: dict[str, int], types: list[str]) -> list[dict]:
    """One group's counts from its row of ``safety_counts`` (None: no infusions)."""
    def get(column: str) -> int:
        return 0 if counts is None else int(counts[column])

    n_all = get("infusions")
    measures = [
        ("core", "any_adverse_event", get("any_adverse_event"), n_all),
        ("core", "sbp_180", get("sbp_180_or_more"), get("sbp_recorded")),
        ("core", "spo2_below_90", get("spo2_below_90"), get("spo2_recorded")),
    ]
    measures += [("adverse_event", name, events.get(name, 0), n_all) for name in types]
    return [{"dimension": dimension, "group": group, "kind": kind, "measure": measure,
             "events": k, "n": n, "too_few": n < SMALL_CELL}
            for kind, measure, k, n in measures]


def _quarter_range(quarters: list[str]) -> list[str]:
    """Every quarter from the first to the last, gaps included."""
    if not quarters:
        return []
    first, last = min(quarters), max(quarters)
    out = [last]
    while out[-1] != first:
        out.append(previous_quarter(out[-1]))
    return out[::-1]


def safety_summary(snap: Snapshot, filters: Filters = Filters(), ci: str = "wilson",
                   visits_from: dt.date | None = None,
                   visits_to: dt.date | None = None) -> SafetySummary:
    """Every safety rate, overall and by route, dose band and quarter.

    The quarterly report passes its quarter's first and last day as
    ``visits_from``/``visits_to`` to count only the infusions dated in it.
    """
    check_setting(ci=ci)
    # Counted in SQL (safety_counts): a million visits' infusions never
    # travel to pandas.
    counts = run_query(snap, "safety_counts", filters,
                       {"visits_from": visits_from, "visits_to": visits_to,
                        **adverse_events.sql_params(snap.db_path)})
    per_group = counts.drop_duplicates(["dimension", "group_name"]).set_index(
        ["dimension", "group_name"])
    events: dict[tuple[str, str], dict[str, int]] = {}
    for row in counts[counts["adverse_event"].notna()].itertuples():
        events.setdefault((row.dimension, row.group_name), {})[row.adverse_event] = int(row.events)
    overall_events = events.get(("overall", "All"), {})
    types = sorted(overall_events, key=lambda t: (-overall_events[t], t))

    def groups_of(dimension: str) -> list[str]:
        return sorted(per_group.loc[dimension].index) if dimension in per_group.index else []

    groupings = {
        "overall": ["All"],
        "route": groups_of("route"),
        "dose_band": list(DOSE_BANDS),
        "quarter": _quarter_range(groups_of("quarter")),
    }
    rows = []
    for dimension, groups in groupings.items():
        for group in groups:
            key = (dimension, group)
            row = per_group.loc[key] if key in per_group.index else None
            rows.extend(_rate_rows(dimension, group, row, events.get(key, {}), types))
    rates = pd.DataFrame(rows, columns=RATE_COLUMNS)
    # Every rate and interval in one vectorised call (stats.intervals), per 100.
    rate, low, high = stats.intervals(rates["events"], rates["n"], ci)
    rates["per_100"], rates["ci_low"], rates["ci_high"] = 100 * rate, 100 * low, 100 * high
    overall = per_group.loc[("overall", "All")] if ("overall", "All") in per_group.index else None

    def total(column: str) -> int:
        return 0 if overall is None else int(overall[column])

    return SafetySummary(
        ci_method=ci, cutoff=cutoff(snap),
        patients=total("patients"), sessions=total("infusions"),
        infusion_visits=total("infusion_visits"), boosters=total("boosters"),
        adverse_event_types=types,
        weight_from_nearest_visit=total("weight_from_nearest_visit"),
        dose_unknown=total("dose_unknown"),
        rates=rates, filters=filters)


# --------------------------------------------------------------------------
# for people


def per_100_text(rate: SafetyRate, digits: int = 1) -> str:
    """"9.8 per 100 (95% CI 8.7–10.9)"; "–" without sessions."""
    if rate.per_100 is None:
        return "–"
    text = f"{rate.per_100:.{digits}f} per 100"
    if rate.ci_low is not None and rate.ci_high is not None:
        text += f" (95% CI {rate.ci_low:.{digits}f}–{rate.ci_high:.{digits}f})"
    return text


def per_100_cell(rate: SafetyRate, digits: int = 1) -> str:
    """A table cell for people: "10.2 (9.1–11.5) · 247 of 2,421", with "⚠"
    when the denominator is too small to report; "no sessions" when n = 0."""
    if rate.n == 0:
        return "no sessions"
    text = f"{rate.per_100:.{digits}f}"
    if rate.ci_low is not None and rate.ci_high is not None:
        text += f" ({rate.ci_low:.{digits}f}–{rate.ci_high:.{digits}f})"
    text += f" · {count(rate.events)} of {count(rate.n)}"
    return text + (" ⚠" if rate.too_few else "")
