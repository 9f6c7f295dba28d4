"""No SQL statement is built by pasting in a value from data or config.

Values travel as bound parameters; what cannot be a parameter (an identifier, a view body, `COMMENT ON`) goes
through `finrecon.core.sql_text` (DuckDB's own quoting). This test reads the package's source: every
f-string handed to `execute` / `sql` may interpolate only those helpers' results, module constants, or an
expression listed below with the reason it is not a value from data or config. A new interpolation fails here
until someone has looked at it. `test_quoting_survives_hostile_names` shows the helpers hold under attack.
"""

from __future__ import annotations

import ast
from pathlib import Path

import duckdb
import pytest

import finrecon
from finrecon.core.sql_text import identifier, literal

PACKAGE = Path(finrecon.__file__).parent
SQL_CALLS = {"execute", "sql", "executemany", "query"}
SAFE_CALLS = {"identifier", "literal"}

# (file, expression) -> why it is not a value from data or config
REVIEWED: dict[tuple[str, str], str] = {
    ("alerts/lifecycle.py", "marks"): "a list of `?` placeholders, one per value",
    ("alerts/nightly.py", "state.catalog"): "the state file's catalog name, chosen by DuckDB",
    (
        "bench/azure.py",
        "azure_select(export_type, 'csv.gz', 0, rows)",
    ): "benchmark: azure_select()'s SELECT of generated rows",
    (
        "bench/azure.py",
        "azure_select(export_type, fmt, start, stop)",
    ): "benchmark: azure_select()'s SELECT of generated rows",
    (
        "bench/cur.py",
        "cur_select('cur_legacy', 0, rows)",
    ): "benchmark: cur_select()'s SELECT of generated rows",
    ("bench/cur.py", "cur_select(export_type, 0, 1)"): "benchmark: cur_select()'s SELECT of generated rows",
    (
        "bench/cur.py",
        "cur_select(export_type, start, stop)",
    ): "benchmark: cur_select()'s SELECT of generated rows",
    ("bench/generate.py", "_copy_options(fmt)"): "benchmark: COPY options for a format enum",
    ("bench/generate.py", "scale"): "benchmark: an int row count",
    ("bench/generate.py", "sql"): "benchmark: the generator's own SELECT",
    (
        "warehouse/aws_landing.py",
        "landing_model('stg_aws__cur_legacy')",
    ): "the project's own staging SQL file, as a view over the delivery",
    (
        "warehouse/dictionary.py",
        "column",
    ): "published column names for information_schema lookups of the build's own tables",
    ("warehouse/dictionary.py", "objects"): "a fixed SQL fragment (information_schema)",
    ("warehouse/dictionary.py", "table.kind"): "'table' or 'view'",
    ("warehouse/dictionary.py", "target"): "built by identifier()",
    ("warehouse/dictionary.py", "where"): "a fixed SQL fragment",
    ("warehouse/erp_landing.py", "ROW_COLUMN"): "the row-number column's constant name",
    ("warehouse/po_history.py", "runs"): "the state file's runs table: DuckDB's catalog name and a constant",
    (
        "warehouse/po_history.py",
        "versions",
    ): "the state file's po_header_versions table: catalog name and constant",
    ("warehouse/gcp_landing.py", "', '.join(projections)"): "projections of identifier()-quoted column names",
    ("connectors/_files.py", "', '.join(projections)"): "projections of identifier()-quoted column names",
    ("warehouse/publish.py", "body"): "the SQL of a `_latest` view defined in this module",
    ("warehouse/publish.py", "catalog"): "the state catalog name, chosen by DuckDB",
    ("warehouse/publish.py", "current"): "a mart's name from this module's constants",
    ("warehouse/publish.py", "files"): "literal()-quoted lake part paths (a view body takes no parameter)",
    ("warehouse/publish.py", "history"): "a history table's name from this module's constants",
    ("warehouse/publish.py", "name"): "model, variable and view names from this code",
    ("warehouse/publish.py", "state.catalog"): "the state catalog name, chosen by DuckDB",
    ("warehouse/publish.py", "state_po_burn"): "the state catalog's po_burn history table",
    ("warehouse/publish.py", "table"): "state table names from STATE_TABLES",
    ("warehouse/publish.py", "type_"): "a DuckDB type name read from the build's own describe",
    ("warehouse/run.py", "assignments"): "`column = ?` pairs; the columns are RunBook's own",
    ("warehouse/run.py", "table"): "state table names from this module",
    ("warehouse/state.py", "columns"): "a state table's own column list",
    ("warehouse/state.py", "table"): "state table names from this module",
}


def interpolations() -> list[tuple[str, str]]:
    """(file, expression) of every value interpolated into an f-string passed to a SQL call."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if (
                node.func.attr not in SQL_CALLS
                or not node.args
                or not isinstance(node.args[0], ast.JoinedStr)
            ):
                continue
            for part in node.args[0].values:
                if isinstance(part, ast.FormattedValue):
                    found.append((path.relative_to(PACKAGE).as_posix(), part.value))
    return [(file, ast.unparse(value)) for file, value in found if not _safe(value)]


def _safe(value: ast.expr) -> bool:
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in SAFE_CALLS:
        return True
    return isinstance(value, ast.Name) and value.id.isupper()  # a module constant


def test_every_interpolation_into_sql_is_reviewed() -> None:
    unreviewed = sorted(set(interpolations()) - set(REVIEWED))
    assert unreviewed == [], "interpolated into SQL without review (use a parameter or sql_text): " + repr(
        unreviewed
    )


def test_no_hand_rolled_quoting_outside_sql_text() -> None:
    offenders = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if path.name != "sql_text.py"
        and any(pattern in path.read_text(encoding="utf-8") for pattern in ("\"''\"", "'\"\"'"))
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "hostile",
    ["x'; drop table t; --", 'col"; drop table t; --', "a.b", "ＰＯ-1001", "po\u200b-1", "Robert'); --"],
)
def test_quoting_survives_hostile_names(hostile: str) -> None:
    con = duckdb.connect()
    con.execute("create table t (v varchar)")
    con.execute(f"create table {identifier(hostile)} as select {literal(hostile)} as {identifier(hostile)}")
    con.execute(f"create view {identifier(hostile + '_view')} as select {literal(hostile)} as v")
    assert con.execute(f"select {identifier(hostile)} from {identifier(hostile)}").fetchall() == [(hostile,)]
    assert con.execute(f"select v from {identifier(hostile + '_view')}").fetchall() == [(hostile,)]
    assert con.execute("select count(*) from t").fetchall() == [(0,)]  # still there: nothing was executed
