"""Columnar parsers shared by validation (does it parse?) and typing (parse it): one definition of each rule.

Every parser maps a string column to a typed column, NULL where the text does not parse; validation flags a
value that is non-NULL before and NULL after. No per-row Python except for Tags, which is parsed once per
distinct value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import duckdb
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


# Why a Tags text is refused: the check names a quarantine record carries.
TAGS_NOT_AN_OBJECT = "is_json_object"
TAGS_DUPLICATE_KEY = "has_unique_keys"


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """An object hook refusing a repeated key: which value counts would be a guess (DuckDB reads no map)."""
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _DuplicateKeyError(keys)
    return dict(pairs)


def _refuse_constant(name: str) -> object:
    """NaN and Infinity are not JSON (RFC 8259), though Python reads them."""
    raise ValueError(f"{name} is not JSON")


def _tags_verdict(candidate: str) -> tuple[str | None, str | None]:
    """(canonical text, None) for a JSON object every reader agrees on, else (None, the check it fails)."""
    try:
        parsed = json.loads(candidate, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
        # An unpaired surrogate escape ("\ud800") parses here but is not Unicode text: no UTF-8 reader takes it.
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except _DuplicateKeyError:
        return None, TAGS_DUPLICATE_KEY
    except (ValueError, RecursionError, UnicodeError):
        return None, TAGS_NOT_AN_OBJECT
    return (candidate, None) if isinstance(parsed, dict) else (None, TAGS_NOT_AN_OBJECT)


def tags_verdict(raw: str) -> tuple[str | None, str | None]:
    """One Tags text as (JSON object text, None), or (None, the check it fails).

    A JSON object is kept exactly as delivered; the brace-less fragments Azure EA exports write
    (`"a": "b", "c": "d"`) are wrapped in braces. Refused: anything but an object, a repeated key, an unpaired
    surrogate, nesting deeper than Python parses.
    """
    canonical, failed = _tags_verdict(raw)
    if failed == TAGS_NOT_AN_OBJECT:
        wrapped, wrapped_failed = _tags_verdict("{" + raw + "}")
        if wrapped_failed != TAGS_NOT_AN_OBJECT:
            return wrapped, wrapped_failed
    return canonical, failed


def canonical_tags(raw: str) -> str | None:
    """One Tags text as a JSON object text, or None when it is not one (see `tags_verdict`)."""
    return tags_verdict(raw)[0]


def _unreadable_by_duckdb(texts: list[str]) -> set[str]:
    """Of JSON object texts Python accepts, the ones DuckDB (which the models parse Tags with) reads as no map.

    A belt to the braces above: a value that passed landing but broke `tags_map` would fail the whole night.
    """
    if not texts:
        return set()
    con = duckdb.connect()
    try:
        rows = con.execute(
            "select t from unnest(?::varchar[]) as u(t) "
            "where not coalesce(json_valid(t), false) "
            "or try(json_transform(t, '\"MAP(VARCHAR, VARCHAR)\"')) is null",
            [texts],
        ).fetchall()
    finally:
        con.close()
    return {row[0] for row in rows}


# A flat JSON object of plain strings (no escapes, no control characters): the shape of nearly every Tags value,
# which Python's parser accepts exactly when its keys are unique, and DuckDB reads as a map.
_JSON_SPACE = r"[ \t\n\r]*"
_PLAIN_STRING = r'"[^"\\\x00-\x1f]*"'
_PAIR = f"{_JSON_SPACE}{_PLAIN_STRING}{_JSON_SPACE}:{_JSON_SPACE}{_PLAIN_STRING}{_JSON_SPACE}"
FLAT_STRING_OBJECT = f"^{_JSON_SPACE}\\{{(?:{_PAIR}(?:,{_PAIR})*|{_JSON_SPACE})\\}}{_JSON_SPACE}$"


def _flat_objects_with_unique_keys(texts: pl.Series) -> set[str]:
    """Of distinct texts, those that are flat objects of plain strings with unique keys: accepted as delivered
    without a per-value parse (one columnar match and one DuckDB pass)."""
    flat = texts.filter(texts.str.contains(FLAT_STRING_OBJECT))
    if flat.is_empty():
        return set()
    con = duckdb.connect()
    try:
        con.register("flat_tags", flat.rename("t").to_frame().to_arrow())
        rows = con.execute(
            "select t from flat_tags where len(json_keys(t)) = len(list_distinct(json_keys(t)))"
        ).fetchall()
    finally:
        con.close()
    return {row[0] for row in rows}


def tags_verdicts(values: pl.Series) -> tuple[dict[str, str], dict[str, str]]:
    """For the distinct Tags texts of `values`: {raw: canonical} for those rewritten, {raw: failed check}.

    Flat objects of plain strings with unique keys are accepted as they are, in bulk; every other text is parsed
    on its own (`tags_verdict`).
    """
    failed: dict[str, str] = {}
    rewritten: dict[str, str] = {}
    accepted: dict[str, str] = {}
    distinct = values.drop_nulls().unique()
    plain = _flat_objects_with_unique_keys(distinct)
    for raw in distinct.filter(~distinct.is_in(list(plain))).to_list() if plain else distinct.to_list():
        canonical, check = tags_verdict(raw)
        if canonical is None:
            failed[raw] = check or TAGS_NOT_AN_OBJECT
        else:
            accepted[raw] = canonical
    for raw, canonical in accepted.items():
        if canonical != raw:
            rewritten[raw] = canonical
    unreadable = _unreadable_by_duckdb(sorted(set(accepted.values())))
    for raw, canonical in accepted.items():
        if canonical in unreadable:
            failed[raw] = TAGS_NOT_AN_OBJECT
            rewritten.pop(raw, None)
    return rewritten, failed


def tags_exprs(column: str, values: pl.Series) -> tuple[pl.Expr, pl.Expr]:
    """Tags as JSON object text (NULL when invalid) and the check each invalid value fails (NULL when valid).

    Parsed once per distinct value in `values`.
    """
    rewritten, failed = tags_verdicts(values)
    text = pl.col(column).cast(pl.Utf8)
    typed = text.replace(rewritten) if rewritten else text
    if not failed:
        return typed.alias(column), pl.lit(None, dtype=pl.Utf8)
    typed = pl.when(text.is_in(list(failed))).then(None).otherwise(typed)
    return typed.alias(column), text.replace_strict(failed, default=None, return_dtype=pl.Utf8)


def tags_expr(column: str, values: pl.Series) -> pl.Expr:
    """Tags as JSON object text (parsed once per distinct value in `values`); NULL when invalid."""
    return tags_exprs(column, values)[0]
