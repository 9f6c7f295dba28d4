"""Unit tests of the columnar parsers in `finrecon.models.parsing` (literal, hand-written expectations)."""

from __future__ import annotations

import json
from datetime import date, datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finrecon.models import parsing


def _apply(expr_for: object, values: list[str | None]) -> list[object]:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.Utf8})
    return frame.select(expr_for("v").alias("out")).get_column("out").to_list()  # type: ignore[operator]


# --- decimal_expr -------------------------------------------------------------------------------------------


def test_decimal_parses_plain_signed_padded_and_exponent_numbers() -> None:
    values = ["12.5", "-0.25", " 3 ", "+5", ".5", "1e3", "0", "0.000001"]
    assert _apply(parsing.decimal_expr, values) == [12.5, -0.25, 3.0, 5.0, 0.5, 1000.0, 0.0, 0.000001]


def test_decimal_result_is_float64() -> None:
    frame = pl.DataFrame({"v": ["1.25"]})
    assert frame.select(parsing.decimal_expr("v")).dtypes == [pl.Float64]


@pytest.mark.parametrize(
    "garbage",
    ["12,5x", "1,000", "abc", "", "   ", "inf", "-inf", "nan", "NaN", "0x10", "1.2.3", "$5", "5 USD"],
)
def test_decimal_garbage_and_non_finite_become_null(garbage: str) -> None:
    assert _apply(parsing.decimal_expr, [garbage]) == [None]


def test_decimal_null_stays_null() -> None:
    assert _apply(parsing.decimal_expr, [None, "2"]) == [None, 2.0]


# --- timestamp_expr -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-09-18 22:00:00", datetime(2024, 9, 18, 22, 0, 0)),
        ("2023-01-01T00:00:00Z", datetime(2023, 1, 1, 0, 0, 0)),
        ("2024-09-18T22:00:00", datetime(2024, 9, 18, 22, 0, 0)),
        ("2024-09-18T22:00:00.123456Z", datetime(2024, 9, 18, 22, 0, 0, 123456)),
        ("2024-09-18 22:00:00.5", datetime(2024, 9, 18, 22, 0, 0, 500000)),
        ("2024-09-18T22:00:00.123Z", datetime(2024, 9, 18, 22, 0, 0, 123000)),
        # offsets are converted to UTC
        ("2024-09-18T22:00:00+02:00", datetime(2024, 9, 18, 20, 0, 0)),
        ("2024-09-19T01:00:00+02:00", datetime(2024, 9, 18, 23, 0, 0)),
        ("2024-09-18 23:30:00-05:30", datetime(2024, 9, 19, 5, 0, 0)),
        ("2024-09-18T22:00:00.250+02:00", datetime(2024, 9, 18, 20, 0, 0, 250000)),
        # a bare date is midnight
        ("2024-09-18", datetime(2024, 9, 18, 0, 0, 0)),
        ("  2024-09-18  ", datetime(2024, 9, 18, 0, 0, 0)),
        ("2024-09-18 22:00", datetime(2024, 9, 18, 22, 0, 0)),
        ("2024-02-29T12:00:00Z", datetime(2024, 2, 29, 12, 0, 0)),
    ],
)
def test_timestamp_parses_to_naive_utc(text: str, expected: datetime) -> None:
    assert _apply(parsing.timestamp_expr, [text]) == [expected]


def test_timestamp_result_is_naive_microsecond_datetime() -> None:
    frame = pl.DataFrame({"v": ["2024-09-18T22:00:00+02:00"]})
    assert frame.select(parsing.timestamp_expr("v")).dtypes == [pl.Datetime("us", None)]


@pytest.mark.parametrize(
    "garbage",
    ["not-a-date", "", "2024-13-01", "2023-02-29", "2024-09-31T00:00:00Z", "18/09/2024", "yesterday", "12.5"],
)
def test_timestamp_garbage_becomes_null(garbage: str) -> None:
    assert _apply(parsing.timestamp_expr, [garbage]) == [None]


def test_timestamp_mixed_column_parses_row_by_row() -> None:
    values = ["2024-09-18 22:00:00", None, "not-a-date", "2024-09-18T22:00:00+02:00", "2024-09-01"]
    assert _apply(parsing.timestamp_expr, values) == [
        datetime(2024, 9, 18, 22),
        None,
        None,
        datetime(2024, 9, 18, 20),
        datetime(2024, 9, 1),
    ]


# --- date_expr ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-09-15", date(2024, 9, 15)),
        ("20240915", date(2024, 9, 15)),
        (" 20241231 ", date(2024, 12, 31)),
        ("2024-09-15T23:00:00Z", date(2024, 9, 15)),
        ("2024-09-15 08:30:00", date(2024, 9, 15)),
        ("2024-02-29", date(2024, 2, 29)),
    ],
)
def test_date_parses_iso_compact_and_timestamp_text(text: str, expected: date) -> None:
    assert _apply(parsing.date_expr, [text]) == [expected]


@pytest.mark.parametrize("garbage", ["15/09/2024", "2024-02-30", "20241301", "not-a-date", "", "2024-9"])
def test_date_garbage_becomes_null(garbage: str) -> None:
    assert _apply(parsing.date_expr, [garbage]) == [None]


def test_date_result_is_date_dtype() -> None:
    frame = pl.DataFrame({"v": ["20240915"]})
    assert frame.select(parsing.date_expr("v")).dtypes == [pl.Date]


# --- integer_expr and enum_expr -----------------------------------------------------------------------------


