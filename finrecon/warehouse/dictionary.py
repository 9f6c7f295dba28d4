"""The data dictionary, generated so it cannot drift: `docs/data-dictionary.md` and the published file's
`COMMENT ON` descriptions come from one source.

- each table's grain: the model's leading comment lines (`finrecon/sql/<layer>/<name>.sql`), or, for tables no
  model builds (the run log, histories, `_latest` views), `grain` in `finrecon/sql/dictionary/tables.toml`;
- each column's meaning (and the currency of its money): `tables.toml`, next to the SQL;
- column names and DuckDB types: a published database (by default a run of the bundled fixtures, so the file
  is the same on every machine); the unit column is derived from the type and name (money in which currency,
  ratio, date, count, …);
- the prose that is not about one table (money and currencies, provider mappings): `intro.md`, `appendix.md`.

`finrecon docs` rewrites the markdown (from a run of the bundled fixtures: finrecon/flows/bundled.py);
`tests/docs/` fails when the committed file differs or a published column has no meaning.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from finrecon.core.sql_text import identifier, literal
from finrecon.models.config import PROJECT_ROOT
from finrecon.models.focus import FOCUS_COLUMNS
from finrecon.warehouse.models_runner import SQL_DIR, Model, load_models

DICTIONARY_DIR = SQL_DIR / "dictionary"
OUTPUT = PROJECT_ROOT / "docs" / "data-dictionary.md"
REGENERATE = "finrecon docs"
# Tables whose FOCUS columns are documented by the FOCUS specification, and delivered x_ columns by the provider.
FOCUS_TABLES = ("charges", "lake_charges")
_MONEY = re.compile(r"(cost|amount|Cost)(_each|_before|_after|_delta)?(_reporting)?$")


@dataclass(frozen=True)
class ColumnGroup:
    """One row of a table's column list: columns sharing one meaning."""

    names: tuple[str, ...]
    meaning: str
    unit: str | None = None
    optional: bool = False  # present only when a source of that kind was landed (charges' x_ columns)


@dataclass(frozen=True)
class TableDoc:
    name: str
    grain: str | None
    description: str
    money: str | None
    same_as: str | None
    columns: tuple[ColumnGroup, ...] = field(default=())

    def group_of(self, column: str) -> ColumnGroup | None:
        return next((g for g in self.columns if column in g.names), None)


@dataclass(frozen=True)
class PublishedTable:
    name: str
    kind: str  # "table" or "view"
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type) in table order


def load_source(directory: Path = DICTIONARY_DIR) -> dict[str, TableDoc]:
    """The structured source, in the order the tables are documented."""
    raw = tomllib.loads((directory / "tables.toml").read_text(encoding="utf-8"))["tables"]
    docs = {}
    for name, entry in raw.items():
        groups = tuple(
            ColumnGroup(
                tuple(n.strip() for n in item["col"].split(",")),
                item["meaning"],
                item.get("unit"),
                bool(item.get("optional", False)),
            )
            for item in entry.get("columns", [])
        )
        docs[name] = TableDoc(
            name,
            entry.get("grain"),
            entry.get("description", "").strip(),
            entry.get("money"),
            entry.get("same_as"),
            groups,
        )
    return docs


def model_grain(model: Model) -> str:
    """The grain sentence of the model's first comment lines: the first line and the lines that continue its
    sentence (an open parenthesis, or a line that does not end one and a next line that does not start one)."""
    lines = []
    for line in model.sql.lstrip().splitlines():
        if not line.startswith("--"):
            break
        text = line.removeprefix("--").strip()
        if not text.startswith("publish:"):
            lines.append(text)
    grain = lines[0]
    for line in lines[1:]:
        open_parenthesis = grain.count("(") > grain.count(")")
        continues = not grain.endswith((".", ")")) and not line[:1].isupper()
        if not (open_parenthesis or continues):
            break
        grain += " " + line
    grain = re.split(r"(?<=\.) (?=[A-Z])", grain, maxsplit=1)[0]
    return grain.removeprefix("grain:").strip()


def published_models() -> dict[str, Model]:
    return {m.name: m for m in load_models() if m.materialization in ("table", "view")}


