"""Pandera model for FOCUS charge rows as delivered, and their typing into the canonical lake schema.

Each delivered value is parsed once: `prepare` adds a typed sibling `__t_<column>` beside every FOCUS column
(from text, or from the native Parquet type), the Pandera checks compare a value with its sibling (delivered
but did not parse = failure, reported with the value as delivered), and `type_charges` keeps the siblings.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from finrecon.models import parsing
from finrecon.models.currencies import ISO_4217
from finrecon.models.focus import (
    CURRENCY_COLUMNS,
    ENUMS,
    FOCUS_COLUMNS,
    REQUIRED_COLUMNS,
    STRICT_ENUMS,
    Kind,
)

# Extension columns the pipeline adds to every landed charge (lineage); resolution columns come later in SQL.
LINEAGE_COLUMNS: dict[str, pl.DataType] = {
    "x_source": pl.Utf8(),
    "x_source_file": pl.Utf8(),
    "x_source_row": pl.Int64(),
    "x_run_id": pl.Utf8(),
}

POLARS_TYPES: dict[Kind, pl.DataType] = {
    Kind.STRING: pl.Utf8(),
    Kind.DECIMAL: pl.Float64(),
    Kind.TIMESTAMP: pl.Datetime("us"),
    Kind.JSON: pl.Utf8(),
}
_ISO = sorted(ISO_4217)


def typed_name(column: str) -> str:
    return f"__t_{column}"


def _typed_expr(name: str, kind: Kind, dtype: pl.DataType, values: pl.Series) -> pl.Expr:
    """The typed value of one delivered column, from text or from a native Parquet type."""
    column = pl.col(name)
    if kind is Kind.DECIMAL:
        if dtype.is_numeric():
            number = column.cast(pl.Float64)
            return pl.when(number.is_finite()).then(number).otherwise(None)
        return parsing.decimal_expr(name)
    if kind is Kind.TIMESTAMP:
        if isinstance(dtype, pl.Datetime):
            utc = column.dt.convert_time_zone("UTC").dt.replace_time_zone(None) if dtype.time_zone else column
            return utc.cast(pl.Datetime("us"))
        if isinstance(dtype, pl.Date):
            return column.cast(pl.Datetime("us"))
        return pl.lit(parsing.parse_timestamps(values.cast(pl.Utf8)))
    text = column if dtype == pl.Utf8 else column.cast(pl.Utf8)
    if kind is Kind.JSON:
        return parsing.tags_expr(name, values.cast(pl.Utf8))
    if name in CURRENCY_COLUMNS:
        return text.str.strip_chars().str.to_uppercase()
    if name in STRICT_ENUMS:
        return parsing.enum_expr(name, ENUMS[name]) if dtype == pl.Utf8 else text
    if name in ENUMS:
        return pl.coalesce(parsing.enum_expr(name, ENUMS[name]), text) if dtype == pl.Utf8 else text
    return text


def prepare(raw: pl.DataFrame) -> pl.DataFrame:
    """`raw` plus a typed sibling for every FOCUS column it has (parsed once, columnar)."""
    siblings = [
        _typed_expr(name, FOCUS_COLUMNS[name], raw.schema[name], raw[name]).alias(typed_name(name))
        for name in raw.columns
        if name in FOCUS_COLUMNS
    ]
    return raw.with_columns(siblings)


def _sibling_check(name: str, check_name: str, condition: pl.Expr) -> pa.Check:
    """Delivered (non-NULL) values must satisfy `condition`, an expression over the typed sibling."""

    def check(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(name).is_null() | condition.fill_null(False))

    return pa.Check(check, name=check_name)


def _column_checks(name: str) -> list[pa.Check]:
    kind, typed = FOCUS_COLUMNS[name], pl.col(typed_name(name))
    found: list[pa.Check] = []
    if kind is Kind.DECIMAL:
        found.append(_sibling_check(name, "is_decimal", typed.is_not_null()))
    elif kind is Kind.TIMESTAMP:
        found.append(_sibling_check(name, "is_timestamp", typed.is_not_null()))
    elif kind is Kind.JSON:
        found.append(_sibling_check(name, "is_json_object", typed.is_not_null()))
    if name in CURRENCY_COLUMNS:
        found.append(_sibling_check(name, "is_iso4217_currency", typed.is_in(_ISO)))
    if name in STRICT_ENUMS:
        found.append(_sibling_check(name, f"is_focus_{name}", typed.is_not_null()))
    return found


def charge_schema(present_columns: Iterable[str]) -> pa.DataFrameSchema:
    """Charge rows as delivered (run on `prepare`d frames). Grain: one row of one input file.

    Only the columns the file has are checked (absent optional columns become NULL when typed); required columns
    are checked for presence before this schema runs, so that a missing one fails the file with a clear message.
    """
    columns = {
        name: pa.Column(None, checks=_column_checks(name), nullable=name not in REQUIRED_COLUMNS)
        for name in present_columns
        if name in FOCUS_COLUMNS
    }
    return pa.DataFrameSchema(columns, strict=False, name="focus_charges_raw")


def missing_required(columns: Iterable[str]) -> list[str]:
    have = set(columns)
    return [name for name in REQUIRED_COLUMNS if name not in have]


def type_charges(prepared: pl.DataFrame) -> pl.DataFrame:
    """Valid `prepare`d rows in the canonical schema: every FOCUS column typed, then the `x_` columns."""
    focus = [
        pl.col(typed_name(name)).cast(POLARS_TYPES[kind]).alias(name)
        if typed_name(name) in prepared.columns
        else pl.lit(None, dtype=POLARS_TYPES[kind]).alias(name)
        for name, kind in FOCUS_COLUMNS.items()
    ]
    extensions = [
        pl.col(c).cast(pl.Utf8) if c != "x_source_row" else pl.col(c)
        for c in prepared.columns
        if c.startswith("x_")
    ]
    return prepared.select([*focus, *extensions])


def canonical_schema() -> pa.DataFrameSchema:
    """Typed charges as landed in the lake. Grain: one charge row of one input file (lineage in `x_source_*`)."""
    columns = {
        name: pa.Column(POLARS_TYPES[kind], nullable=name not in REQUIRED_COLUMNS)
        for name, kind in FOCUS_COLUMNS.items()
    }
    columns |= {name: pa.Column(dtype, nullable=False) for name, dtype in LINEAGE_COLUMNS.items()}
    return pa.DataFrameSchema(columns, strict=False, name="focus_charges")
