"""The demo's session table as an export file (CSV), and the little bad data
(step 10, ``messy=True``) a real export carries.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from analysis.storage.reference import CANONICAL_COLUMNS
from analysis.ingest.demo.clinic import ADVERSE_EVENTS, PROVIDER_CODES, ROUTES, SITES, VISIT_TYPES


def session_table(p: SimpleNamespace, v: SimpleNamespace) -> pa.Table:
    width = max(7, len(str(v.n)))
    numbers = pa.array(np.arange(1, v.n + 1)).cast(pa.string())
    visit_id = pc.binary_join_element_wise("V", pc.utf8_lpad(numbers, width, "0"), "")
    columns = {
        "patient_id": take_text(p.ids, v.pi),
        "visit_date": pa.array(v.day.astype(np.int32), type=pa.date32()),
        "visit_type": take_text(VISIT_TYPES, v.kind),
        "visit_id": visit_id,
        "condition": take_text(v.condition_vocabulary, v.condition),
        "site": take_text(SITES, p.site[v.pi]),
        "provider": take_text(PROVIDER_CODES, v.provider),
        "route": take_text(ROUTES, v.route),
        "ketamine_mg": _float(v.ketamine),
        "weight_kg": _float(v.weight),
        "pain_score": _float(v.pain_score),
        "pain_post": _float(v.pain_post),
        "opioid_mme_per_day": _float(v.mme),
        "benzodiazepine": take_text(("no", "yes"), v.benzo),
        "phq9": _int(v.phq9),
        "pcl5": _int(v.pcl5),
        "pgic": _int(v.pgic),
        "adverse_event": take_text(ADVERSE_EVENTS, v.adverse),
        "sbp_max": _int(v.sbp),
        "spo2_min": _int(v.spo2),
    }
    assert tuple(columns) == CANONICAL_COLUMNS
    return pa.table(columns)


def take_text(labels, codes: np.ndarray) -> pa.Array:
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


def write_csv(table: pa.Table, path: Path) -> None:
    """Plain CSV: header of bare names, no quoting (no value holds a comma)."""
    with open(path, "wb") as handle:
        handle.write((",".join(table.column_names) + "\n").encode("utf-8"))
        pacsv.write_csv(table, handle, pacsv.WriteOptions(include_header=False,
                                                          quoting_style="none"))


# --------------------------------------------------------------------------
# 10. bad data


def make_messy(rng: np.random.Generator, table: pa.Table, v: SimpleNamespace) -> pa.Table:
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


def make_medications_messy(rng: np.random.Generator, table: pa.Table) -> pa.Table:
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
