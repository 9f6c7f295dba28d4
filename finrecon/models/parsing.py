"""Columnar parsers shared by validation (does it parse?) and typing (parse it): one definition of each rule.

Every parser maps a string column to a typed column, NULL where the text does not parse; validation flags a
value that is non-NULL before and NULL after. No per-row Python except for Tags, which is parsed once per
distinct value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import polars as pl

_TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d")


def decimal_expr(column: str) -> pl.Expr:
    """Text to Float64; NULL for text that is not a finite number."""
    value = pl.col(column).str.strip_chars().cast(pl.Float64, strict=False)
    return pl.when(value.is_finite()).then(value).otherwise(None)


def timestamp_expr(column: str) -> pl.Expr:
    """ISO-8601-like text (space or T, optional fraction, Z or offset, or a bare date) to naive UTC."""
    text = pl.col(column).str.strip_chars().str.replace("T", " ").str.replace(r"Z$", "")
    parsed = [
        text.str.to_datetime(fmt, strict=False, time_zone="UTC", time_unit="us") for fmt in _TIMESTAMP_FORMATS
    ]
    return pl.coalesce(parsed).dt.replace_time_zone(None)


# Formats tried on a column's first value; when one fits every value, the column is parsed once with it.
_FAST_TIMESTAMP_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%.fZ",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
)


def parse_timestamps(values: pl.Series) -> pl.Series:
    """`timestamp_expr` for a whole column, ten times faster in the usual case of one format per file.

    The format is guessed from the first value; if it fits every value the column is parsed once with it,
    otherwise every value gets the full set of formats (so a mixed column is never misread).
    """
    text = values.str.strip_chars()
    sample = text.drop_nulls().head(1)
    for fmt in _FAST_TIMESTAMP_FORMATS if sample.len() else ():
        if sample.str.to_datetime(fmt, strict=False, time_unit="us").is_not_null().all():
            parsed = text.str.to_datetime(fmt, strict=False, time_unit="us")
            if not (parsed.is_null() & text.is_not_null()).any():
                return parsed.alias(values.name)
            break
    return values.to_frame().select(timestamp_expr(values.name)).to_series()


def date_expr(column: str) -> pl.Expr:
    """ISO date (or compact YYYYMMDD, as SAP writes it; or a timestamp, whose date part is taken) to Date."""
    text = pl.col(column).str.strip_chars()
    parsed = [text.str.to_date(fmt, strict=False) for fmt in _DATE_FORMATS]
    return pl.coalesce([*parsed, timestamp_expr(column).dt.date()])


def integer_expr(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars().cast(pl.Int64, strict=False)


def enum_expr(column: str, allowed: Iterable[str]) -> pl.Expr:
    """Canonical spelling of an enumerated value matched case-insensitively; NULL when unknown."""
    canonical = {value.lower(): value for value in allowed}
    return pl.col(column).str.strip_chars().str.to_lowercase().replace_strict(canonical, default=None)


def canonical_tags(raw: str) -> str | None:
    """One Tags text as a JSON object text, or None when it is not one.

    A JSON object is kept exactly as delivered; the brace-less fragments Azure EA exports write
    (`"a": "b", "c": "d"`) are wrapped in braces.
    """
    for candidate in (raw, "{" + raw + "}"):
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        return candidate if isinstance(parsed, dict) else None
    return None


def tags_expr(column: str, values: pl.Series) -> pl.Expr:
    """Tags as JSON object text (parsed once per distinct value in `values`); NULL when invalid."""
    invalid, rewritten = [], {}
    for raw in values.drop_nulls().unique().to_list():
        canonical = canonical_tags(raw)
        if canonical is None:
            invalid.append(raw)
        elif canonical != raw:
            rewritten[raw] = canonical
    expr = pl.col(column).cast(pl.Utf8)
    if rewritten:
        expr = expr.replace(rewritten)
    if invalid:
        expr = pl.when(pl.col(column).is_in(invalid)).then(None).otherwise(expr)
    return expr.alias(column)
