"""Pandera models for the ERP extracts (PO headers, PO lines, FX rates, invoices, goods receipts, …) and their
typing."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

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
            # a blanket release names its blanket PO (checked in the blanket_po_releases marts, not here)
            "parent_po_number": pa.Column(pl.Utf8, nullable=True, required=False),
        },
        checks=[pa.Check(_valid_range, name="valid_from_not_after_valid_to")],
        strict=False,
        name="po_headers_raw",
        metadata={"frame_check_columns": {"valid_from_not_after_valid_to": ["valid_from", "valid_to"]}},
    )


OPTIONAL_HEADER_COLUMNS = (
    "po_type", "cost_center", "requested_at", "approved_at", "issued_at", "parent_po_number",
)  # fmt: skip


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
        pl.col("parent_po_number").str.strip_chars().replace("", None),
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


def _is_billing_period() -> pa.Check:
    """`YYYY-MM`, the billing period as the charges carry it (`x_billing_period`)."""

    def check(data: pa.PolarsData) -> pl.LazyFrame:
        text = pl.col(data.key).str.strip_chars()
        return data.lazyframe.select(
            pl.col(data.key).is_null() | text.str.contains(r"^\d{4}-(0[1-9]|1[0-2])$")
        )

    return pa.Check(check, name="is_billing_period_yyyy_mm")


def _with_optional(raw: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    """Optional columns the extract left out, as NULL text, so that typing sees one shape."""
    return raw.with_columns([pl.lit(None, dtype=pl.Utf8).alias(c) for c in columns if c not in raw.columns])


def _text(column: str) -> pl.Expr:
    """Trimmed text; an all-blank value is NULL (an empty reference is a missing one, not a reference to '')."""
    trimmed = pl.col(column).str.strip_chars()
    return pl.when(trimmed == "").then(None).otherwise(trimmed).alias(column)


def invoices_schema() -> pa.DataFrameSchema:
    """Supplier invoices as extracted (text). Grain: one invoice (vendor_id × invoice_number).

    `po_number` may be empty: an invoice without a PO reference is a match status, not bad data.
    """
    non_negative = [checks.is_decimal(), checks.at_least(0, "is_non_negative")]
    return pa.DataFrameSchema(
        {
            "invoice_number": pa.Column(pl.Utf8, nullable=False),
            "vendor_id": pa.Column(pl.Utf8, nullable=False),
            "po_number": pa.Column(pl.Utf8, nullable=True),
            "po_line_number": pa.Column(pl.Utf8, checks=[checks.is_integer()], nullable=True, required=False),
            "invoice_date": pa.Column(pl.Utf8, checks=[checks.is_date()], nullable=False),
            "currency": pa.Column(pl.Utf8, checks=[checks.is_iso_currency()], nullable=False),
            "amount": pa.Column(pl.Utf8, checks=[checks.is_decimal()], nullable=False),
            "quantity": pa.Column(pl.Utf8, checks=[checks.is_decimal()], nullable=True, required=False),
            "unit_price": pa.Column(pl.Utf8, checks=non_negative, nullable=True, required=False),
            "cloud_invoice_id": pa.Column(pl.Utf8, nullable=True, required=False),
            "billing_period": pa.Column(
                pl.Utf8, checks=[_is_billing_period()], nullable=True, required=False
            ),
            "provider_name": pa.Column(pl.Utf8, nullable=True, required=False),
        },
        unique=["vendor_id", "invoice_number"],
        strict=False,
        name="invoices_raw",
    )


OPTIONAL_INVOICE_COLUMNS = (
    "po_line_number", "quantity", "unit_price", "cloud_invoice_id", "billing_period", "provider_name",
)  # fmt: skip


def type_invoices(raw: pl.DataFrame) -> pl.DataFrame:
    return _with_optional(raw, OPTIONAL_INVOICE_COLUMNS).select(
        pl.col("invoice_number").str.strip_chars(),
        pl.col("vendor_id").str.strip_chars(),
        _text("po_number"),
        parsing.integer_expr("po_line_number").alias("po_line_number"),
        parsing.date_expr("invoice_date").alias("invoice_date"),
        pl.col("currency").str.strip_chars().str.to_uppercase(),
        parsing.decimal_expr("amount").alias("amount"),
        parsing.decimal_expr("quantity").alias("quantity"),
        parsing.decimal_expr("unit_price").alias("unit_price"),
        _text("cloud_invoice_id"),
        _text("billing_period"),
        _text("provider_name"),
    )


def goods_receipts_schema() -> pa.DataFrameSchema:
    """Goods receipts (service entries) as extracted (text). Grain: receipt × PO × PO line."""
    return pa.DataFrameSchema(
        {
            "receipt_number": pa.Column(pl.Utf8, nullable=False),
            "po_number": pa.Column(pl.Utf8, nullable=False),
            "po_line_number": pa.Column(pl.Utf8, checks=[checks.is_integer()], nullable=True, required=False),
            "receipt_date": pa.Column(pl.Utf8, checks=[checks.is_date()], nullable=False),
            "quantity": pa.Column(pl.Utf8, checks=[checks.is_decimal()], nullable=True, required=False),
            "amount": pa.Column(pl.Utf8, checks=[checks.is_decimal()], nullable=False),
            "currency": pa.Column(pl.Utf8, checks=[checks.is_iso_currency()], nullable=True, required=False),
        },
        unique=["receipt_number", "po_number", "po_line_number"],
        strict=False,
        name="goods_receipts_raw",
    )


def type_goods_receipts(raw: pl.DataFrame) -> pl.DataFrame:
    """Typed receipts; a receipt without a currency is in its PO's currency (resolved in SQL)."""
    return _with_optional(raw, ("po_line_number", "quantity", "currency")).select(
        pl.col("receipt_number").str.strip_chars(),
        pl.col("po_number").str.strip_chars(),
        parsing.integer_expr("po_line_number").alias("po_line_number"),
        parsing.date_expr("receipt_date").alias("receipt_date"),
        parsing.decimal_expr("quantity").alias("quantity"),
        parsing.decimal_expr("amount").alias("amount"),
        _text("currency").str.to_uppercase(),
    )


