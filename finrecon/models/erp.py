"""Pandera models for the ERP extracts (PO headers, PO lines, FX rates) and their typing."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandera.polars as pa
import polars as pl

from finrecon.models import checks, parsing

PoStatus = str  # "open" | "closed" | "cancelled"

# DESIGN §4: the common ERP words, matched ignoring case, spaces, `-` and `_`.
DEFAULT_STATUS_MAP: dict[str, PoStatus] = {
    "open": "open",
    "approved": "open",
    "issued": "open",
    "released": "open",
    "closed": "closed",
    "completed": "closed",
    "finally closed": "closed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "deleted": "cancelled",
}
PO_TYPES = ("standard", "blanket", "emergency")


def normalize_status(word: str) -> str:
    return re.sub(r"[\s_\-]+", " ", word.strip().lower())


def status_map(overrides: Mapping[str, PoStatus]) -> dict[str, PoStatus]:
    merged = dict(DEFAULT_STATUS_MAP)
    merged.update({normalize_status(k): v for k, v in overrides.items()})
    return merged


def _status_expr(column: str, mapping: dict[str, PoStatus]) -> pl.Expr:
    norm = pl.col(column).str.strip_chars().str.to_lowercase().str.replace_all(r"[\s_\-]+", " ")
    return norm.replace_strict(mapping, default=None)


def _known_status(mapping: dict[str, PoStatus]) -> pa.Check:
    def check(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col(data.key).is_null() | _status_expr(data.key, mapping).is_not_null()
        )

    return pa.Check(check, name="is_known_po_status")


def _valid_range(data: pa.PolarsData) -> pl.LazyFrame:
    start, end = parsing.date_expr("valid_from"), parsing.date_expr("valid_to")
    return data.lazyframe.select(start.is_null() | end.is_null() | (start <= end))


def po_headers_schema(mapping: dict[str, PoStatus]) -> pa.DataFrameSchema:
    """PO headers as extracted (text). Grain: one PO (po_number unique)."""
    return pa.DataFrameSchema(
        {
            "po_number": pa.Column(pl.Utf8, nullable=False, unique=True),
            "vendor_id": pa.Column(pl.Utf8, nullable=False),
            "vendor_name": pa.Column(pl.Utf8, nullable=False),
            "currency": pa.Column(pl.Utf8, checks=[checks.is_iso_currency()], nullable=False),
            "total_amount": pa.Column(
                pl.Utf8, checks=[checks.is_decimal(), checks.at_least(0, "is_non_negative")], nullable=False
            ),
            "status": pa.Column(pl.Utf8, checks=[_known_status(mapping)], nullable=False),
            "valid_from": pa.Column(pl.Utf8, checks=[checks.is_date()], nullable=False),
            "valid_to": pa.Column(pl.Utf8, checks=[checks.is_date()], nullable=False),
            "po_type": pa.Column(pl.Utf8, checks=[checks.is_one_of(PO_TYPES, "is_po_type")], required=False),
            "cost_center": pa.Column(pl.Utf8, required=False),
            "requested_at": pa.Column(pl.Utf8, checks=[checks.is_date()], required=False),
            "approved_at": pa.Column(pl.Utf8, checks=[checks.is_date()], required=False),
            "issued_at": pa.Column(pl.Utf8, checks=[checks.is_date()], required=False),
        },
        checks=[pa.Check(_valid_range, name="valid_from_not_after_valid_to")],
        strict=False,
        name="po_headers_raw",
        metadata={"frame_check_columns": {"valid_from_not_after_valid_to": ["valid_from", "valid_to"]}},
    )


OPTIONAL_HEADER_COLUMNS = ("po_type", "cost_center", "requested_at", "approved_at", "issued_at")


def type_po_headers(raw: pl.DataFrame, mapping: dict[str, PoStatus]) -> pl.DataFrame:
    """Typed PO headers: canonical `status`, the ERP's own word kept as `erp_status`."""
    missing = [pl.lit(None, dtype=pl.Utf8).alias(c) for c in OPTIONAL_HEADER_COLUMNS if c not in raw.columns]
    return raw.with_columns(missing).select(
        pl.col("po_number").str.strip_chars(),
        pl.col("vendor_id").str.strip_chars(),
        pl.col("vendor_name").str.strip_chars(),
        pl.col("currency").str.strip_chars().str.to_uppercase(),
        parsing.decimal_expr("total_amount").alias("total_amount"),
        _status_expr("status", mapping).alias("status"),
        pl.col("status").alias("erp_status"),
        parsing.date_expr("valid_from").alias("valid_from"),
        parsing.date_expr("valid_to").alias("valid_to"),
        pl.coalesce(parsing.enum_expr("po_type", PO_TYPES), pl.lit("standard")).alias("po_type"),
        pl.col("cost_center"),
        *[parsing.date_expr(c).alias(c) for c in ("requested_at", "approved_at", "issued_at")],
    )


def po_lines_schema() -> pa.DataFrameSchema:
    """PO lines as extracted (text). Grain: PO × line_number."""
    amount = [checks.is_decimal(), checks.at_least(0, "is_non_negative")]
    return pa.DataFrameSchema(
        {
            "po_number": pa.Column(pl.Utf8, nullable=False),
            "line_number": pa.Column(pl.Utf8, checks=[checks.is_integer()], nullable=False),
            "description": pa.Column(pl.Utf8, nullable=True),
            "quantity": pa.Column(pl.Utf8, checks=[checks.is_decimal()], nullable=True),
            "unit_price": pa.Column(pl.Utf8, checks=amount, nullable=True),
            "amount": pa.Column(pl.Utf8, checks=amount, nullable=False),
        },
        unique=["po_number", "line_number"],
        strict=False,
        name="po_lines_raw",
    )


def type_po_lines(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.select(
        pl.col("po_number").str.strip_chars(),
        parsing.integer_expr("line_number").alias("line_number"),
        pl.col("description"),
        parsing.decimal_expr("quantity").alias("quantity"),
        parsing.decimal_expr("unit_price").alias("unit_price"),
        parsing.decimal_expr("amount").alias("amount"),
    )


def fx_rates_schema() -> pa.DataFrameSchema:
    """FX rates (text). Grain: rate_date × from_currency × to_currency; `rate` units of `to` per unit of `from`."""
    currency = [checks.is_iso_currency()]
    return pa.DataFrameSchema(
        {
            "rate_date": pa.Column(pl.Utf8, checks=[checks.is_date()], nullable=False),
            "from_currency": pa.Column(pl.Utf8, checks=currency, nullable=False),
            "to_currency": pa.Column(pl.Utf8, checks=currency, nullable=False),
            "rate": pa.Column(
                pl.Utf8, checks=[checks.is_decimal(), checks.above(0, "is_positive")], nullable=False
            ),
        },
        unique=["rate_date", "from_currency", "to_currency"],
        strict=False,
        name="fx_rates_raw",
    )


def type_fx_rates(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.select(
        parsing.date_expr("rate_date").alias("rate_date"),
        pl.col("from_currency").str.strip_chars().str.to_uppercase(),
        pl.col("to_currency").str.strip_chars().str.to_uppercase(),
        parsing.decimal_expr("rate").alias("rate"),
    )
