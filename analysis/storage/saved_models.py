"""The SQL models saved in the clinic's database, keyed by data version.

A snapshot (:mod:`analysis.storage.store`) needs the materialised models (the
tables of ``sql/models``: staged visits, patients, baselines, patient
windows, mood scores) to answer any question.  Building them takes
seconds at a million visits and tens of seconds at ten million, and every
command-line call and every fresh dashboard process built them again.
Instead, once an ingest has committed, :func:`save` builds or updates them in
the database file itself, in a transaction of its own, and readers use them
when :func:`usable` says they may.

The key.  Saved models are used only when ``model_state`` names exactly the
data they were built from: the models' SQL, the schema and the DuckDB
version (a hash), every ingest that loaded data (its id, file digest and
counts), and the row counts of ``visits`` and ``medications``.  A file
written by another version of this program, another ingest (a crash between
the ingest's commit and the save), rows added or deleted by hand or a state
that names other data fails the check, and the reader builds the models
itself, as before.  The key is not a digest of every value (that would cost
a scan of every row on every read): a hand edit that changes values in place
and keeps every count is not seen, nor is a state forged to match by someone
who can write the file (who could change the visits themselves).

Incremental update.  Every saved model is per patient: its rows for a
patient depend on that patient's visits and medications only.  None of the
saved tables reads the data cutoff (the latest visit date): "has this
timepoint's window ended / begun by the cutoff" is added by views over them
(``patient_timepoints``, ``mood_outcomes``), so a cutoff that moves changes
no saved row.  So :func:`save` rebuilds the rows of the patients whose rows
an ingest changed, and keeps the others.  Finding them reads no row that
did not change:

* rows an ingest added carry its ``ingest_id`` (a scan of the new rows only,
  found by DuckDB's per-row-group statistics of that column);
* a session row replaced by a later export (same natural key) may have
  belonged to another patient: the saved ``stg_visits`` holds the old row,
  so the natural keys of the new rows find its patient (only when an ingest
  since the save replaced rows: ``ingest_log.rows_replaced``); a medication
  row is replaced by one of the same patient and date;
* an ingest that changes rows in place or deletes rows without a
  replacement of the same patient (long-format measurements, FHIR
  cancellations) names their patients with :func:`note_patients`; every
  ingest leaves a mark (:func:`note_ingest`), so data loaded by a program
  that does not record its changes forces a full rebuild.

``stg_visits`` (:data:`PER_VISIT`) is finer still: its rows are per stored
visit, so a changed patient whose stored rows an ingest only added to (new
visits, nothing replaced, changed in place or deleted, no new medication)
keeps their saved rows and only their new visits' rows are added
(:func:`_stage_per_visit`; at ten million visits a 1% ingest adds 98k rows
instead of deleting and writing 654k).

Should a saved table read the cutoff again (a model of
:data:`CUTOFF_READERS`, or one reading it, made a table), the patients with
a window edge (in :data:`WINDOWS`) between the old and the new cutoff are
updated too: such a patient only crossed by the cutoff keeps the saved rows
of the models before it (read instead of rebuilt), and only the tables that
read the cutoff are written anew for them.  (Until issue 20's second round
``patient_timepoints`` was such a table: after a 1% ingest at 10M visits,
64k of the 145k patients rebuilt were there only because of the cutoff.)
:func:`refresh` saves with DuckDB's vacuum off (see there).

A model not declared per patient (:data:`PER_PATIENT`), fixed
(:data:`FIXED`) or over all the data (:data:`WHOLE_DATA`), or reading the
cutoff other than the declared way (:data:`CUTOFF_READERS`), makes every save
a full rebuild, so a new model is never updated wrongly.
``tests/test_saved_models.py`` compares every saved table with a full
rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from functools import cache

import duckdb

from analysis.storage import db, model_chain

STATE_TABLE = "model_state"
CHANGES_TABLE = "model_changes"
FORMAT = 2

#: Models whose rows are per patient (they may read the data cutoff only
#: through the timepoint windows: see the module docstring).
PER_PATIENT = frozenset({"stg_visits", "patients", "baselines", "follow_ups",
                         "patient_windows", "mood_scores", "patient_timepoints",
                         "patient_outcomes", "mood_outcomes"})
#: Of those, the models whose rows are per stored visit: a row reads its
#: visit's row and the medication rows of that patient and day only (and
#: nothing but ``visits`` and ``medications``).  A patient whose rows an
#: ingest only added to keeps their saved rows of these: only the new
#: visits' rows are added (see :func:`_stage_per_visit`).
PER_VISIT = frozenset({"stg_visits"})
#: Fixed tables (SPEC §3's timepoints, definitions, rules): no data read.
FIXED = frozenset({"timepoints", "definitions", "populations", "thresholds", "outcome_rules"})
#: Models over all the data: computed in full on every save (one number).
WHOLE_DATA = frozenset({"data_cutoff"})
#: The models that read the cutoff, only as "window ended / begun by it".
CUTOFF_READERS = frozenset({"patient_timepoints"})
#: The table of every patient's windows (their first and last days): a
#: cutoff move changes the rows of the cutoff's tables for the patients
#: with a window edge between the old and the new cutoff.
WINDOWS = "patient_windows"
#: Above this share of patients changed, a full rebuild is faster.
FULL_ABOVE = 0.25
#: Patients updated since the last full build, as a share of all, past
#: which the next save is full (it writes the tables without dead rows).
REBUILD_AFTER = 2.0

NOBODY = "SELECT CAST(NULL AS VARCHAR) AS patient_id WHERE false"

#: Seconds (and counts) of the last :func:`save` in this process, for the
#: benchmarks and tests.
last_timings: dict[str, float] = {}


def enabled() -> bool:
    """``OUTCOMES_SAVED_MODELS=off`` makes ingests not save models and
    readers not use them (the benchmark's full-rebuild peer)."""
    return os.environ.get("OUTCOMES_SAVED_MODELS", "on").lower() not in ("off", "0", "no", "false")


def _definitions() -> list[tuple[str, bool, str]]:
    """(name, materialised, SQL) of every model, in build order."""
    return [(m.name, m.materialized, m.sql) for m in model_chain.build_order()]


@cache
def models_hash() -> str:
    """The models' SQL, the schema and the engine: what built the tables."""
    digest = hashlib.sha256(f"saved models {FORMAT} duckdb {duckdb.__version__}\n".encode())
    digest.update(db.read_sql("schema.sql").encode())
    for name, materialised, sql in _definitions():
        digest.update(f"\n-- {name} {'table' if materialised else 'view'}\n{sql}".encode())
    return digest.hexdigest()


def materialised_names() -> list[str]:
    return [name for name, materialised, _ in _definitions() if materialised]


def _at(con, catalog: str | None) -> str:
    """The tables' schema, fully qualified: a bare ``main.x`` would find a
    temporary ``x`` (catalog ``temp``, schema ``main``) first."""
    name = catalog or con.execute("SELECT current_database()").fetchone()[0]
    return '"' + name.replace('"', '""') + '".main.'


def _tables(con, catalog: str | None) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
        "AND database_name = coalesce($c, current_database())", {"c": catalog}).fetchall()}


