"""Pandera model for FOCUS charge rows as delivered, and their typing into the canonical lake schema.

Each delivered value is parsed once: `prepare` adds a typed sibling `__t_<column>` beside every FOCUS column
(from text, or from the native Parquet type), the Pandera checks compare a value with its sibling (delivered
but did not parse = failure, reported with the value as delivered), and `type_charges` keeps the siblings.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

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

# The longest text value a charge may carry. Provider tags are short (AWS: 50 tags of at most 128 + 256
# characters); a larger value is a broken export, and would otherwise be copied into every mart that reads Tags.
MAX_TEXT_BYTES = 65_536
# The largest cost a charge may carry, either sign: beyond it a value is a broken export (a mangled exponent),
# not money, and a few of them would overflow every sum to infinity. Such a cost fails `is_decimal`.
MAX_ABS_COST = 1e15
# A charge cannot start after the file was landed; the slack absorbs clock skew between provider and us.
FUTURE_SLACK = timedelta(days=1)


def typed_name(column: str) -> str:
    return f"__t_{column}"


def failure_name(column: str) -> str:
    """The sibling naming the check a JSON column's value fails (Tags: not an object, or a repeated key)."""
    return f"__e_{column}"


def _typed_expr(name: str, kind: Kind, dtype: pl.DataType, values: pl.Series) -> pl.Expr:
    """The typed value of one delivered column, from text or from a native Parquet type."""
    column = pl.col(name)
    if kind is Kind.DECIMAL:
        if dtype.is_numeric():
            number = column.cast(pl.Float64)
            number = pl.when(number.is_finite()).then(number).otherwise(None)
        else:
            number = parsing.decimal_expr(name)
        if name.endswith("Cost"):
            return pl.when(number.abs() <= MAX_ABS_COST).then(number).otherwise(None)
        return number
    if kind is Kind.TIMESTAMP:
        if isinstance(dtype, pl.Datetime):
            utc = column.dt.convert_time_zone("UTC").dt.replace_time_zone(None) if dtype.time_zone else column
            return utc.cast(pl.Datetime("us"))
        if isinstance(dtype, pl.Date):
            return column.cast(pl.Datetime("us"))
        return pl.lit(parsing.parse_timestamps(values.cast(pl.Utf8)))
    text = column if dtype == pl.Utf8 else column.cast(pl.Utf8)
    if name in CURRENCY_COLUMNS:
        return text.str.strip_chars().str.to_uppercase()
    if name in STRICT_ENUMS:
        return parsing.enum_expr(name, ENUMS[name]) if dtype == pl.Utf8 else text
    if name in ENUMS:
        return pl.coalesce(parsing.enum_expr(name, ENUMS[name]), text) if dtype == pl.Utf8 else text
    return text


def _siblings(name: str, raw: pl.DataFrame) -> list[pl.Expr]:
    """The typed sibling of one FOCUS column (and for JSON columns the check each invalid value fails)."""
    kind = FOCUS_COLUMNS[name]
    if kind is Kind.JSON:
        typed, failed = parsing.tags_exprs(name, raw[name].cast(pl.Utf8))
        return [typed.alias(typed_name(name)), failed.alias(failure_name(name))]
    return [_typed_expr(name, kind, raw.schema[name], raw[name]).alias(typed_name(name))]


def prepare(raw: pl.DataFrame) -> pl.DataFrame:
    """`raw` plus a typed sibling for every FOCUS column it has (parsed once, columnar)."""
    siblings = [expr for name in raw.columns if name in FOCUS_COLUMNS for expr in _siblings(name, raw)]
    return raw.with_columns(siblings)


def _sibling_check(name: str, check_name: str, condition: pl.Expr) -> pa.Check:
    """Delivered (non-NULL) values must satisfy `condition`, an expression over the typed sibling."""

    def check(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(name).is_null() | condition.fill_null(False))

    return pa.Check(check, name=check_name)


def _required(name: str) -> list[pa.Check]:
    """`not_nullable` for a required column. Pandera's own nullable check also counts a native NaN as NULL, so a
    NaN cost would fail twice (`is_decimal` and `not_nullable`); for a cost only a missing value fails it here
    (a NaN fails `is_decimal`), elsewhere a NaN in a float column is as missing as NULL."""
    if name not in REQUIRED_COLUMNS:
        return []

    def check(data: PolarsData) -> pl.LazyFrame:
        present = pl.col(name).is_not_null()
        if FOCUS_COLUMNS[name] is not Kind.DECIMAL and data.lazyframe.collect_schema()[name].is_float():
            present = present & pl.col(name).is_not_nan()
        return data.lazyframe.select(present)

    return [pa.Check(check, name="not_nullable")]


def _max_bytes_check(name: str) -> pa.Check:
    """Text no longer than MAX_TEXT_BYTES (on the value as delivered, so that the check itself stays cheap)."""

    def check(data: PolarsData) -> pl.LazyFrame:
        text = pl.col(name).cast(pl.Utf8)
        return data.lazyframe.select(pl.col(name).is_null() | (text.str.len_bytes() <= MAX_TEXT_BYTES))

    return pa.Check(check, name=f"is_at_most_{MAX_TEXT_BYTES}_bytes")


def _column_checks(name: str, now: datetime) -> list[pa.Check]:
    kind, typed = FOCUS_COLUMNS[name], pl.col(typed_name(name))
    found: list[pa.Check] = []
    if kind is Kind.DECIMAL:
        found.append(_sibling_check(name, "is_decimal", typed.is_not_null()))
    elif kind is Kind.TIMESTAMP:
        found.append(_sibling_check(name, "is_timestamp", typed.is_not_null()))
        if name == "ChargePeriodStart":
            latest = (now.astimezone(UTC).replace(tzinfo=None) + FUTURE_SLACK).replace(microsecond=0)
            found.append(_sibling_check(name, "is_not_in_future", typed.is_null() | (typed <= latest)))
    elif kind is Kind.JSON:
        # exactly one of these fails for an invalid value: the sibling names which
        failed = pl.col(failure_name(name))
        for check in (parsing.TAGS_NOT_AN_OBJECT, parsing.TAGS_DUPLICATE_KEY):
            found.append(_sibling_check(name, check, failed.is_null() | (failed != check)))
    if kind in (Kind.STRING, Kind.JSON):
        found.append(_max_bytes_check(name))
    if name in CURRENCY_COLUMNS:
        found.append(_sibling_check(name, "is_iso4217_currency", typed.is_in(_ISO)))
    if name in STRICT_ENUMS:
        found.append(_sibling_check(name, f"is_focus_{name}", typed.is_not_null()))
    return found


def charge_schema(present_columns: Iterable[str], now: datetime | None = None) -> pa.DataFrameSchema:
    """Charge rows as delivered (run on `prepare`d frames). Grain: one row of one input file.

    Only the columns the file has are checked (absent optional columns become NULL when typed); required columns
    are checked for presence before this schema runs, so that a missing one fails the file with a clear message.
    `now` (default: the clock) bounds ChargePeriodStart: a charge that starts in the future is a broken date,
    and would move the reconciliation date (the last charge date) of every mart.
    """
    now = now or datetime.now(UTC)
    columns = {
        name: pa.Column(None, checks=_required(name) + _column_checks(name, now), nullable=True)
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
