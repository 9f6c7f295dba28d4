"""The CSV reader against the header's field count (issue 17, items 2-4): each record is one row of the header's
columns, or a row without values carrying its fault (its line and field count); blank lines are no rows.

Files are written byte for byte here; every expected row number, line number and field count is worked out by
hand from those bytes (lines count from 1 at the header, rows from 1 at the first record after it).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from finrecon.connectors._csv_records import FieldCounts, split_records
from finrecon.connectors._files import iter_delivered, read_delivered
from finrecon.models.quarantine import FAULT_COLUMN, ROW_COLUMN, FileLevelError

NULLS = [""]


def rows(path: Path, chunk_rows: int | None = None) -> list[tuple[object, ...]]:
    """(row number, a, b, c, fault) for every row the reader gives, read whole or in chunks of `chunk_rows`."""
    if chunk_rows is None:
        frame = read_delivered(path, NULLS)
    else:
        frame = pl.concat(iter_delivered(path, NULLS, chunk_rows))
    return list(frame.select(ROW_COLUMN, "a", "b", "c", FAULT_COLUMN).iter_rows())


def write(tmp_path: Path, data: bytes, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_quoted_value_holding_commas_and_newlines_stays_one_record_and_later_lines_count_it(
    tmp_path: Path,
) -> None:
    # line 1 header; lines 2-4 one record (two newlines inside quotes); line 5 short; line 6 whole
    data = b'a,b,c\n1,"x, y\nz,\n""w""",3\n4,5\n6,7,8\n'
    assert rows(write(tmp_path, data)) == [
        (1, "1", 'x, y\nz,\n"w"', "3", None),
        (2, None, None, None, "line 5 has 2 of 3 fields: the record is cut short or lacks separators"),
        (3, "6", "7", "8", None),
    ]


def test_crlf_line_ends_and_blank_crlf_lines(tmp_path: Path) -> None:
    data = b"a,b,c\r\n1,2,3\r\n\r\n4,5,6\r\n\r\n"
    assert rows(write(tmp_path, data)) == [(1, "1", "2", "3", None), (2, "4", "5", "6", None)]


def test_a_complete_last_record_without_a_newline_loads(tmp_path: Path) -> None:
    assert rows(write(tmp_path, b"a,b,c\n1,2,3\n4,5,6")) == [
        (1, "1", "2", "3", None),
        (2, "4", "5", "6", None),
    ]


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_name(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbfa,b,c\n1,2,3\n4,5\n")
    assert rows(path) == [
        (1, "1", "2", "3", None),
        (2, None, None, None, "line 3 has 2 of 3 fields: the record is cut short or lacks separators"),
    ]


def test_blank_lines_are_not_rows_wherever_they_are(tmp_path: Path) -> None:
    data = b"a,b,c\n\n1,2,3\n\n\n4,5,6\n\n\n\n"
    assert rows(write(tmp_path, data)) == [(1, "1", "2", "3", None), (2, "4", "5", "6", None)]


def test_a_record_with_one_field_too_many_is_a_fault_and_the_rest_load(tmp_path: Path) -> None:
    data = b"a,b,c\n1,2,3\nCompute, Storage,5,6\n7,8,9\n"
    assert rows(write(tmp_path, data)) == [
        (1, "1", "2", "3", None),
        (2, None, None, None, "line 3 has 4 of 3 fields: quote values that contain commas"),
        (3, "7", "8", "9", None),
    ]


# a cut after several chunks, as a last chunk of its own: polars refuses the first tail and reads the second as whole
@pytest.mark.parametrize("tail", [b'"{""po"": ""PO', b'"{'])
@pytest.mark.parametrize("chunk_rows", [None, 1])
def test_a_last_record_cut_inside_a_quoted_value(tmp_path: Path, tail: bytes, chunk_rows: int | None) -> None:
    data = b"a,b,c\n1,2,3\n4,5," + tail
    assert rows(write(tmp_path, data), chunk_rows) == [
        (1, "1", "2", "3", None),
        (
            2,
            None,
            None,
            None,
            "line 3 has 3 of 3 fields and ends inside a quoted value: the file is cut short",
        ),
    ]


def test_faults_in_later_chunks_keep_file_line_and_row_numbers(tmp_path: Path) -> None:
    # chunks of about 2 rows: the faults and blank lines fall in several chunks
    data = b"a,b,c\n1,2,3\n4,5,6\n\n7,8\n9,10,11\n12,13,14,15\n\n16,17,18\n19\n"
    path = write(tmp_path, gzip.compress(data), "f.csv.gz")
    expected = [
        (1, "1", "2", "3", None),
        (2, "4", "5", "6", None),
        (3, None, None, None, "line 5 has 2 of 3 fields: the record is cut short or lacks separators"),
        (4, "9", "10", "11", None),
        (5, None, None, None, "line 7 has 4 of 3 fields: quote values that contain commas"),
        (6, "16", "17", "18", None),
        (7, None, None, None, "line 10 has 1 of 3 fields: the record is cut short or lacks separators"),
    ]
    assert rows(path, chunk_rows=2) == expected
    assert rows(path) == expected


def test_a_quote_never_closed_over_several_lines_fails_the_file_naming_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, b'a,b,c\n1,2,3\n4,5" screen,6\n7,8,9\n')
    with pytest.raises(FileLevelError) as caught:
        read_delivered(path, NULLS)
    assert caught.value.message == (
        "f.csv: cannot be read: not well-formed CSV: line 3 opens a quoted value that is never closed "
        "(2 lines to the end of the file): a stray '\"' in a value, or the file is cut short"
    )


