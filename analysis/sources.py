"""Which database the dashboard shows: the clinic's, or the bundled demo.

The demo is built from the exports under ``data/demo/`` into its own file
(``data/demo.duckdb``), so it never mixes with a clinic's data.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from analysis.storage import db
from analysis.ingest.pipeline import ingest_files
from analysis.storage.store import read_version


@dataclass(frozen=True)
class DataSource:
    path: Path
    is_demo: bool

    @property
    def label(self) -> str:
        return "Demo clinic (synthetic data)" if self.is_demo else f"Clinic data ({self.path.name})"

    @property
    def pgic_best(self) -> int:
        """Which end of the PGIC scale is "very much improved" in this data:
        the demo states its own (``demo.PGIC_BEST``); a clinic's is the
        ``OUTCOMES_PGIC_BEST`` setting (:func:`analysis.metrics.pgic.configured_best`)."""
        if self.is_demo:
            from analysis.ingest.demo.clinic import PGIC_BEST
            return PGIC_BEST
        from analysis.metrics.pgic import configured_best
        return configured_best()


_complete_demos: set[tuple] = set()


def demo_exports() -> list[Path]:
    return sorted(db.DEMO_EXPORTS.glob("*.csv"))


def ensure_demo_db(path: Path = db.DEMO_DB, exports: list[Path] | None = None) -> Path:
    """Build the demo database from the bundled exports when it is missing.

    Built in a temporary file and moved into place, so that two processes
    starting at once never see a half-built demo.
    """
    exports = exports if exports is not None else demo_exports()
    if path.exists():
        # Checked once per file state: the dashboard asks on every run, and
        # reading the version opens the database.
        stat = path.stat()
        key = (path, stat.st_mtime_ns, stat.st_size, len(exports))
        if key in _complete_demos:
            return path
        if read_version(path).ingests >= len(exports):
            _complete_demos.add(key)
            return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".duckdb", dir=path.parent)
    os.close(handle)
    os.remove(temporary)
    con = db.connect(temporary)
    try:
        # sessions before medications, as a clinic would send them
        ordered = sorted(exports, key=lambda p: (p.name != "sessions.csv", p.name))
        summary = ingest_files(con, ordered)
        if not summary.ok:
            raise RuntimeError("the bundled demo exports were refused: "
                               + "; ".join(f.error or "" for f in summary.files))
        db.mark_synthetic(con)   # outputs made from it (or from a copy) say so
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(temporary, path)
    return path


def default_source() -> DataSource:
    """``OUTCOMES_DB`` when set, else the clinic database when it exists, else the demo."""
    env = os.environ.get("OUTCOMES_DB")
    if env:
        return DataSource(Path(env), is_demo=False)
    if db.DEFAULT_DB.exists():
        return DataSource(db.DEFAULT_DB, is_demo=False)
    return DataSource(ensure_demo_db(), is_demo=True)


def demo_source() -> DataSource:
    return DataSource(ensure_demo_db(), is_demo=True)
