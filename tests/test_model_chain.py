"""The SQL model chain (analysis.storage.model_chain, sql/models/models.toml): every
model reads exactly what it declares, from its own layer or an earlier one;
the chain has no cycle; every model file is in the manifest; the build order
puts each model after what it reads."""

from __future__ import annotations

import re
from graphlib import CycleError

import pandas as pd
import pytest

from analysis.storage import model_chain, store

_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(\()|(\))|(.))", re.S)
# functions whose parentheses hold a FROM that is not a table (none used today)
_FROM_FUNCTIONS = {"extract", "trim", "substring", "position", "overlay"}


def _tokens(sql: str) -> list[tuple[str, str]]:
    """(kind, text) tokens of ``sql`` without comments and string literals."""
    sql = re.sub(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'",
                 lambda m: "''" if m.group().startswith("'") else " ", sql, flags=re.S)
    found = []
    for word, opening, closing, other in _TOKEN.findall(sql):
        if word:
            found.append(("word", word))
        elif opening or closing:
            found.append(("paren", opening or closing))
        elif other.strip():
            found.append(("other", other))
    return found


def _tables_read(tokens: list[tuple[str, str]]) -> set[str]:
    """Names after FROM or JOIN that are tables (not a subquery, a VALUES
    list or a table function such as ``range(4096)``)."""
    names, functions = set(), []
    for i, (kind, text) in enumerate(tokens):
        if kind == "paren":
            if text == "(":
                functions.append(tokens[i - 1][1].lower() if i and tokens[i - 1][0] == "word"
                                 else "")
            elif functions:
                functions.pop()
        elif kind == "word" and text.upper() in ("FROM", "JOIN") and i + 1 < len(tokens):
            if functions and functions[-1] in _FROM_FUNCTIONS:
                continue
            following = tokens[i + 1]
            after = tokens[i + 2] if i + 2 < len(tokens) else ("", "")
            if following[0] == "word" and after != ("paren", "("):
                names.add(following[1])
    return names


def _closing(tokens, start: int) -> int:
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i] == ("paren", "("):
            depth += 1
        elif tokens[i] == ("paren", ")"):
            depth -= 1
            if depth == 0:
                return i
    raise AssertionError("unbalanced parentheses")


def references(sql: str) -> set[str]:
    """The tables and models a model's SQL reads.  A CTE sees the CTEs
    before it (so ``WITH patients AS (SELECT ... FROM patients)`` reads the
    model ``patients``); the final SELECT sees them all."""
    tokens = _tokens(sql)
    ctes: list[str] = []
    read: set[str] = set()
    i = 0
    if tokens and tokens[0][1].upper() == "WITH":
        i = 1
        while True:
            name = tokens[i][1]
            assert tokens[i + 1][1].upper() == "AS" and tokens[i + 2] == ("paren", "("), \
                f"cannot read the CTE {name}"
            end = _closing(tokens, i + 2)
            read |= _tables_read(tokens[i + 3:end]) - set(ctes)
            ctes.append(name)
            i = end + 1
            if tokens[i] != ("other", ","):
                break
            i += 1
    return read | (_tables_read(tokens[i:]) - set(ctes))


def test_the_reference_reader_sees_scopes_and_skips_what_is_not_a_table():
    sql = """
        WITH patients AS (SELECT * FROM patients WHERE treated),  -- a patient's FROM x
        visits AS (SELECT * FROM stg_visits),
        grid AS (SELECT * FROM range(4) AS r(i) CROSS JOIN (VALUES (1)) AS v(x))
        SELECT 'FROM quoted' FROM patients JOIN visits USING (patient_id)
        LEFT JOIN timepoints AS t ON true, grid
    """
    assert references(sql) == {"patients", "stg_visits", "timepoints"}


@pytest.mark.parametrize("name", list(model_chain.models()))
def test_every_model_reads_exactly_what_it_declares(name):
    model = model_chain.models()[name]
    assert references(model.sql) == set(model.depends_on), \
        f"{model.path.name}: reads {sorted(references(model.sql))}, " \
        f"models.toml declares {sorted(model.depends_on)}"


def test_every_dependency_is_a_model_of_an_earlier_layer_or_a_stored_table():
    chain = model_chain.models()
    for model in chain.values():
        for dependency in model.depends_on:
            if dependency in chain:
                assert (model_chain.LAYERS.index(chain[dependency].layer)
                        <= model_chain.LAYERS.index(model.layer)), \
                    f"{model.name} ({model.layer}) reads {dependency} ({chain[dependency].layer})"
            else:
                assert dependency in store.STORED_TABLES, \
                    f"{model.name} reads {dependency}, neither a model nor a stored table"


