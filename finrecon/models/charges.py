"""Pandera model for FOCUS charge rows as delivered, and their typing into the canonical lake schema."""

from __future__ import annotations

from collections.abc import Iterable

import pandera.polars as pa
import polars as pl

from finrecon.models import checks, parsing
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

_POLARS_TYPES: dict[Kind, pl.DataType] = {
    Kind.STRING: pl.Utf8(),
    Kind.DECIMAL: pl.Float64(),
    Kind.TIMESTAMP: pl.Datetime("us"),
    Kind.JSON: pl.Utf8(),
}


def _column_checks(name: str) -> list[pa.Check]:
    kind = FOCUS_COLUMNS.get(name)
    found: list[pa.Check] = []
    if kind is Kind.DECIMAL:
        found.append(checks.is_decimal())
    elif kind is Kind.TIMESTAMP:
        found.append(checks.is_timestamp())
    elif kind is Kind.JSON:
        found.append(checks.is_json_object())
    if name in CURRENCY_COLUMNS:
        found.append(checks.is_iso_currency())
    if name in STRICT_ENUMS:
        found.append(checks.is_one_of(ENUMS[name], f"is_focus_{name}"))
    return found


def charge_schema(present_columns: Iterable[str]) -> pa.DataFrameSchema:
    """Raw charge rows, all text, as delivered. Grain: one row of one input file.

    Only the columns the file has are checked (absent optional columns become NULL when typed); required columns
    are checked for presence before this schema runs, so that a missing one fails the file with a clear message.
    """
    columns = {
        name: pa.Column(pl.Utf8, checks=_column_checks(name), nullable=name not in REQUIRED_COLUMNS)
        for name in present_columns
        if name in FOCUS_COLUMNS
    }
    return pa.DataFrameSchema(columns, strict=False, name="focus_charges_raw")


def missing_required(columns: Iterable[str]) -> list[str]:
    have = set(columns)
    return [name for name in REQUIRED_COLUMNS if name not in have]


def _typed(name: str, kind: Kind, raw: pl.DataFrame) -> pl.Expr:
    if name not in raw.columns:
        return pl.lit(None, dtype=_POLARS_TYPES[kind]).alias(name)
    if kind is Kind.DECIMAL:
        return parsing.decimal_expr(name).alias(name)
    if kind is Kind.TIMESTAMP:
        return parsing.timestamp_expr(name).alias(name)
    if kind is Kind.JSON:
        return parsing.tags_expr(name, raw[name]).alias(name)
    if name in CURRENCY_COLUMNS:
        return pl.col(name).str.strip_chars().str.to_uppercase().alias(name)
    if name in ENUMS:
        return pl.coalesce(parsing.enum_expr(name, ENUMS[name]), pl.col(name)).alias(name)
    return pl.col(name).alias(name)


def type_charges(raw: pl.DataFrame) -> pl.DataFrame:
    """Valid raw rows typed into the canonical schema: every FOCUS column, then `x_` extension columns."""
    focus = [_typed(name, kind, raw) for name, kind in FOCUS_COLUMNS.items()]
    extensions = [pl.col(c) for c in raw.columns if c.startswith("x_")]
    return raw.select([*focus, *extensions])


def canonical_schema() -> pa.DataFrameSchema:
    """Typed charges as landed in the lake. Grain: one charge row of one input file (lineage in `x_source_*`)."""
    columns = {
        name: pa.Column(_POLARS_TYPES[kind], nullable=name not in REQUIRED_COLUMNS)
        for name, kind in FOCUS_COLUMNS.items()
    }
    columns |= {name: pa.Column(dtype, nullable=False) for name, dtype in LINEAGE_COLUMNS.items()}
    return pa.DataFrameSchema(columns, strict=False, name="focus_charges")