def commitments_schema() -> pa.DataFrameSchema:
    """Commitment inventory (text): the terms FOCUS does not carry. Grain: one commitment_discount_id."""
    date = [checks.is_date()]
    return pa.DataFrameSchema(
        {
            "commitment_discount_id": pa.Column(pl.Utf8, nullable=False, unique=True),
            "term_start": pa.Column(pl.Utf8, checks=date, nullable=True, required=False),
            "term_end": pa.Column(pl.Utf8, checks=date, nullable=False),
            "po_number": pa.Column(pl.Utf8, nullable=True, required=False),
            "description": pa.Column(pl.Utf8, nullable=True, required=False),
        },
        strict=False,
        name="commitments_raw",
    )


def type_commitments(raw: pl.DataFrame) -> pl.DataFrame:
    optional = [
        pl.lit(None, dtype=pl.Utf8).alias(c)
        for c in ("term_start", "po_number", "description")
        if c not in raw.columns
    ]
    return raw.with_columns(optional).select(
        pl.col("commitment_discount_id").str.strip_chars(),
        parsing.date_expr("term_start").alias("term_start"),
        parsing.date_expr("term_end").alias("term_end"),
        pl.col("po_number").str.strip_chars(),
        pl.col("description"),
    )


# The charge columns a po_cloud_mapping row may match on, besides `tag:<key>` (FOCUS names).
MAPPING_MATCH_COLUMNS = ("BillingAccountId", "SubAccountId", "InvoiceIssuerName", "CommitmentDiscountId")


def _match_column_expr(column: str) -> pl.Expr:
    """`tag:<key>` (prefix in any case, key as written) or a MAPPING_MATCH_COLUMNS name; NULL when neither."""
    text = pl.col(column).str.strip_chars()
    tag_key = text.str.replace(r"(?i)^tag:", "").str.strip_chars()
    is_tag = text.str.to_lowercase().str.starts_with("tag:") & (tag_key != "")
    return (
        pl.when(is_tag)
        .then(pl.lit("tag:") + tag_key)
        .otherwise(parsing.enum_expr(column, MAPPING_MATCH_COLUMNS))
    )


def _is_match_column() -> pa.Check:
    def check(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_null() | _match_column_expr(data.key).is_not_null())

    return pa.Check(check, name="is_mapping_match_column")


def po_cloud_mapping_schema() -> pa.DataFrameSchema:
    """ERP rules that map spend to PO lines (text). Grain: one rule; several may match a charge (the most
    specific wins, see docs/erp_mappings.md), so no uniqueness is asked of the extract."""
    dates = [checks.is_date()]
    return pa.DataFrameSchema(
        {
            "po_number": pa.Column(pl.Utf8, nullable=False),
            "line_number": pa.Column(pl.Utf8, checks=[checks.is_integer()], nullable=False),
            "match_column": pa.Column(pl.Utf8, checks=[_is_match_column()], nullable=False),
            "match_value": pa.Column(pl.Utf8, nullable=False),
            "valid_from": pa.Column(pl.Utf8, checks=dates, nullable=True),  # empty: open-ended
            "valid_to": pa.Column(pl.Utf8, checks=dates, nullable=True),
        },
        checks=[pa.Check(_valid_range, name="valid_from_not_after_valid_to")],
        strict=False,
        name="po_cloud_mapping_raw",
        metadata={"frame_check_columns": {"valid_from_not_after_valid_to": ["valid_from", "valid_to"]}},
    )


def type_po_cloud_mapping(raw: pl.DataFrame) -> pl.DataFrame:
    """Typed mapping rules, `match_column` in its canonical spelling (`tag:` + the key as written)."""
    return raw.select(
        pl.col("po_number").str.strip_chars(),
        parsing.integer_expr("line_number").alias("line_number"),
        _match_column_expr("match_column").alias("match_column"),
        pl.col("match_value").str.strip_chars(),
        parsing.date_expr("valid_from").alias("valid_from"),
        parsing.date_expr("valid_to").alias("valid_to"),
    )


def _po_headers_default_schema() -> pa.DataFrameSchema:
    return po_headers_schema(status_map({}))


# Every ERP extract's schema by table name (`[erp] <name> = "path"`); the statuses a config maps change the
# checks of po_headers, never its columns.
SCHEMAS: dict[str, Callable[[], pa.DataFrameSchema]] = {
    "po_headers": _po_headers_default_schema,
    "po_lines": po_lines_schema,
    "fx_rates": fx_rates_schema,
    "invoices": invoices_schema,
    "goods_receipts": goods_receipts_schema,
    "commitments": commitments_schema,
    "po_cloud_mapping": po_cloud_mapping_schema,
}


def canonical_columns(table: str) -> list[str]:
    """The canonical column names of an ERP table (its schema's), which `erp.column_map` may map to."""
    if table not in SCHEMAS:
        raise KeyError(f"no ERP table {table!r}")
    return list(SCHEMAS[table]().columns)
