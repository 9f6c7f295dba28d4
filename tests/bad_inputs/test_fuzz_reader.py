"""Hypothesis property tests of the FOCUS reader and validator, through the function landing calls
(`validate_focus_file`: read, prepare, check, split, keep the books), without the flow, so that many files run.

Two properties:

- well-formed CSV, random content: every cell is drawn either from values that must pass or from values that
  must fail (tagged as drawn), with random quoting, line ends, BOM and gzip. The quarantined rows are exactly
  the rows with a failing cell, and the books equal the sums of the drawn numbers, an oracle independent of the
  pipeline's parser.
- anything: random delimiters, repeated or missing columns, truncation, stray bytes, other encodings. The file
  either fails with a message naming it, or lands; either way rows and both costs read = loaded + quarantined.
  Nothing else may escape (a crash here is a night lost in production).

Deterministic in CI (`derandomize=True`), a few seconds each.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finrecon.warehouse.landing import Books, FileLanding, Validated, validate_focus_file

FUZZ = settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

COLUMNS = [
    "BillingAccountId",
    "BillingCurrency",
    "BilledCost",
    "EffectiveCost",
    "ChargeCategory",
    "ChargePeriodStart",
    "ProviderName",
    "Tags",
]


@dataclass(frozen=True)
class Cell:
    """A drawn value as written, whether it must pass, and the number it stands for (costs that pass)."""

    text: str
    ok: bool
    number: float = 0.0


def _pass(text: str, number: float = 0.0) -> Cell:
    return Cell(text, True, number)


def _fail(text: str) -> Cell:
    return Cell(text, False)


def _junk() -> st.SearchStrategy[str]:
    """Text that no parser may take: it starts with a letter no number, date, code or JSON starts with."""
    return st.text(max_size=12).map(lambda s: "q" + s)


@st.composite
def cost_cell(draw: st.DrawFn) -> Cell:
    if draw(st.integers(0, 3)):
        number = draw(st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False))
        text = draw(
            st.sampled_from(
                [
                    f"{number:.2f}",
                    f"{number:.6f}",
                    repr(number),
                    f" {number:.4f} ",
                    f"{number:.3e}",
                    f"{number:+.1f}",
                ]
            )
        )
        return _pass(text, float(text))
    return _fail(
        draw(
            st.one_of(
                _junk(),
                st.sampled_from(
                    ["NaN", "nan", "inf", "-Infinity", "1e309", "-1e999", "1,000.00", "12,5", "", "$3"]
                ),
                st.just("9" * 400),  # a finite-looking value beyond any double: inf, so not a number
            )
        )
    )


DATE_FORMATS = [
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S.%fZ",
    "%Y-%m-%dT%H:%M:%S+02:00",
]


@st.composite
def date_cell(draw: st.DrawFn) -> Cell:
    if draw(st.integers(0, 2)):
        moment = draw(st.datetimes(datetime(2000, 1, 1), datetime(2025, 12, 31)))
        return _pass(moment.strftime(draw(st.sampled_from(DATE_FORMATS))))
    bad = [
        "09/05/2024",
        "2024-13-05",
        "2024-02-30",
        "2024-09-05T25:00:00Z",
        "2099-01-01T00:00:00Z",
        "9999-12-31",
        "",
    ]
    return _fail(draw(st.one_of(_junk(), st.sampled_from(bad))))


@st.composite
def currency_cell(draw: st.DrawFn) -> Cell:
    if draw(st.integers(0, 3)):
        code = draw(st.sampled_from(["USD", "EUR", "JPY", "GBP", "CHF", "INR"]))
        return _pass(draw(st.sampled_from([code, code.lower(), f" {code} "])))
    return _fail(draw(st.one_of(_junk(), st.sampled_from(["US$", "EURO", "XXQ", "€", ""]))))


@st.composite
def category_cell(draw: st.DrawFn) -> Cell:
    if draw(st.integers(0, 4)):
        word = draw(st.sampled_from(["Usage", "Purchase", "Tax", "Credit", "Adjustment"]))
        return _pass(draw(st.sampled_from([word, word.upper(), word.lower()])))
    return _fail(draw(_junk()))


@st.composite
def tags_cell(draw: st.DrawFn) -> Cell:
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return _pass("")  # no tags
    if choice < 4:
        tags = draw(st.dictionaries(st.text(max_size=8), st.text(max_size=16), max_size=4))
        return _pass(json.dumps(tags, ensure_ascii=draw(st.booleans())))
    bad = [
        '{"a": "1", "a": "2"}',
        '{"po": NaN}',
        '{"po": "\\ud800"}',
        "[1, 2]",
        '"po"',
        "{'po': 1}",
        '{"po": 1',
        "null",
    ]
    return _fail(draw(st.one_of(_junk(), st.sampled_from(bad))))


def text_cell() -> st.SearchStrategy[Cell]:
    """A free-text required value: anything non-empty passes (quotes, delimiters, line breaks, any script)."""
    return st.text(min_size=1, max_size=20).map(_pass)


ROW = st.fixed_dictionaries(
    {
        "BillingAccountId": text_cell(),
        "BillingCurrency": currency_cell(),
        "BilledCost": cost_cell(),
        "EffectiveCost": cost_cell(),
        "ChargeCategory": category_cell(),
        "ChargePeriodStart": date_cell(),
        "ProviderName": text_cell(),
        "Tags": tags_cell(),
    }
)


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    return path


def _csv_bytes(rows: list[list[str]], delimiter: str, quoting: int, line_end: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator=line_end)
    writer.writerows(rows)
    return buffer.getvalue()


def _validate(path: Path, chunk_rows: int = 250_000) -> Validated | FileLanding:
    return validate_focus_file(
        path,
        chunk_rows=chunk_rows,
        source="fuzz",
        relative_path=path.name,
        null_values=[],
        max_failure_ratio=1.0,
        keep_row_numbers=True,
    )


def _assert_balanced(books: Books) -> None:
    assert books.rows_read == books.rows_loaded + books.rows_quarantined
    for read, loaded, quarantined in (
        (books.billed_read, books.billed_loaded, books.billed_quarantined),
        (books.effective_read, books.effective_loaded, books.effective_quarantined),
    ):
        assert math.isfinite(read)
        assert read == pytest.approx(loaded + quarantined, rel=1e-9, abs=1e-6)


@FUZZ
@given(
    rows=st.lists(ROW, max_size=12),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    line_end=st.sampled_from(["\n", "\r\n"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig"]),
    name=st.sampled_from(["fuzz.csv", "fuzz.csv.gz"]),
    chunk_rows=st.sampled_from([1, 2, 5, 250_000]),  # chunks cut between (quoted, multi-line) records
)
def test_well_formed_files_quarantine_exactly_the_bad_rows_and_book_the_drawn_costs(
    rows: list[dict[str, Cell]], quoting: int, line_end: str, encoding: str, name: str, chunk_rows: int
) -> None:
    table = [COLUMNS, *[[row[c].text for c in COLUMNS] for row in rows]]
    with TemporaryDirectory() as folder:
        path = _write(Path(folder), name, _csv_bytes(table, ",", quoting, line_end).encode(encoding))
        result = _validate(path, chunk_rows)
    assert isinstance(result, Validated), getattr(result, "error", None)
    bad = {i for i, row in enumerate(rows, start=1) if not all(cell.ok for cell in row.values())}
    quarantined = set(result.failures.get_column("row_number").to_list())
    assert quarantined == bad
    assert result.valid_rows.to_list() == [i for i in range(1, len(rows) + 1) if i not in bad]
    books = result.books
    assert (books.rows_read, books.rows_loaded, books.rows_quarantined) == (
        len(rows),
        len(rows) - len(bad),
        len(bad),
    )
    for column, read, loaded in (
        ("BilledCost", books.billed_read, books.billed_loaded),
        ("EffectiveCost", books.effective_read, books.effective_loaded),
    ):
        drawn = [row[column].number for row in rows]
        kept = [row[column].number for i, row in enumerate(rows, start=1) if i not in bad]
        assert read == pytest.approx(math.fsum(drawn), rel=1e-9, abs=1e-6)
        assert loaded == pytest.approx(math.fsum(kept), rel=1e-9, abs=1e-6)
    _assert_balanced(books)


@st.composite
def chaotic_file(draw: st.DrawFn) -> tuple[str, bytes]:
    """A CSV as something upstream might really send: any delimiter, columns missing or twice, cut short,
    bytes flipped or in another encoding."""
    columns = draw(
        st.lists(st.sampled_from([*COLUMNS, "ResourceId", "x_source_row", "billedcost"]), max_size=10)
    )
    if draw(st.booleans()):
        columns = list(dict.fromkeys(COLUMNS + columns))
    rows = draw(st.lists(ROW, max_size=6))
    body = [[row[c].text if c in row else draw(st.text(max_size=6)) for c in columns] for row in rows]
    delimiter = draw(st.sampled_from([",", ",", ";", "\t", "|"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    text = _csv_bytes([columns, *body], delimiter, quoting, draw(st.sampled_from(["\n", "\r\n", "\r"])))
    data = text.encode(
        draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"])), errors="replace"
    )
    mutation = draw(st.sampled_from(["none", "truncate", "insert", "flip"]))
    if mutation == "truncate" and data:
        data = data[: draw(st.integers(0, len(data)))]
    elif mutation == "insert":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
    elif mutation == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    name = draw(st.sampled_from(["chaos.csv", "chaos.csv.gz"]))
    return name, data


@settings(FUZZ, max_examples=400)  # cheap: most of these fail fast
@given(chaotic_file(), st.booleans())
def test_any_file_fails_naming_itself_or_lands_and_the_books_always_balance(
    delivered: tuple[str, bytes], cut_gzip: bool
) -> None:
    name, data = delivered
    with TemporaryDirectory() as folder:
        path = _write(Path(folder), name, data)
        if cut_gzip and name.endswith(".gz"):
            whole = path.read_bytes()
            path.write_bytes(whole[: len(whole) * 2 // 3])
        result = _validate(path)  # any exception but these two outcomes fails the test
    if isinstance(result, FileLanding):
        assert result.status == "failed"
        assert result.error is not None and result.error.startswith(f"{name}: ")
        assert result.books.rows_loaded == 0
        _assert_balanced(result.books)
    else:
        assert isinstance(result, Validated)
        assert result.valid_rows.len() == result.books.rows_loaded
        assert result.valid_rows.n_unique() == result.valid_rows.len()  # no row loaded twice across chunks
        _assert_balanced(result.books)


@settings(FUZZ, max_examples=100)
@given(st.data())
def test_parquet_costs_of_any_double_balance(data: st.DataObject) -> None:
    """Native doubles (NaN, ±inf, huge, NULL) in a typed Parquet file: loaded + quarantined = read, and exactly
    the missing, non-finite or absurd (beyond ±1e15) costs are quarantined."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = data.draw(st.integers(0, 8))
    billed = data.draw(
        st.lists(
            st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e6, 1e6), st.none()),
            min_size=n,
            max_size=n,
        )
    )
    table = pa.table(
        {
            "BillingAccountId": ["1"] * n,
            "BillingCurrency": ["USD"] * n,
            "BilledCost": pa.array(billed, pa.float64()),
            "EffectiveCost": pa.array([1.0] * n, pa.float64()),
            "ChargeCategory": ["Usage"] * n,
            "ChargePeriodStart": pa.array([datetime(2024, 9, 1)] * n, pa.timestamp("us")),
            "ProviderName": ["AWS"] * n,
        }
    )
    with TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.parquet"
        pq.write_table(table, path)
        result = _validate(path)
    assert isinstance(result, Validated)
    finite = [v for v in billed if v is not None and math.isfinite(v) and abs(v) <= 1e15]
    bad = {i for i, v in enumerate(billed, start=1) if v is None or not math.isfinite(v) or abs(v) > 1e15}
    assert set(result.failures.get_column("row_number").to_list()) == bad
    assert result.books.billed_read == pytest.approx(math.fsum(finite), rel=1e-9, abs=1e-6)
    _assert_balanced(result.books)
