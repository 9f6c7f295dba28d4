"""A small runner for the SQL models in `finrecon/sql`: layered staging → intermediate → marts, one model per
file named for what it holds, run in dependency order (dependencies found by name within a layer).

Staging models become temporary views, intermediate models temporary tables, marts tables in the database
being published. A `-- publish: table` or `-- publish: view` line overrides that: the model is created in the
published database as a table or a view (the charges view and the small tables it joins).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

import duckdb

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
LAYERS = ("staging", "intermediate", "marts")
_COMMENT = re.compile(r"--[^\n]*")
_PUBLISH = re.compile(r"^-- publish: (table|view)$", re.MULTILINE)
# Staging models that map one delivery at landing (e.g. AWS CUR → FOCUS), not part of the nightly build.
_AT_LANDING = re.compile(r"^-- applied at landing:", re.MULTILINE)


@dataclass(frozen=True)
class Model:
    name: str
    layer: str
    sql: str

    @property
    def materialization(self) -> str:
        """`temp_view`, `temp_table`, `table` or `view`."""
        found = _PUBLISH.search(self.sql)
        if found:
            return found.group(1)
        return {"staging": "temp_view", "intermediate": "temp_table"}.get(self.layer, "table")

    @property
    def applied_at_landing(self) -> bool:
        return bool(_AT_LANDING.search(self.sql))

    @property
    def grain(self) -> str:
        """The model's first comment line, which states its grain."""
        first = self.sql.lstrip().splitlines()[0]
        return first.removeprefix("--").strip()


def load_models(sql_dir: Path = SQL_DIR) -> list[Model]:
    """Every model, layer by layer, each layer in dependency order."""
    ordered: list[Model] = []
    for layer in LAYERS:
        found = [
            Model(p.stem, layer, p.read_text(encoding="utf-8"))
            for p in sorted((sql_dir / layer).glob("*.sql"))
        ]
        models = {model.name: model for model in found if not model.applied_at_landing}
        graph = {name: _references(model.sql, set(models) - {name}) for name, model in models.items()}
        ordered += [models[name] for name in TopologicalSorter(graph).static_order()]
    return ordered


def landing_model(name: str, sql_dir: Path = SQL_DIR) -> str:
    """The SQL of a staging model applied at landing (one delivery at a time)."""
    return (sql_dir / "staging" / f"{name}.sql").read_text(encoding="utf-8")


def _references(sql: str, candidates: set[str]) -> set[str]:
    code = _COMMENT.sub("", sql)
    return {name for name in candidates if re.search(rf"\b{re.escape(name)}\b", code)}


def run_macros(con: duckdb.DuckDBPyConnection, sql_dir: Path = SQL_DIR) -> None:
    con.execute((sql_dir / "macros.sql").read_text(encoding="utf-8"))


def run_model(con: duckdb.DuckDBPyConnection, model: Model, target_catalog: str) -> None:
    body = model.sql.strip().rstrip(";")
    kind = model.materialization
    if kind.startswith("temp_"):
        statement = f"create or replace temp {kind.removeprefix('temp_')} {model.name} as\n{body}"
    else:
        statement = f'create or replace {kind} "{target_catalog}".main.{model.name} as\n{body}'
    try:
        con.execute(statement)
    except duckdb.Error as err:
        raise ModelError(f"model {model.layer}/{model.name}.sql failed: {err}") from err


class ModelError(RuntimeError):
    """A SQL model failed; the message names the file."""
