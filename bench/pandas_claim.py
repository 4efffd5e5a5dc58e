"""The claim grid in plain pandas: the peer of ``python -m analysis claim --json``.

    python bench/pandas_claim.py --db FILE [--target 0.70]

Reads the raw ``visits`` and ``medications`` tables (through DuckDB, into
pandas), computes SPEC §3's responder definitions with plain pandas
(:func:`pandas_grid`, no SQL models), and for each of the 48 overall cells
(4 timepoints x 6 definitions x 2 populations) the rate, the one-sided exact
(Clopper-Pearson) 95% bounds and the verdict against ``--target``, the way a
careful analyst would without this product.  Prints one JSON object.  It
imports nothing from ``analysis``: it is the peer, timed as a whole process
by ``bench/bench_perf.py``; ``bench/bench_grid.py`` checks its counts cell by
cell against the engine.
"""

from __future__ import annotations

import argparse
import json
import sys

import duckdb
import pandas as pd

# SPEC §3 (kept here on purpose: the pandas side must not read the SQL models).
TIMEPOINTS = {"4w": (28, 14, 42), "3m": (90, 60, 120), "6m": (180, 150, 210),
              "12m": (365, 300, 430)}
NEEDS = {"pain30": (True, False), "pain50": (True, False), "pain2pt": (True, False),
         "mme50": (False, True), "mme_stop": (False, True), "claim": (True, True)}
TOL = 1e-9
SAME_DAY_ORDER = {"intake": 1, "follow_up": 2, "infusion": 3, "booster": 4}


def read_raw(db_path) -> tuple[pd.DataFrame, pd.DataFrame]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        visits = con.execute("""
            SELECT patient_id, visit_date, visit_type, condition, pain_score,
                   opioid_mme_per_day, source_line
            FROM visits""").df()
        medications = con.execute(
            "SELECT patient_id, record_date, drug_class, mme FROM medications").df()
    finally:
        con.close()
    return visits, medications


def _pick(frame: pd.DataFrame, value: str, order: list[str], ascending: list[bool],
          last: bool = False) -> pd.Series:
    """Per patient, ``value`` of the first (or last) row in ``order``."""
    ranked = frame.sort_values(["patient_id", *order], ascending=[True, *ascending])
    grouped = ranked.groupby("patient_id", sort=False)[value]
    return grouped.last() if last else grouped.first()