def data_key(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> dict:
    """What saved models must have been built from to be used now
    (``catalog``: an attached database, else the connection's own)."""
    at = _at(con, catalog)
    ingests, last, digest = con.execute(f"""
        SELECT count(*), max(ingest_id),
               md5(coalesce(string_agg(concat_ws('|', ingest_id, sha256, rows_read, rows_accepted,
                                                 rows_replaced), ';' ORDER BY ingest_id), ''))
        FROM {at}ingest_log WHERE status = 'ingested'""").fetchone()
    visits = con.execute(f"SELECT count(*) FROM {at}visits").fetchone()[0]
    medications = con.execute(f"SELECT count(*) FROM {at}medications").fetchone()[0]
    return {"models": models_hash(), "ingests": ingests, "last_ingest": last,
            "ingest_log": digest, "visits": visits, "medications": medications}


def _saved_state(con, catalog: str | None, tables: set[str]) -> dict | None:
    if STATE_TABLE not in tables:
        return None
    rows = con.execute(f"SELECT state FROM {_at(con, catalog)}{STATE_TABLE}").fetchall()
    try:
        state = json.loads(rows[0][0]) if len(rows) == 1 else None
    except (TypeError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("format") == FORMAT else None


def usable(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> bool:
    """The database (attached as ``catalog``, else the connection's own)
    holds models built from exactly its current data by this version of
    the models."""
    if not enabled():
        return False
    try:
        tables = _tables(con, catalog)
        state = _saved_state(con, catalog, tables)
        return (state is not None and set(materialised_names()) <= tables
                and state.get("key") == data_key(con, catalog))
    except duckdb.Error:
        return False


# --------------------------------------------------------------------------
# what each ingest changed (written inside the ingest's transaction)


def _changes_table(con) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {CHANGES_TABLE} "
                "(ingest_id BIGINT NOT NULL, patient_id VARCHAR)")


def note_ingest(con, ingest_id: int) -> None:
    """Mark an ingest as one that records what it changed in place
    (:func:`note_patients`): without the mark, the next save is full."""
    _changes_table(con)
    con.execute(f"INSERT INTO {CHANGES_TABLE} VALUES (?, NULL)", [ingest_id])


def note_patients(con, ingest_id: int, patients_sql: str) -> None:
    """The patients (a query with a ``patient_id`` column) whose existing
    rows this ingest updates in place or deletes without a new row of the
    same patient."""
    _changes_table(con)
    con.execute(f"INSERT INTO {CHANGES_TABLE} SELECT DISTINCT $id, patient_id "
                f"FROM ({patients_sql}) WHERE patient_id IS NOT NULL", {"id": ingest_id})


# --------------------------------------------------------------------------
# saving (after the ingest committed, in a transaction of its own)


def _declared_per_patient(definitions) -> bool:
    """Every model is of a declared kind and only the declared ones read the cutoff."""
    chain = model_chain.models()
    names = {name for name, _, _ in definitions}
    readers = {name for name, model in chain.items() if WHOLE_DATA & set(model.depends_on)}
    return names <= PER_PATIENT | FIXED | WHOLE_DATA and readers <= CUTOFF_READERS


def save(con: duckdb.DuckDBPyConnection) -> str | None:
    """Build or update the saved models in the database ``con`` writes, in
    the caller's transaction.  Returns ``"full"``, ``"incremental"``, or
    ``None`` when saving is off or the saved models are already those of
    the current data."""
    last_timings.clear()
    if not enabled():
        return None
    started = time.perf_counter()
    home = _at(con, None)
    definitions = _definitions()
    key = data_key(con)
    tables = _tables(con, None)
    state = _saved_state(con, None, tables)
    has_tables = set(materialised_names()) <= tables
    if state is not None and has_tables and state.get("key") == key:
        return None
    created: list[tuple[str, str]] = []
    try:
        incremental = (state is not None and has_tables
                       and state["key"].get("models") == key["models"]
                       and CHANGES_TABLE in tables and _declared_per_patient(definitions)
                       and _update(con, home, definitions, state, created))
        if not incremental:
            _drop(con, created)
            created.clear()
            _rebuild(con, home, definitions, created)
        cutoff = con.execute(f"SELECT max(visit_date) FROM {home}visits").fetchone()[0]
        _changes_table(con)
        con.execute(f"DELETE FROM {home}{CHANGES_TABLE}")
        con.execute(f"CREATE OR REPLACE TABLE {home}{STATE_TABLE} (state VARCHAR)")
        updated = (state.get("updated", 0) + last_timings["changed patients"]
                   if incremental else 0)
        con.execute(f"INSERT INTO {home}{STATE_TABLE} VALUES (?)", [json.dumps(
            {"format": FORMAT, "key": key, "cutoff": cutoff.isoformat() if cutoff else None,
             "updated": updated})])
    finally:
        # (On an error the caller rolls back, which drops these too.)
        _drop(con, created)
    last_timings["save"] = time.perf_counter() - started
    last_timings["incremental"] = float(bool(incremental))
    return "incremental" if incremental else "full"


def refresh(con: duckdb.DuckDBPyConnection, before_commit=None) -> str | None:
    """:func:`save` in a transaction of its own, then a checkpoint, with
    DuckDB's vacuum off: merging the row groups the update's deletes thin
    out would rewrite every model table at each checkpoint (3.7 s of a 1%
    update at a million visits, 0.03 s without).  The dead rows it leaves
    are bounded: past :data:`REBUILD_AFTER` patients updated since the last
    full build, the next save is a full one, which writes the tables anew.
    ``before_commit``: called just before COMMIT (the crash tests' hook)."""
    con.execute("SET max_vacuum_tasks = 0")
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            kind = save(con)
            if before_commit:
                before_commit()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("CHECKPOINT")
    finally:
        con.execute("RESET max_vacuum_tasks")
    return kind


def _drop(con, created: list[tuple[str, str]]) -> None:
    for name, kind in reversed(created):
        con.execute(f"DROP {kind} IF EXISTS temp.main.{name}")


def _rebuild(con, home: str, definitions, created) -> None:
    """Every model from scratch: tables in the file, views as temporary
    views (a snapshot makes its own)."""
    for name, materialised, sql in definitions:
        step = time.perf_counter()
        if materialised:
            con.execute(f"CREATE OR REPLACE TABLE {home}{name} AS {sql}")
        else:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
            created.append((name, "VIEW"))
        last_timings[f"model {name}"] = time.perf_counter() - step


def _changed_patients(con, home: str, state: dict) -> bool:
    """``temp.model_changed``: the patients whose rows changed since the
    saved models; False when that cannot be told (a full rebuild)."""
    covered = state["key"].get("last_ingest") or 0
    unmarked = con.execute(f"""
        SELECT count(*) FROM {home}ingest_log WHERE status = 'ingested' AND ingest_id > $c
          AND ingest_id NOT IN (SELECT ingest_id FROM {home}{CHANGES_TABLE})""",
                           {"c": covered}).fetchone()[0]
    if unmarked:
        return False   # loaded by a program that does not record its changes
    replaced = con.execute(f"""
        SELECT coalesce(sum(rows_replaced), 0) FROM {home}ingest_log
        WHERE status = 'ingested' AND ingest_id > $c""", {"c": covered}).fetchone()[0]
    moved = f"UNION ALL {_replaced_rows_patients(home)}" if replaced else ""
    # ``temp.model_restaged``: the changed patients whose stored rows may
    # have changed (not only been added to): new medication rows, rows
    # changed in place or deleted, rows replaced.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE model_restaged AS
        SELECT DISTINCT patient_id FROM (
            SELECT patient_id FROM {home}medications WHERE ingest_id > $c
            UNION ALL
            SELECT patient_id FROM {home}{CHANGES_TABLE} WHERE patient_id IS NOT NULL
            {moved})""", {"c": covered})
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE model_changed AS
        SELECT patient_id FROM temp.main.model_restaged
        UNION
        SELECT patient_id FROM {home}visits WHERE ingest_id > $c""", {"c": covered})
    return True


def _replaced_rows_patients(home: str) -> str:
    """The patients of saved visits replaced since (``$c``: the last ingest
    the saved models cover): a row replaced by a later export under the same
    natural key may have been another patient's, and the saved stg_visits
    still holds it."""
    return f"""SELECT s.patient_id FROM {home}stg_visits s
        SEMI JOIN (SELECT natural_key FROM {home}visits WHERE ingest_id > $c) n
          ON s.natural_key = n.natural_key"""


def _cutoff_crossings(home: str, old: str, new: str) -> str:
    """The patients with a window whose last day (closed) or first day
    (begun) lies between the old and the new cutoff, (low, high]: it is on
    the other side of the cutoff now."""
    low, high = sorted([old, new])
    return f"""SELECT patient_id FROM {home}{WINDOWS}
        WHERE window_end_date BETWEEN DATE '{low}' + 1 AND DATE '{high}'
           OR window_start_date BETWEEN DATE '{low}' + 1 AND DATE '{high}'"""


def _add_crossed(con, home: str, tables, created) -> None:
    """Each table (built for the changed patients) becomes ``<name>__changed``
    and ``<name>`` a view of it plus the saved rows of the crossed patients."""
    for name, _, _ in tables:
        con.execute(f"CREATE TEMP TABLE {name}__changed AS SELECT * FROM temp.main.{name}")
        created.append((f"{name}__changed", "TABLE"))
        con.execute(f"DROP TABLE temp.main.{name}")
        created.remove((name, "TABLE"))
        con.execute(f"""CREATE TEMP VIEW {name} AS
            SELECT * FROM temp.main.{name}__changed UNION ALL BY NAME
            SELECT * FROM {home}{name}
            WHERE patient_id IN (SELECT patient_id FROM temp.main.model_crossed)""")
        created.append((name, "VIEW"))


def _cutoff_models(definitions) -> set[str]:
    """The models that read the cutoff, directly or through another model."""
    chain = model_chain.models()
    found = set(WHOLE_DATA)
    for name, _, _ in definitions:   # in build order: what a model reads comes first
        if found & set(chain[name].depends_on):
            found.add(name)
    return found - WHOLE_DATA


def _stage_per_visit(con, home: str, definitions, state: dict, created) -> set[str]:
    """The saved tables of the :data:`PER_VISIT` models, updated row by row:
    the rows of the patients in ``model_restaged`` are built anew, and for
    the other changed patients (their stored rows only added to) the rows of
    their new visits are added to the saved ones.  Then each is also a
    temporary table of every changed patient's rows, which the models
    after it read.  Returns the names done (saved already)."""
    chain = model_chain.models()
    covered = int(state["key"].get("last_ingest") or 0)
    who = _restaged_patients()
    restaged = con.execute(f"SELECT count(*) FROM ({who})").fetchone()[0]
    done: set[str] = set()
    for name, materialised, sql in definitions:
        if not (materialised and name in PER_VISIT
                and set(chain[name].depends_on) <= {"visits", "medications"}):
            continue
        step = time.perf_counter()
        # (Two parts, not one OR: the new rows are found by the row groups'
        # statistics of ingest_id, without reading the other rows.)
        rows = (f"SELECT * FROM {home}visits WHERE ingest_id > {covered} "
                f"AND patient_id NOT IN ({who})")
        if restaged:
            rows += f" UNION ALL SELECT * FROM {home}visits WHERE patient_id IN ({who})"
        con.execute(f"CREATE OR REPLACE TEMP VIEW visits AS {rows}")
        con.execute(f"""CREATE OR REPLACE TEMP VIEW medications AS SELECT * FROM {home}medications
                        WHERE patient_id IN (SELECT patient_id FROM temp.main.model_changed)""")
        created[:0] = [("visits", "VIEW"), ("medications", "VIEW")]
        con.execute(f"CREATE TEMP TABLE {name}__new AS {sql}")
        created.append((f"{name}__new", "TABLE"))
        if restaged:
            con.execute(f"DELETE FROM {home}{name} WHERE patient_id IN ({who})")
        con.execute(f"INSERT INTO {home}{name} BY NAME SELECT * FROM temp.main.{name}__new")
        last_timings[f"merge {name}"] = time.perf_counter() - step
        step = time.perf_counter()
        # (Only the columns the models after it read: reading every column
        # of the saved rows took twice as long at ten million visits.)
        columns = _columns_read(con, name, definitions)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {name} AS SELECT {columns} FROM {home}{name}
                        WHERE patient_id IN (SELECT patient_id FROM temp.main.model_changed)""")
        created.append((name, "TABLE"))
        last_timings[f"model {name}"] = time.perf_counter() - step
        done.add(name)
    last_timings["restaged patients"] = restaged
    return done


def _columns_read(con, table: str, definitions) -> str:
    """The columns of ``table`` the models that read it directly use (from
    DuckDB's plans of them: the columns their scans of it project), as a
    select list; ``*`` when a plan does not say."""
    chain = model_chain.models()
    columns = {"patient_id"}
    for name, _, sql in definitions:
        if table not in chain[name].depends_on:
            continue
        try:
            plan = json.loads(con.execute(f"EXPLAIN (FORMAT json) {sql}").fetchall()[0][1])
        except (duckdb.Error, ValueError, IndexError):
            return "*"
        scans, nodes = [], list(plan)
        while nodes:
            node = nodes.pop()
            info = node.get("extra_info") if isinstance(node, dict) else None
            if isinstance(info, dict) and str(info.get("Table", "")).split(".")[-1] == table:
                scans.append(info.get("Projections"))
            nodes.extend(node.get("children", []) if isinstance(node, dict) else [])
        if not scans or not all(isinstance(p, (list, str)) and p for p in scans):
            return "*"
        for projected in scans:
            columns.update([projected] if isinstance(projected, str) else projected)
    return ", ".join('"' + c.replace('"', '""') + '"' for c in sorted(columns))


def _restaged_patients() -> str:
    """The changed patients whose per-visit rows are all built anew."""
    return "SELECT patient_id FROM temp.main.model_restaged"


def _update(con, home: str, definitions, state: dict, created) -> bool:
    """Rebuild the rows of the patients whose rows changed, and the
    cutoff's models of the patients whose windows the moved cutoff crosses;
    False when a full rebuild is the way."""
    step = time.perf_counter()
    # The models over all the data first (the cutoff), as tables: a view
    # would read the changed patients' rows only once the temporary
    # ``visits`` below shadows the stored one.  The fixed ones as views.
    for name, _, sql in definitions:
        if name in WHOLE_DATA:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
            created.append((name, "TABLE"))
        elif name in FIXED:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
            created.append((name, "VIEW"))
    old = state.get("cutoff")
    new = con.execute("SELECT max(cutoff_date) FROM temp.main.data_cutoff").fetchone()[0]
    new = new.isoformat() if new else None
    last_timings["cutoff moved"] = old != new
    if old != new and not (old and new):
        return False   # no visits before or after: nothing worth keeping
    if not _changed_patients(con, home, state):
        return False
    created.extend([("model_restaged", "TABLE"), ("model_changed", "TABLE")])
    # Patients whose rows did not change but whose windows the cutoff
    # crossed: only the models reading the cutoff are redone for them.
    cutoff_models = _cutoff_models(definitions)
    cutoff_tables = [n for n, materialised, _ in definitions
                     if materialised and n in cutoff_models]
    crossings = _cutoff_crossings(home, old, new) if old != new and cutoff_tables else NOBODY
    con.execute(f"""CREATE OR REPLACE TEMP TABLE model_crossed AS
        SELECT DISTINCT patient_id FROM ({crossings})
        WHERE patient_id NOT IN (SELECT patient_id FROM temp.main.model_changed)""")
    created.append(("model_crossed", "TABLE"))
    changed = con.execute("SELECT count(*) FROM temp.main.model_changed").fetchone()[0]
    crossed = con.execute("SELECT count(*) FROM temp.main.model_crossed").fetchone()[0]
    everyone = con.execute(f"SELECT count(*) FROM {home}patients").fetchone()[0]
    last_timings["changed patients"] = changed + crossed
    last_timings["of which crossed only"] = crossed
    last_timings["find changed"] = time.perf_counter() - step
    if (changed + crossed > FULL_ABOVE * max(everyone, 1)
            or state.get("updated", 0) + changed + crossed > REBUILD_AFTER * max(everyone, 1)):
        return False
    # The per-patient models over the changed patients' rows only:
    # temporary objects of the same names shadow the stored tables here.
    # First the models that do not read the cutoff, for the changed
    # patients; then each of their tables becomes a view adding its saved
    # rows of the crossed patients (their data did not change; a view, so
    # a later model reads only the columns it needs); then the models that
    # read the cutoff, for both.
    staged = _stage_per_visit(con, home, definitions, state, created)
    for table in ("visits", "medications"):
        con.execute(f"""CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {home}{table}
                        WHERE patient_id IN (SELECT patient_id FROM temp.main.model_changed)""")
        created.insert(0, (table, "VIEW"))
    per_patient = [d for d in definitions if d[0] in PER_PATIENT]
    chain = model_chain.models()
    def build(models, shared=frozenset()) -> None:
        for name, materialised, sql in models:
            if name in staged:
                continue   # (built and saved already)
            step = time.perf_counter()
            materialised = materialised or name in shared
            con.execute(f"CREATE OR REPLACE TEMP {'TABLE' if materialised else 'VIEW'} "
                        f"{name} AS {sql}")
            created.append((name, "TABLE" if materialised else "VIEW"))
            last_timings[f"model {name}"] = time.perf_counter() - step

    if not crossed:
        # (No table reads the cutoff, or it crossed no window of a patient
        # whose rows did not change: every model over the changed patients.)
        # A view several tables read (follow_ups) is computed once, as a
        # temporary table.
        build(per_patient, {name for name, materialised, _ in per_patient if not materialised
                            and sum(name in m.depends_on for m in chain.values()
                                    if m.materialized) > 1})
        for name, materialised, _ in definitions:
            if materialised and name not in staged:
                step = time.perf_counter()
                con.execute(f"DELETE FROM {home}{name} WHERE patient_id IN "
                            "(SELECT patient_id FROM temp.main.model_changed)")
                con.execute(f"INSERT INTO {home}{name} BY NAME SELECT * FROM temp.main.{name}")
                last_timings[f"merge {name}"] = time.perf_counter() - step
        return True
    before = [d for d in per_patient if d[0] not in cutoff_models]
    build(before)
    _add_crossed(con, home, [d for d in before if d[1]], created)
    # A view several later tables read (follow_ups) is computed once, as
    # a temporary table of both kinds of patients.
    for name, materialised, sql in before:
        if not materialised and any(name in chain[n].depends_on and chain[n].materialized
                                    for n in cutoff_models):
            step = time.perf_counter()
            con.execute(f"DROP VIEW temp.main.{name}")
            created.remove((name, "VIEW"))
            con.execute(f"CREATE TEMP TABLE {name} AS {sql}")
            created.append((name, "TABLE"))
            last_timings[f"model {name}"] = time.perf_counter() - step
    build([d for d in per_patient if d[0] in cutoff_models])
    for name, materialised, _ in definitions:
        if materialised and name not in staged:
            step = time.perf_counter()
            if name in cutoff_models:
                source, who = name, ("SELECT patient_id FROM temp.main.model_changed UNION ALL "
                                     "SELECT patient_id FROM temp.main.model_crossed")
            else:
                source, who = f"{name}__changed", "SELECT patient_id FROM temp.main.model_changed"
            con.execute(f"DELETE FROM {home}{name} WHERE patient_id IN ({who})")
            con.execute(f"INSERT INTO {home}{name} BY NAME SELECT * FROM temp.main.{source}")
            last_timings[f"merge {name}"] = time.perf_counter() - step
    return True