def test_a_delivered_column_named_like_the_fault_column_fails_the_file_and_its_rows_are_counted(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, f"a,{FAULT_COLUMN},c\n1,2,3\n4,5,6\n".encode())
    with pytest.raises(FileLevelError) as caught:
        list(iter_delivered(path, NULLS))
    assert caught.value.check == "not_reserved_column"
    chunks = caught.value.row_chunks()
    assert chunks is not None
    assert sum(chunk.height for chunk in chunks) == 2


def test_split_records_counts_fields_outside_quotes_only() -> None:
    block = b'1,"a,""b"",\nc",2\n\n3\r\n4,"5'
    shapes = [(r.newlines_before, r.lines, r.fields, r.unterminated) for r in split_records(block)]
    # 3 fields over 2 lines; a blank line; 1 field (CRLF); 2 fields, the last quoted value never closed
    assert shapes == [(0, 2, 3, False), (2, 1, 1, False), (3, 1, 1, False), (4, 1, 2, True)]
    assert [r.is_blank(block) for r in split_records(block)] == [False, True, False, False]


def test_field_counts_take_an_empty_last_value_for_a_whole_record_and_see_a_short_one() -> None:
    header = b"a,b,c\n"
    whole = b'1,"x,y",\n2,3,4\n'  # the first record's last value is empty: 3 fields, one comma in a value
    short = b'1,"x,y"\n2,3,4\n'  # the first record has 2 fields
    for body, expected in ((whole, True), (short, False)):
        frame = pl.read_csv(header + body, infer_schema=False)
        assert frame.get_column("c").null_count() == 1  # polars gives both the same NULL
        assert FieldCounts().all_match(frame, body) is expected


def test_a_file_that_is_not_utf8_counts_its_records_the_same_way(tmp_path: Path) -> None:
    # row 1 has a Latin-1 byte; a blank line; row 2 is cut short: the books count 2 rows, the cut one's cost unknown
    path = write(tmp_path, b"a,BilledCost,c\n1,2.5,caf\xe9\n\n4,5.0\n")
    with pytest.raises(FileLevelError) as caught:
        read_delivered(path, NULLS)
    assert caught.value.message.startswith("f.csv: not UTF-8 text at line 2 (byte 0xE9), column 'c'")
    chunks = caught.value.row_chunks()
    assert chunks is not None
    counted = pl.concat(list(chunks))
    assert counted.select(ROW_COLUMN, "BilledCost").rows() == [(1, "2.5"), (2, None)]