def test_every_model_file_is_in_the_manifest():
    files = {path.relative_to(model_chain.MODELS_DIR).as_posix()
             for path in model_chain.MODELS_DIR.rglob("*.sql")}
    assert files == {model.path.relative_to(model_chain.MODELS_DIR).as_posix()
                     for model in model_chain.models().values()}


def test_the_build_order_puts_each_model_after_what_it_reads():
    order = [model.name for model in model_chain.build_order()]
    assert sorted(order) == sorted(model_chain.models())
    for model in model_chain.build_order():
        for dependency in model.depends_on:
            if dependency in model_chain.models():
                assert order.index(dependency) < order.index(model.name)


def test_a_cycle_is_refused(monkeypatch):
    """The sort refuses a cycle (so the manifest, which the sort accepts,
    has none)."""
    chain = dict(model_chain.models())
    chain["timepoints"] = model_chain.Model("timepoints", "reference", ("mood_outcomes",), False)
    monkeypatch.setattr(model_chain, "models", lambda: chain)
    with pytest.raises(CycleError):
        model_chain.build_order.__wrapped__()


def test_the_snapshot_builds_the_manifest_as_declared(tmp_path):
    snap = store.Snapshot(tmp_path / "empty.duckdb")
    try:
        built = dict(snap.query(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = 'main'").itertuples(index=False))
    finally:
        snap.close()
    for model in model_chain.models().values():
        assert built[model.name] == ("BASE TABLE" if model.materialized else "VIEW"), model.name


# The mood scores' own windows, written as mood_outcomes wrote them before it
# read the baselines and follow_ups models: the same rules, another method
# (row_number over each window instead of arg_max / arg_min).
MOOD_WINDOWS = """
WITH patients AS (SELECT patient_id, index_date FROM patients WHERE treated),
scores AS (
    SELECT v.patient_id, v.visit_date, v.same_day_order, v.source_line,
           'phq9' AS instrument, v.phq9 AS score
    FROM stg_visits AS v JOIN patients AS p USING (patient_id) WHERE v.phq9 IS NOT NULL
    UNION ALL
    SELECT v.patient_id, v.visit_date, v.same_day_order, v.source_line,
           'pcl5' AS instrument, v.pcl5 AS score
    FROM stg_visits AS v JOIN patients AS p USING (patient_id) WHERE v.pcl5 IS NOT NULL
),
baselines AS (
    SELECT s.patient_id, s.instrument, s.score AS baseline, s.visit_date AS baseline_date
    FROM scores AS s JOIN patients AS p USING (patient_id)
    WHERE s.visit_date BETWEEN p.index_date - 30 AND p.index_date
    QUALIFY row_number() OVER (
        PARTITION BY s.patient_id, s.instrument
        ORDER BY s.visit_date DESC, s.same_day_order DESC, s.source_line DESC) = 1
),
follow_ups AS (
    SELECT s.patient_id, s.instrument, t.timepoint,
           s.score AS follow_up, s.visit_date AS follow_up_date
    FROM scores AS s JOIN patients AS p USING (patient_id)
    JOIN timepoints AS t
        ON s.visit_date BETWEEN p.index_date + t.window_start AND p.index_date + t.window_end
    WHERE s.visit_date <> p.index_date
    QUALIFY row_number() OVER (
        PARTITION BY s.patient_id, s.instrument, t.timepoint
        ORDER BY abs((s.visit_date - p.index_date) - t.target_day),
                 s.visit_date DESC, s.same_day_order DESC, s.source_line DESC) = 1
)
SELECT m.patient_id, m.timepoint, m.measure, b.baseline, b.baseline_date,
       f.follow_up, f.follow_up_date
FROM mood_outcomes AS m
LEFT JOIN baselines AS b USING (patient_id, instrument)
LEFT JOIN follow_ups AS f USING (patient_id, instrument, timepoint)
"""


def test_mood_scores_are_those_of_their_own_windows(demo_snapshot):
    """mood_outcomes reads its baseline and follow-up scores from the
    baselines and follow_ups models: they are the scores the mood windows
    themselves choose, row for row on the demo clinic."""
    ours = demo_snapshot.query(
        "SELECT patient_id, timepoint, measure, baseline, baseline_date, follow_up, "
        "follow_up_date FROM mood_outcomes")
    theirs = demo_snapshot.query(MOOD_WINDOWS)
    key = ["patient_id", "timepoint", "measure"]
    ours, theirs = (f.sort_values(key).reset_index(drop=True) for f in (ours, theirs))
    assert len(ours) == len(theirs) > 0
    assert ours["baseline"].notna().sum() > 100 and ours["follow_up"].notna().sum() > 100
    pd.testing.assert_frame_equal(ours, theirs, check_dtype=False)
