"""Where the database lives and how it is opened.

The DuckDB file is created at run time and never committed.  Its path comes
from ``--db`` (CLI), else the ``OUTCOMES_DB`` environment variable, else
``data/outcomes.duckdb``.  The bundled demo lives in its own file
(``data/demo.duckdb``) so that it never mixes with a clinic's data.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from analysis.reference import DATA_DIR

SQL_DIR = Path(__file__).resolve().parent / "sql"
DEFAULT_DB = DATA_DIR / "outcomes.duckdb"
DEMO_DB = DATA_DIR / "demo.duckdb"
DEMO_EXPORTS = DATA_DIR / "demo"
SCHEMA_VERSION = 1


def resolve_db_path(cli_value: str | os.PathLike | None = None) -> Path:
    """``--db`` beats ``OUTCOMES_DB`` beats the default."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get("OUTCOMES_DB")
    return Path(env) if env else DEFAULT_DB


def read_sql(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def connect(path: str | os.PathLike, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the database; a writable connection also creates the schema."""
    path = Path(path)
    if read_only:
        return duckdb.connect(str(path), read_only=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(read_sql("schema.sql"))
    return con


def is_initialised(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'visits'"
    ).fetchone()[0])
