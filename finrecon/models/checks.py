"""Reusable Pandera checks (polars backend) over raw text columns, for the ERP extracts (charge checks compare
with typed siblings instead: models/charges.py).

Checks run on the text as delivered, so a failure case carries the raw value into quarantine. NULL always
passes here; nullability is the column's own `nullable` setting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from finrecon.models import parsing
from finrecon.models.currencies import ISO_4217


def _parses(name: str, parser: Callable[[str], pl.Expr]) -> pa.Check:
    def check(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).is_null() | parser(data.key).is_not_null())

    return pa.Check(check, name=name)


def is_decimal() -> pa.Check:
    return _parses("is_decimal", parsing.decimal_expr)


def is_date() -> pa.Check:
    return _parses("is_date", parsing.date_expr)


def is_integer() -> pa.Check:
    return _parses("is_integer", parsing.integer_expr)


def is_iso_currency() -> pa.Check:
    def check(data: PolarsData) -> pl.LazyFrame:
        code = pl.col(data.key).str.strip_chars().str.to_uppercase()
        return data.lazyframe.select(pl.col(data.key).is_null() | code.is_in(sorted(ISO_4217)))

    return pa.Check(check, name="is_iso4217_currency")


def is_one_of(allowed: Iterable[str], name: str) -> pa.Check:
    values = list(allowed)
    return _parses(name, lambda column: parsing.enum_expr(column, values))


def at_least(bound: float, name: str) -> pa.Check:
    def check(data: PolarsData) -> pl.LazyFrame:
        value = parsing.decimal_expr(data.key)
        return data.lazyframe.select(value.is_null() | (value >= bound))

    return pa.Check(check, name=name)


def above(bound: float, name: str) -> pa.Check:
    def check(data: PolarsData) -> pl.LazyFrame:
        value = parsing.decimal_expr(data.key)
        return data.lazyframe.select(value.is_null() | (value > bound))

    return pa.Check(check, name=name)