def pandas_grid(visits: pd.DataFrame, medications: pd.DataFrame) -> pd.DataFrame:
    """n and responders per timepoint x definition x population x group
    ('All' and each condition), SPEC §3, with plain pandas."""
    v = visits.copy()
    v["visit_date"] = pd.to_datetime(v["visit_date"])
    # Medication export: a visit takes the date's MME when the session gives none;
    # a drug without a factor (or an opioid without a dose) leaves it unknown.
    m = medications.copy()
    m["record_date"] = pd.to_datetime(m["record_date"])
    opioid = m["drug_class"] == "opioid"
    m["unknown"] = (m["drug_class"] == "unknown") | (opioid & m["mme"].isna())
    m["opioid_mme"] = m["mme"].where(opioid, 0.0)
    days = m.groupby(["patient_id", "record_date"]).agg(unknown=("unknown", "any"),
                                                         med_mme=("opioid_mme", "sum"))
    days["med_mme"] = days["med_mme"].where(~days["unknown"])
    v = v.merge(days[["med_mme"]], how="left", left_on=["patient_id", "visit_date"],
                right_index=True)
    v["mme"] = v["opioid_mme_per_day"].fillna(v["med_mme"])
    v["order"] = v["visit_type"].map(SAME_DAY_ORDER)

    cutoff = v["visit_date"].max()
    ketamine = v[v["visit_type"].isin(["infusion", "booster"])]
    patients = ketamine.groupby("patient_id")["visit_date"].min().rename("index_date").to_frame()
    with_condition = v[v["condition"].notna()]
    patients["condition"] = _pick(with_condition, "condition",
                                  ["visit_date", "order", "source_line"], [True, True, True])
    patients["condition"] = patients["condition"].fillna("Unspecified")

    tv = v.merge(patients[["index_date"]], left_on="patient_id", right_index=True)
    tv["day"] = (tv["visit_date"] - tv["index_date"]).dt.days
    latest_first = ["visit_date", "order", "source_line"]
    base = tv[(tv["day"] >= -30) & (tv["day"] <= 0) & tv["pain_score"].notna()]
    patients["bp"] = _pick(base, "pain_score", latest_first, [True] * 3, last=True)
    base = tv[(tv["day"] >= -90) & (tv["day"] <= 0) & tv["mme"].notna()]
    patients["bm"] = _pick(base, "mme", latest_first, [True] * 3, last=True)

    rows = []
    for timepoint, (target, start, end) in TIMEPOINTS.items():
        window = tv[(tv["day"] >= start) & (tv["day"] <= end) & (tv["day"] != 0)].copy()
        window["distance"] = (window["day"] - target).abs()
        closest = ["distance", "visit_date", "order", "source_line"]
        ascending = [True, False, False, False]       # a tie goes to the later visit
        p = patients.copy()
        p["fp"] = _pick(window[window["pain_score"].notna()], "pain_score", closest, ascending)
        p["fm"] = _pick(window[window["mme"].notna()], "mme", closest, ascending)
        closed = (p["index_date"] + pd.to_timedelta(end, unit="D")) <= cutoff
        r_pain = (p["bp"] - p["fp"]) / p["bp"]
        r_mme = (p["bm"] - p["fm"]) / p["bm"]
        met = {
            "pain30": r_pain >= 0.30 - TOL,
            "pain50": r_pain >= 0.50 - TOL,
            "pain2pt": (p["bp"] - p["fp"]) >= 2 - TOL,
            "mme50": r_mme >= 0.50 - TOL,
            "mme_stop": p["fm"].abs() < TOL,
        }
        met["claim"] = met["pain30"] & met["mme50"]
        for definition, (needs_pain, needs_mme) in NEEDS.items():
            eligible = pd.Series(True, index=p.index)
            complete = pd.Series(True, index=p.index)
            if needs_pain:
                eligible &= p["bp"] > 0
                complete &= p["fp"].notna()
            if needs_mme:
                eligible &= p["bm"] > 0
                complete &= p["fm"].notna()
            responder = eligible & complete & met[definition]
            # SPEC §3: ITT = eligible and due (window closed by the cutoff);
            # completers = due with the follow-up.
            for population, member in (("itt", eligible & closed),
                                       ("completers", eligible & closed & complete)):
                frame = pd.DataFrame({"condition": p["condition"], "n": member,
                                      "responders": responder & member})
                by = frame.groupby("condition")[["n", "responders"]].sum()
                by.loc["All"] = by.sum()
                for group, counts in by.iterrows():
                    rows.append((timepoint, definition, population, group,
                                 int(counts["n"]), int(counts["responders"])))
    return pd.DataFrame(rows, columns=["timepoint", "definition", "population", "group",
                                       "n", "responders"])


def claim_cells(grid: pd.DataFrame, target: float, confidence: float = 0.95) -> list[dict]:
    """The overall cells with rate, one-sided exact bounds, p and verdict."""
    from scipy import stats
    cells = []
    for r in grid[grid["group"] == "All"].itertuples():
        n, k = int(r.n), int(r.responders)
        cell = {"timepoint": r.timepoint, "definition": r.definition,
                "population": r.population, "n": n, "responders": k}
        if n:
            greater = stats.binomtest(k, n, target, alternative="greater")
            less = stats.binomtest(k, n, target, alternative="less")
            low = greater.proportion_ci(confidence_level=confidence).low
            high = less.proportion_ci(confidence_level=confidence).high
            cell.update(rate=k / n, lower_bound=low, upper_bound=high, p_value=greater.pvalue,
                        verdict="supported" if low > target else
                        "contradicted" if high < target else "inconclusive")
        else:
            cell.update(rate=None, lower_bound=None, upper_bound=None, p_value=None,
                        verdict="no data")
        cells.append(cell)
    return cells


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--target", type=float, default=0.70)
    args = parser.parse_args(argv)
    visits, medications = read_raw(args.db)
    cells = claim_cells(pandas_grid(visits, medications), args.target)
    json.dump({"sensitivity": cells}, sys.stdout, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