def published_schema(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> dict[str, PublishedTable]:
    """Every table and view of the published database's main schema, with its columns and types."""
    where = "schema_name = 'main' and not internal"
    where += f" and database_name = '{catalog}'" if catalog else " and database_name = current_database()"
    objects = f"{where} and not temporary"
    kinds = dict(con.execute(f"select table_name, 'table' from duckdb_tables() where {objects}").fetchall())
    kinds |= dict(con.execute(f"select view_name, 'view' from duckdb_views() where {objects}").fetchall())
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, type_ in con.execute(
        f"select table_name, column_name, data_type from duckdb_columns() where {where} "
        "order by table_name, column_index"
    ).fetchall():
        if table in kinds:
            columns.setdefault(table, []).append((column, type_))
    return {name: PublishedTable(name, kinds[name], tuple(columns.get(name, []))) for name in sorted(kinds)}


def _is_focus(table: str, column: str) -> bool:
    return table in FOCUS_TABLES and column in FOCUS_COLUMNS


def _is_delivered_extension(table: str, column: str, docs: dict[str, TableDoc]) -> bool:
    """A provider's own column kept as `x_<name>` (not one the pipeline adds, which are documented)."""
    return table in FOCUS_TABLES and column.startswith("x_") and docs["charges"].group_of(column) is None


def meaning_of(table: str, column: str, docs: dict[str, TableDoc]) -> ColumnGroup | None:
    """The documented meaning of a published column, following `same_as` (views over another table)."""
    if _is_focus(table, column):
        return ColumnGroup((column,), f"FOCUS 1.2 column {column} (see the FOCUS specification)")
    if _is_delivered_extension(table, column, docs):
        return ColumnGroup(
            (column,), "a provider's own column, delivered with the charges and kept as x_<name>"
        )
    doc = docs.get(table)
    while doc is not None:
        group = doc.group_of(column)
        if group is not None:
            return group
        doc = docs.get(doc.same_as) if doc.same_as else None
    return None


def money_of(table: str, docs: dict[str, TableDoc]) -> str | None:
    doc = docs.get(table)
    while doc is not None:
        if doc.money:
            return doc.money
        doc = docs.get(doc.same_as) if doc.same_as else None
    return None


def unit_hint(column: str, type_: str, money: str | None, explicit: str | None = None) -> str:
    """What a value of the column is measured in, from its DuckDB type and name (a group's explicit unit is for
    its numbers: `invoice_currency, invoice_amount` share a meaning, the unit is the amount's)."""
    if explicit and (type_ == "DOUBLE" or type_.startswith("DECIMAL")):
        return explicit
    if type_ == "DATE":
        return "date"
    if type_.startswith("TIMESTAMP"):
        return "timestamp, UTC" if "TIME ZONE" in type_ else "timestamp"
    if type_ == "BOOLEAN":
        return "true / false"
    if type_ == "DOUBLE":
        if column.endswith("_ratio") or column.endswith("_match_rate") or column.endswith("_po_rate"):
            return "ratio, 1 = 100 %"
        if column.endswith("fx_rate") or column in ("rate", "x_gcp_currency_conversion_rate"):
            return "FX rate: units of the target currency per unit of the source"
        if _MONEY.search(column):
            if column.endswith("_reporting"):
                return "money, reporting currency (`reporting_currency`)"
            return f"money, {money}" if money else "money"
        if column.endswith("_days"):
            return "days"
    if column.endswith("_days") and type_ in ("INTEGER", "BIGINT"):
        return "days"
    if column.endswith("_count") and type_ in ("INTEGER", "BIGINT", "HUGEINT"):
        return "count"
    return ""


def problems(schema: dict[str, PublishedTable], docs: dict[str, TableDoc]) -> list[str]:
    """Why the dictionary cannot describe this database: each is a line to fix in tables.toml."""
    found = []
    models = published_models()
    for table in schema.values():
        doc = docs.get(table.name)
        if doc is None:
            found.append(f"{table.name}: published but has no [tables.{table.name}] entry")
            continue
        if table.name in models and doc.grain:
            found.append(f"{table.name}: the grain comes from its model's first comment lines; drop `grain`")
        if table.name not in models and not doc.grain:
            found.append(f"{table.name}: no model states its grain; add `grain`")
        for column, type_ in table.columns:
            group = meaning_of(table.name, column, docs)
            if group is None:
                found.append(f"{table.name}.{column}: published but has no meaning")
            elif unit_hint(column, type_, money_of(table.name, docs), group.unit) == "money":
                found.append(f"{table.name}.{column}: money in which currency? add `money` or a `unit`")
        present = {c for c, _ in table.columns}
        for group in doc.columns:
            for name in group.names:
                if name not in present and not group.optional:
                    found.append(f"{table.name}.{name}: documented but not published (stale)")
    found += [f"{name}: documented but not published" for name in docs if name not in schema]
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _distinct(values: Iterable[str], separator: str = ", ") -> str:
    seen = [v for v in dict.fromkeys(values) if v]
    return separator.join(seen)


def _render_columns(table: PublishedTable, docs: dict[str, TableDoc]) -> list[str]:
    doc = docs[table.name]
    types = dict(table.columns)
    money = money_of(table.name, docs)
    lines = ["| column | type | unit | meaning |", "|---|---|---|---|"]
    done: set[str] = set()
    focus = [c for c, _ in table.columns if _is_focus(table.name, c)]
    delivered = [c for c, _ in table.columns if _is_delivered_extension(table.name, c, docs)]
    if focus:
        lines.append(
            f"| {len(focus)} FOCUS columns: {', '.join(f'`{c}`' for c in focus)} | as delivered, typed | | "
            "the FOCUS 1.2 specification (absent optional columns are NULL) |"
        )
    if delivered:
        lines.append(
            f"| {', '.join(f'`{c}`' for c in delivered)} | {_distinct(types[c] for c in delivered)} | | "
            "delivered `x_` columns of the bundled sources (a provider's non-FOCUS columns, `x_`-prefixed) |"
        )
    done |= set(focus) | set(delivered)
    for column, _ in table.columns:
        if column in done:
            continue
        group = meaning_of(table.name, column, docs)
        if group is None:
            continue
        names = [n for n in group.names if n in types and n not in done] if group.names else [column]
        if column not in names:
            names = [column]
        done |= set(names)
        unit = _distinct((unit_hint(n, types[n], money, group.unit) for n in names), "; ")
        lines.append(
            f"| {', '.join(f'`{n}`' for n in names)} | {_distinct(types[n] for n in names)} | "
            f"{_cell(unit)} | {_cell(group.meaning)} |"
        )
    for group in doc.columns:
        absent = [n for n in group.names if n not in types and group.optional]
        if absent:
            lines.append(
                f"| {', '.join(f'`{n}`' for n in absent)} | (not in this publication) | "
                f"{_cell(group.unit or '')} | {_cell(group.meaning)} |"
            )
    return lines


def table_grain(name: str, docs: dict[str, TableDoc]) -> tuple[str, str | None]:
    """The grain and where it is stated (the model file, or None for the dictionary source)."""
    model = published_models().get(name)
    if model is not None:
        return model_grain(model), f"finrecon/sql/{model.layer}/{model.name}.sql"
    return docs[name].grain or "", None


def render(schema: dict[str, PublishedTable], docs: dict[str, TableDoc]) -> str:
    """The whole markdown file: intro, one section per published table (source order), the mapping prose."""
    intro = (DICTIONARY_DIR / "intro.md").read_text(encoding="utf-8").strip()
    appendix = (DICTIONARY_DIR / "appendix.md").read_text(encoding="utf-8").strip()
    out = [
        "<!-- Generated by `finrecon docs` from finrecon/sql/dictionary/ and the models' SQL: edit those, "
        "not this file. -->",
        "",
        intro,
        "",
        "Tables: " + ", ".join(f"[`{n}`](#{n})" for n in docs if n in schema) + ".",
    ]
    for name, doc in docs.items():
        table = schema.get(name)
        if table is None:
            continue
        grain, where = table_grain(name, docs)
        source = f" (stated in `{where}`)" if where else ""
        out += ["", f"## {name}", "", f"**{table.kind.capitalize()}.** Grain{source}: {grain}"]
        if doc.description:
            out += ["", doc.description]
        if doc.same_as:
            own = [c for c, _ in table.columns if docs[name].group_of(c) is not None]
            out += ["", f"Columns: as in [`{doc.same_as}`](#{doc.same_as})" + (", plus:" if own else ".")]
            if not own:
                continue
        out += ["", *_render_columns(table, docs)]
    out += ["", appendix, ""]
    return "\n".join(out)


def _comment_text(text: str, limit: int = 1000) -> str:
    plain = re.sub(r"\s+", " ", text.replace("`", "")).strip()
    return plain if len(plain) <= limit else plain[: limit - 1] + "…"


def apply_comments(
    con: duckdb.DuckDBPyConnection, catalog: str, docs: dict[str, TableDoc] | None = None
) -> None:
    """`COMMENT ON TABLE/VIEW/COLUMN` for every documented table of `catalog` (before the publication's swap)."""
    docs = docs or load_source()
    schema = published_schema(con, catalog)
    for table in schema.values():
        if table.name not in docs:
            continue
        grain, _ = table_grain(table.name, docs)
        description = docs[table.name].description.split("\n\n", 1)[0]
        target = f"{identifier(catalog)}.main.{identifier(table.name)}"
        text = _comment_text(f"Grain: {grain.rstrip('.')}. {description}".replace("**", ""))
        con.execute(f"comment on {table.kind} {target} is {literal(text)}")  # COMMENT ON takes no parameter
        money = money_of(table.name, docs)
        for column, type_ in table.columns:
            group = meaning_of(table.name, column, docs)
            if group is None:
                continue
            unit = unit_hint(column, type_, money, group.unit)
            text = group.meaning + (f" [{unit}]" if unit else "")
            con.execute(f"comment on column {target}.{identifier(column)} is {literal(_comment_text(text))}")


def generate(database: Path) -> tuple[str, list[str]]:
    """The markdown for a published database, and the problems that keep it from being complete."""
    docs = load_source()
    con = duckdb.connect(str(database), read_only=True)
    try:
        schema = published_schema(con)
    finally:
        con.close()
    return render(schema, docs), problems(schema, docs)


def write(database: Path, output: Path = OUTPUT) -> list[str]:
    """Write the dictionary of `database`; the problems found."""
    text, found = generate(database)
    output.write_text(text, encoding="utf-8")
    return found