def test_integer_parses_integers_only() -> None:
    assert _apply(parsing.integer_expr, ["1", " 42 ", "-3", "1.5", "x", None]) == [
        1,
        42,
        -3,
        None,
        None,
        None,
    ]


def test_enum_matches_case_insensitively_to_canonical_spelling() -> None:
    values = ["usage", " PURCHASE ", "Usage", "bogus", None]
    frame = pl.DataFrame({"v": values}, schema={"v": pl.Utf8})
    out = frame.select(parsing.enum_expr("v", ["Usage", "Purchase"])).get_column("v").to_list()
    assert out == ["Usage", "Purchase", "Usage", None, None]


# --- canonical_tags / tags_expr -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"a": "b"}', {"a": "b"}),
        ('{ "po" : "PO-1001", "env": "prod" }', {"po": "PO-1001", "env": "prod"}),
        ('{"n": 1, "nested": {"x": true}}', {"n": 1, "nested": {"x": True}}),
        ('{"é": "ü"}', {"é": "ü"}),
        ("{}", {}),
        # Azure EA brace-less fragments
        ('"a": "b", "c": "d"', {"a": "b", "c": "d"}),
        ('"costcenter": "CC-9"', {"costcenter": "CC-9"}),
    ],
)
def test_canonical_tags_accepts_objects_and_braceless_fragments(
    raw: str, expected: dict[str, object]
) -> None:
    result = parsing.canonical_tags(raw)
    assert result is not None
    assert json.loads(result) == expected


def test_canonical_tags_keeps_objects_as_delivered_and_wraps_fragments() -> None:
    # a valid object is not re-serialised (parsing once per distinct value must stay cheap at scale)
    assert parsing.canonical_tags('{ "a" : "b",  "c": "d" }') == '{ "a" : "b",  "c": "d" }'
    assert parsing.canonical_tags('"a": "b", "c": "d"') == '{"a": "b", "c": "d"}'
    assert parsing.canonical_tags('{"é": "ü"}') == '{"é": "ü"}'
    assert parsing.canonical_tags('{"z": "1", "a": "2"}') == '{"z": "1", "a": "2"}'


@pytest.mark.parametrize(
    "raw",
    [
        "[1, 2]",
        '["a", "b"]',
        '"just a string"',
        "42",
        "null",
        "true",
        "{bad",
        "not json",
        '{"a": }',
        "{'a': 'b'}",
    ],
)
def test_canonical_tags_non_objects_and_invalid_json_are_none(raw: str) -> None:
    assert parsing.canonical_tags(raw) is None


def test_tags_expr_maps_each_value_and_nulls_invalid_ones() -> None:
    values = pl.Series("Tags", ['{"po": "PO-1"}', '"a": "b"', "{bad", None, '{"po": "PO-1"}', "[1]"])
    frame = values.to_frame()
    out = frame.select(parsing.tags_expr("Tags", values)).get_column("Tags").to_list()
    assert out == ['{"po": "PO-1"}', '{"a": "b"}', None, None, '{"po": "PO-1"}', None]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # one format per column: the fast path
        (
            ["2024-09-18 22:00:00", None, "2024-09-19 01:30:00"],
            [(2024, 9, 18, 22, 0), None, (2024, 9, 19, 1, 30)],
        ),
        (["2023-01-01T00:00:00Z", "2023-01-01T01:00:00Z"], [(2023, 1, 1, 0, 0), (2023, 1, 1, 1, 0)]),
        # a mixed column, an offset and garbage: every value gets every format
        (
            ["2024-09-18 22:00:00", "2024-09-01T02:00:00+02:00", "2024-09-02", "not-a-date"],
            [(2024, 9, 18, 22, 0), (2024, 9, 1, 0, 0), (2024, 9, 2, 0, 0), None],
        ),
        ([None, None], [None, None]),
    ],
)
def test_parse_timestamps_agrees_with_the_per_value_parser(values: list[str | None], expected: list) -> None:  # type: ignore[type-arg]
    series = pl.Series("ts", values, dtype=pl.Utf8)
    parsed = parsing.parse_timestamps(series)
    got = [None if v is None else (v.year, v.month, v.day, v.hour, v.minute) for v in parsed.to_list()]
    assert got == expected
    reference = series.to_frame().select(parsing.timestamp_expr("ts")).to_series()
    assert parsed.to_list() == reference.to_list()


_TAG_TEXT = st.one_of(
    st.text(max_size=40),
    st.dictionaries(
        st.text(max_size=6), st.one_of(st.text(max_size=6), st.integers(), st.none()), max_size=4
    ).map(json.dumps),
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "é", ""]), st.sampled_from(['"x"', '"y[1]"', "NaN", "1", '"\\u00e9"'])
        ),
        max_size=4,
    ).map(lambda pairs: "{" + ", ".join(f'"{k}": {v}' for k, v in pairs) + st_trailing(pairs) + "}"),
)


def st_trailing(pairs: list[tuple[str, str]]) -> str:
    """A trailing comma on some objects (not JSON; DuckDB would read it)."""
    return "," if len(pairs) == 3 else ""


@settings(max_examples=300, deadline=None)
@given(st.lists(_TAG_TEXT, max_size=12))
def test_bulk_tags_verdicts_agree_with_the_per_value_parser(texts: list[str]) -> None:
    """The bulk path (flat string objects accepted in one pass) decides every value as `tags_verdict` does."""
    rewritten, failed = parsing.tags_verdicts(pl.Series(texts, dtype=pl.Utf8))
    for text in texts:
        canonical, check = parsing.tags_verdict(text)
        if check is None:
            assert text not in failed and rewritten.get(text, text) == canonical
        else:
            assert failed.get(text) == check
