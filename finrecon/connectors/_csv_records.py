"""CSV records against the header: blank lines dropped, a record with another field count kept as a fault.

polars refuses a chunk with one record too long and silently fills a short one (or a blank line) with NULLs, so a
row cut off at the end of a file would load with its last values missing. `FieldCounts` tells, cheaply, that
every record of a parsed chunk is whole; only a chunk that fails it is split record by record here
(quote parity, as `_files._csv_blocks` cuts blocks) so that its blank lines are dropped and each misshapen record
becomes a row without values carrying its fault, for landing to quarantine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import polars as pl

from finrecon.models.quarantine import FAULT_COLUMN


class Record(NamedTuple):
    """One record of a block: its bytes `[start, end)` (newline included), the newlines before it in the block,
    how many lines it spans, its field count and whether it ends inside an open quoted value."""

    start: int
    end: int
    newlines_before: int
    lines: int
    fields: int
    unterminated: bool

    def is_blank(self, block: bytes) -> bool:
        """An empty line (LF or CRLF): no record at all, so no row (polars would give a row of NULLs)."""
        return self.lines == 1 and block[self.start : self.end].rstrip(b"\n") in (b"", b"\r")


def split_records(block: bytes) -> list[Record]:
    """The records of `block` (which starts at a record boundary): a record ends at a newline outside quotes
    (an even count of `"` before it); separators count only outside quotes. The last may lack its newline."""
    records: list[Record] = []
    pieces = block.split(b"\n")
    start = position = newlines = taken = 0
    fields, quoted = 1, False
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        segments = piece.split(b'"')
        # segments alternate outside and inside quotes, beginning inside when a quoted value spans lines
        fields += sum(segment.count(b",") for segment in segments[int(quoted) :: 2])
        quoted ^= len(segments) % 2 == 0
        position += len(piece) + (0 if last else 1)
        taken += 1
        if quoted and not last:
            continue  # the newline is inside a quoted value
        if position == start:
            break  # nothing after the final newline
        lines = taken - (1 if last and not piece else 0)
        records.append(Record(start, position, newlines, lines, fields, quoted))
        newlines += taken - (1 if last else 0)
        start, fields, taken = position, 1, 0
    return records


class FieldCounts:
    """Tells, per parsed chunk of one file, whether every record has the header's field count; cheaply.

    polars raises on a longer record, so none has more fields than the header; a shorter one (or a blank line)
    leaves the last column NULL. Failing that, the separators in the chunk's bytes must be what whole records
    hold: (columns - 1) per row, plus the commas inside quoted values. Counting those is the costly part, so it
    is done in the columns that held commas so far (first guessed from a sample of rows), and in every column
    only when that does not add up (a new column with commas, or a misshapen record). Known limit: short records
    that lack exactly as many separators as commas first appear in other columns in the same chunk pass.
    """

    SAMPLE_ROWS = 1_000

    def __init__(self) -> None:
        self.comma_columns: list[str] | None = None
        self.trusted = True

    @classmethod
    def never(cls) -> FieldCounts:
        """One that sends every chunk to be split record by record (a file known to end mid-record)."""
        counts = cls()
        counts.trusted = False
        return counts

    def all_match(self, frame: pl.DataFrame, body: bytes) -> bool:
        if not self.trusted:
            return False
        if frame.height == 0 or frame.get_column(frame.columns[-1]).null_count() == 0:
            return True
        if frame.width == 1:
            return False  # a blank line reads as a NULL row: only splitting the records tells
        if self.comma_columns is None:
            sample = _commas(frame.head(self.SAMPLE_ROWS), frame.columns)
            self.comma_columns = [name for name, count in sample.items() if count]
        surplus = body.count(b",") - (frame.width - 1) * frame.height
        if surplus == sum(_commas(frame, self.comma_columns).values()):
            return True
        per_column = _commas(frame, frame.columns)
        self.comma_columns = [name for name, count in per_column.items() if count]
        return surplus == sum(per_column.values())


def _commas(frame: pl.DataFrame, columns: list[str]) -> dict[str, int]:
    """Per column, the commas inside its values (each from a quoted field: elsewhere a comma separates)."""
    if not columns:
        return {}
    counts = frame.select(
        pl.col(c).str.count_matches(",", literal=True).cast(pl.Int64).sum() for c in columns
    )
    return {name: int(value or 0) for name, value in counts.row(0, named=True).items()}


class Misshapen(ValueError):
    """A block whose records cannot be told apart (a quoted value opened and never closed over several lines)."""


def reshape(
    header: bytes, body: bytes, lines_before: int, parse: Callable[[bytes], pl.DataFrame]
) -> tuple[pl.DataFrame, pl.Series] | None:
    """The block's rows and their faults (FAULT_COLUMN): blank lines dropped, a record whose field count is not
    the header's kept as a row without values, the others parsed by `parse` (header + records → text frame).
    None when there is nothing to drop or keep apart (the block's problem is another); Misshapen when records
    cannot be told apart. `lines_before`: the file's lines before `body`."""
    width = split_records(header)[0].fields
    records = split_records(body)
    kept = [r for r in records if not r.is_blank(body)]
    faults = [_fault(r, width, lines_before + r.newlines_before + 1) for r in kept]
    if len(kept) == len(records) and not any(faults):
        return None
    whole = parse(
        header + b"".join(body[r.start : r.end] for r, f in zip(kept, faults, strict=True) if not f)
    )
    positions = [i for i, fault in enumerate(faults) if not fault]
    if whole.height != len(positions):
        raise Misshapen(f"{len(positions)} whole records parsed as {whole.height} rows")
    empty = {name: pl.Series(name, [None] * (len(kept) - len(positions)), pl.Utf8) for name in whole.columns}
    rows = pl.concat(
        [
            whole.with_columns(pl.Series("__k", positions, pl.Int64)),
            pl.DataFrame(empty).with_columns(
                pl.Series("__k", [i for i, fault in enumerate(faults) if fault], pl.Int64)
            ),
        ]
    ).sort("__k")
    return rows.drop("__k"), pl.Series(FAULT_COLUMN, faults, pl.Utf8)


def _fault(record: Record, width: int, line: int) -> str | None:
    """Why a record is not one row of the header's columns (it starts at `line` of the file), or None."""
    shape = f"line {line} has {record.fields} of {width} fields"
    if record.unterminated:
        if record.lines > 1:
            raise Misshapen(
                f"line {line} opens a quoted value that is never closed ({record.lines} lines to the end "
                "of the file): a stray '\"' in a value, or the file is cut short"
            )
        return f"{shape} and ends inside a quoted value: the file is cut short"
    if record.fields > width:
        return f"{shape}: quote values that contain commas"
    if record.fields < width:
        return f"{shape}: the record is cut short or lacks separators"
    return None
