"""The SQL model chain: which models there are, what each reads, in what
order they are built and which are kept as tables.

The manifest is ``sql/models/models.toml`` (one entry per model: its layer,
``depends_on`` and ``materialized``); a model's SQL is
``sql/models/<layer>/<name>.sql``.  The build order is a topological sort of
``depends_on`` (ties in the manifest's order), so no file name carries an
order and a new model says what it reads instead of where it sorts.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from graphlib import TopologicalSorter
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent.parent / "sql" / "models"
MANIFEST = MODELS_DIR / "models.toml"
# From the fixed tables of SPEC §3 to what the pages count from; a model
# reads its own layer or an earlier one.
LAYERS = ("reference", "staging", "intermediate", "marts")


@dataclass(frozen=True)
class Model:
    name: str
    layer: str
    depends_on: tuple[str, ...]
    materialized: bool   # a table built once per snapshot, else a view

    @property
    def path(self) -> Path:
        return MODELS_DIR / self.layer / f"{self.name}.sql"

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


@cache
def models() -> dict[str, Model]:
    """Every model of the manifest, by name, in the manifest's order."""
    entries = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    found = {}
    for name, entry in entries.items():
        materialized = entry.get("materialized", "view")
        if entry["layer"] not in LAYERS or materialized not in ("view", "table"):
            raise ValueError(f"{MANIFEST.name}: model {name}: layer must be one of {LAYERS}, "
                             "materialized 'view' or 'table'")
        found[name] = Model(name, entry["layer"], tuple(entry["depends_on"]),
                            materialized == "table")
    return found


@cache
def build_order() -> tuple[Model, ...]:
    """The models, each after every model it depends on.  Names in
    ``depends_on`` that are not models are stored tables (read, not built).
    Raises ``graphlib.CycleError`` on a cycle."""
    chain = models()
    position = {name: i for i, name in enumerate(chain)}
    sorter = TopologicalSorter({name: [d for d in model.depends_on if d in chain]
                                for name, model in chain.items()})
    sorter.prepare()
    order = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        order.extend(chain[name] for name in ready)
        sorter.done(*ready)
    return tuple(order)
