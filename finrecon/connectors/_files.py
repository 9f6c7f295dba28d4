"""Reading delimited and Parquet extracts as text, the common ground for validation."""

from __future__ import annotations

import codecs
import gzip
import io
import itertools
import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from finrecon.connectors._csv_records import FieldCounts, Misshapen, reshape
from finrecon.core.sql_text import identifier
from finrecon.models.quarantine import FAULT_COLUMN, FILE_COLUMN, ROW_COLUMN, FileLevelError

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)


def file_format(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def read_as_text(path: Path, null_values: list[str]) -> pl.DataFrame:
    """Every column as text (NULL for the configured null tokens), plus a 1-based source row number."""
    return read_delivered(path, null_values, keep_types=False)


def read_delivered(path: Path, null_values: list[str], keep_types: bool = True) -> pl.DataFrame:
    """A file as delivered plus a 1-based source row number: CSV as text; Parquet in its own types (or as text).

    Parquet goes through DuckDB so that MAP and STRUCT columns (Tags as a map) become JSON text. Empty strings
    and the configured null tokens are NULL. Every way a file can be unreadable is a FileLevelError naming the
    file (and the row, where one is to blame); when the rows can still be counted, the error carries them.
    """
    fmt = file_format(path)
    if fmt is None:
        raise FileLevelError(None, "file_format", f"{path.name}: not a CSV, CSV.GZ or Parquet file")
    if fmt == "csv":  # the chunked reader, whole: one parser, one set of messages
        return pl.concat(iter_delivered(path, null_values, _WHOLE), how="vertical")
    else:
        try:
            names = pq.read_schema(path).names
            frame = _read_parquet(path, keep_types)
        except (pl.exceptions.PolarsError, duckdb.Error, pa.ArrowException, OSError) as err:
            raise FileLevelError(
                None, "readable", f"{path.name}: cannot be read: {_first_line(err)}"
            ) from None
        _refuse_duplicate_columns(path, names, lambda: iter([_numbered(path, frame, null_values)]))
        if FAULT_COLUMN in names:
            raise _reserved_fault_column(path, lambda: iter([frame]), null_values)
    return _numbered(path, frame, null_values)


def _numbered(path: Path, frame: pl.DataFrame, null_values: list[str], offset: int = 0) -> pl.DataFrame:
    """NULL for empty strings and null tokens, and the 1-based row number (a name no delivered column may use);
    `offset`: rows of the file before this frame."""
    if ROW_COLUMN in frame.columns:
        message = f"{path.name}: column {ROW_COLUMN!r} is reserved for the row number the pipeline adds"
        rows = _numbered(path, frame.drop(ROW_COLUMN), null_values, offset)
        raise FileLevelError(ROW_COLUMN, "not_reserved_column", message, rows)
    text = frame.with_columns(pl.col(pl.Utf8).replace(sorted({"", *null_values}), None))
    return text.with_row_index(ROW_COLUMN, offset=offset + 1).with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))


def _first_line(err: BaseException) -> str:
    """An error's first line: the library's advice below it (options of its own reader) would mislead."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


_WIDE_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


def _csv_header(head: bytes, parsed: list[str]) -> list[str]:
    """The header's names exactly as written (polars renames a repeated one `<name>_duplicated_0` and keeps a
    quoted name's doubled quotes): the first record read as data. `parsed` when that cannot be done."""
    try:
        first = pl.read_csv(
            io.BytesIO(head), has_header=False, n_rows=1, infer_schema=False, encoding="utf8-lossy"
        )
    except pl.exceptions.PolarsError:
        return parsed
    names = ["" if value is None else str(value) for value in first.row(0)] if first.height else []
    return [names[0].removeprefix("\ufeff"), *names[1:]] if len(names) == len(parsed) else parsed


def _refuse_duplicate_columns(
    path: Path, names: list[str], rows: Callable[[], Iterator[pl.DataFrame]]
) -> None:
    """A column named twice: which of the two is the real one is a guess, so the file fails, naming it (`rows`:
    the file's numbered rows, in chunks, for the books)."""
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if name in seen:
            first = names.index(name) + 1
            message = f"{path.name}: column {name!r} appears twice (columns {first} and {position})"
            raise FileLevelError(name, "unique_column", message, rows)
        seen.add(name)


def _first_column_with(frame: pl.DataFrame, text: str) -> str | None:
    """The first text column (in file order) holding `text` anywhere, else None."""
    for name in frame.columns:
        if frame.schema[name] == pl.Utf8 and frame.get_column(name).str.contains(text, literal=True).any():
            return name
    return None


def delimiter_hint(columns: list[str]) -> str:
    """Why a file may lack every required column: its header is one name holding another delimiter."""
    delivered = [c for c in columns if c not in (ROW_COLUMN, FAULT_COLUMN)]
    if len(delivered) != 1:
        return ""
    for delimiter, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if delimiter in delivered[0]:
            return f"; the header reads as one column: the file looks {label}-delimited, not comma-delimited"
    return ""


def _has_nested_or_decimal(path: Path) -> bool:
    schema = pq.read_schema(path)
    return any(
        pa.types.is_nested(field.type)
        or pa.types.is_decimal(field.type)
        or pa.types.is_dictionary(field.type)
        for field in schema
    )


def _read_parquet(path: Path, keep_types: bool) -> pl.DataFrame:
    """A Parquet file (DuckDB renames a repeated field `<name>_1`, which the caller then refuses)."""
    names = pq.read_schema(path).names
    if keep_types and len(set(names)) == len(names) and not _has_nested_or_decimal(path):
        return pl.read_parquet(path)  # the fast path: polars reads Parquet natively, in parallel
    con = duckdb.connect()
    try:
        return con.sql(_parquet_select(con, path, keep_types), params=[str(path)]).pl()
    finally:
        con.close()


def _parquet_select(con: duckdb.DuckDBPyConnection, path: Path, keep_types: bool) -> str:
    """A query over `read_parquet(?)`: MAP, STRUCT and LIST columns as JSON text; decimals as doubles (or, not
    `keep_types`, every column as text, timestamps with a zone in UTC)."""
    described = con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()
    projections = []
    for name, dtype, *_ in described:
        quoted = identifier(str(name))
        kind = str(dtype).upper()
        if kind.startswith(("MAP", "STRUCT")) or kind.endswith("[]"):
            projections.append(f"cast(to_json({quoted}) as varchar) as {quoted}")
        elif keep_types and not kind.startswith(("DECIMAL", "HUGEINT", "UHUGEINT")):
            projections.append(quoted)
        elif keep_types:
            projections.append(f"cast({quoted} as double) as {quoted}")
        elif "TIME ZONE" in kind:
            projections.append(f"strftime(timezone('UTC', {quoted}), '%Y-%m-%d %H:%M:%S.%f') as {quoted}")
        else:
            projections.append(f"cast({quoted} as varchar) as {quoted}")
    return f"select {', '.join(projections)} from read_parquet(?)"


# Rows per chunk when a caller names none: a few hundred MB of text and typed siblings for a FOCUS file.
DEFAULT_CHUNK_ROWS = 250_000
# The block a CSV is read in is sized from its first records' average length, never smaller than this.
_MIN_BLOCK_BYTES = 1 << 8
_MAX_BLOCK_BYTES = 1 << 27  # 128 MiB: a chunk never reads more than this at once
_HEAD_BYTES = 1 << 16
_WHOLE = 1 << 62  # chunk_rows for a frame read whole (blocks of _MAX_BLOCK_BYTES)

RawChunks = Callable[[], Iterator[pl.DataFrame]]


def iter_delivered(
    path: Path, null_values: list[str], chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pl.DataFrame]:
    """`read_delivered` in chunks of about `chunk_rows` rows, so that memory does not grow with the file.

    Every chunk has the same columns and its rows' 1-based numbers in the file; a file with no rows gives one
    empty chunk (its columns are still checked). File-level problems raise FileLevelError as `read_delivered`
    does; one found after some chunks were given (a truncated gzip stream, a block that does not parse) is
    raised when iteration reaches it, so a caller treats what it got so far as void.
    """
    fmt = file_format(path)
    if fmt is None:
        raise FileLevelError(None, "file_format", f"{path.name}: not a CSV, CSV.GZ or Parquet file")
    if fmt == "csv":
        csv_chunks: RawChunks = lambda: _csv_chunks(path, null_values, chunk_rows)  # noqa: E731
        return _numbered_chunks(path, csv_chunks, lambda first: _csv_names(path, first), null_values)
    try:
        names = pq.read_schema(path).names
        plain = len(set(names)) == len(names) and not _has_nested_or_decimal(path)
    except (pa.ArrowException, OSError) as err:
        raise FileLevelError(None, "readable", f"{path.name}: cannot be read: {_first_line(err)}") from None
    parquet_chunks: RawChunks = lambda: _parquet_chunks(path, chunk_rows, plain)  # noqa: E731
    return _numbered_chunks(path, parquet_chunks, lambda _: names, null_values)


def _numbered_chunks(
    path: Path, raw: RawChunks, names_of: Callable[[pl.DataFrame], list[str]], null_values: list[str]
) -> Iterator[pl.DataFrame]:
    """Raw chunks checked once for their header (a repeated or reserved name fails the file, its rows counted
    from a fresh pass) and given NULLs and row numbers."""
    chunks = raw()
    first = next(chunks)
    names = names_of(first)
    recount: Callable[[], Iterator[pl.DataFrame]] = lambda: _renumber(path, raw(), null_values)  # noqa: E731
    _refuse_duplicate_columns(path, names, recount)
    if ROW_COLUMN in first.columns:
        message = f"{path.name}: column {ROW_COLUMN!r} is reserved for the row number the pipeline adds"
        dropped = lambda: _renumber(path, (c.drop(ROW_COLUMN) for c in raw()), null_values)  # noqa: E731
        raise FileLevelError(ROW_COLUMN, "not_reserved_column", message, dropped)
    if FAULT_COLUMN in names:  # a Parquet column (a CSV's is refused as it is read)
        raise _reserved_fault_column(path, raw, null_values)
    offset = 0
    for chunk in itertools.chain([first], chunks):
        yield _numbered(path, chunk, null_values, offset)
        offset += chunk.height


def _reserved_fault_column(path: Path, raw: RawChunks, null_values: list[str]) -> FileLevelError:
    """A delivered column named like FAULT_COLUMN fails the file (it would mark its rows misshapen); the books
    count the file's rows without it."""
    message = f"{path.name}: column {FAULT_COLUMN!r} is reserved for the record faults the reader reports"

    def rows() -> Iterator[pl.DataFrame]:
        return _renumber(path, (c.drop(FAULT_COLUMN) for c in raw()), null_values)

    return FileLevelError(FAULT_COLUMN, "not_reserved_column", message, rows)


def _renumber(path: Path, chunks: Iterator[pl.DataFrame], null_values: list[str]) -> Iterator[pl.DataFrame]:
    offset = 0
    for chunk in chunks:
        yield _numbered(path, chunk, null_values, offset)
        offset += chunk.height


def _parquet_chunks(path: Path, chunk_rows: int, plain: bool) -> Iterator[pl.DataFrame]:
    """A Parquet file by record batches: polars-native types, or through DuckDB (streamed) for nested, decimal
    and dictionary columns (and repeated names), which become what `_read_parquet` makes of them."""
    try:
        if plain:
            with pq.ParquetFile(path) as parquet:
                schema = parquet.schema_arrow
                pending: list[pa.RecordBatch] = []  # batches stop at row groups: gathered up to chunk_rows
                given = False
                for batch in parquet.iter_batches(batch_size=chunk_rows):
                    pending.append(batch)
                    if sum(b.num_rows for b in pending) >= chunk_rows:
                        yield _frame(pa.Table.from_batches(pending, schema))
                        pending, given = [], True
                if pending or not given:
                    yield _frame(pa.Table.from_batches(pending, schema))
            return
        con = duckdb.connect(config={"memory_limit": "1GB", "threads": "2"})
        try:
            sql = _parquet_select(con, path, keep_types=True)
            reader = con.sql(sql, params=[str(path)]).to_arrow_reader(batch_size=chunk_rows)
            given = False
            for batch in reader:
                given = True
                yield _frame(batch)
            if not given:
                yield _frame(reader.schema.empty_table())
        finally:
            con.close()
    except (pl.exceptions.PolarsError, duckdb.Error, pa.ArrowException, OSError) as err:
        raise FileLevelError(None, "readable", f"{path.name}: cannot be read: {_first_line(err)}") from None


def _frame(data: pa.RecordBatch | pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(data)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _csv_names(path: Path, first: pl.DataFrame) -> list[str]:
    """The header's names as written (see `_csv_header`), from the file's first bytes."""
    stream = _open_bytes(path)
    try:
        head = _read_block(path, stream, _HEAD_BYTES)
    finally:
        stream.close()
    return _csv_header(head, [c for c in first.columns if c != FAULT_COLUMN])


def _csv_chunks(
    path: Path, null_values: list[str], chunk_rows: int, *, recount: bool = False
) -> Iterator[pl.DataFrame]:
    """A CSV (or CSV.GZ) as text in chunks of whole records, each parsed by polars with the header, plus
    FAULT_COLUMN (a delivered column of that name fails the file; `recount`: its rows, for the books)."""
    names: list[str] | None = None
    shape = FieldCounts()
    for header, body, lines_before, cut_open in _csv_blocks(path, chunk_rows):
        if cut_open:
            shape = FieldCounts.never()  # the last record is cut inside quotes: split the records
        frame, faults = _parse_csv_chunk(path, header, body, null_values, lines_before, chunk_rows, shape)
        if names is None:
            names = _csv_header(header, frame.columns)
            if FAULT_COLUMN in names and not recount:
                again: RawChunks = lambda: _csv_chunks(path, null_values, chunk_rows, recount=True)  # noqa: E731
                raise _reserved_fault_column(path, again, null_values)
        named = _with_header_names(frame, names) if len(set(names)) == len(names) else frame
        yield named if FAULT_COLUMN in names else named.with_columns(faults)


def _csv_blocks(path: Path, chunk_rows: int) -> Iterator[tuple[bytes, bytes, int, bool]]:
    """(header, body, newlines before body, whether the file ends inside quotes) per chunk: the body is whole
    records of about `chunk_rows` rows (the last chunk's last record may be cut short: the 4th item tells that
    it ends inside a quoted value, which polars would read as whole).

    The file is read as a stream of blocks (a gzip stream is inflated as it is read, never whole); a block is
    cut after its last newline outside quotes (an even count of `"` since the last cut), so a quoted value
    holding newlines is never split and every chunk parses as the whole file would. At least one chunk (the
    header alone, for a file without rows).
    """
    stream = _open_bytes(path)
    try:
        head = _read_block(path, stream, _HEAD_BYTES)
        for bom, encoding in _WIDE_BOMS.items():
            if head.startswith(bom):
                raise FileLevelError(
                    None, "is_utf8", f"{path.name}: the file is {encoding}-encoded; CSV files must be UTF-8"
                )
        while (header_end := _record_end(head, first_only=True)) is None:
            more = _read_block(path, stream, _HEAD_BYTES)
            if not more:
                header_end = len(head)
                break
            head += more
        header, carry = head[:header_end], head[header_end:]
        block = _block_bytes(carry, chunk_rows)
        lines_before = header.count(b"\n")
        first = True
        while True:
            more = _read_block(path, stream, block)
            carry += more
            cut = _record_end(carry) if more else len(carry)
            if cut is None:
                continue  # no whole record yet: read on
            body, carry = carry[:cut], carry[cut:]
            if body or first:
                yield header, body, lines_before, not more and body.count(b'"') % 2 == 1
                first = False
                lines_before += body.count(b"\n")
            if not more:
                return
    finally:
        stream.close()


def _open_bytes(path: Path) -> BinaryIO:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def _read_block(path: Path, stream: BinaryIO, size: int) -> bytes:
    """The next `size` bytes (all that is left for -1); a broken gzip stream is a FileLevelError naming the file."""
    try:
        return stream.read(size)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise FileLevelError(
            None,
            "readable",
            f"{path.name}: cannot be read: the gzip stream is truncated or corrupt ({_first_line(err)}); "
            "its rows are unknown",
        ) from None


def _record_end(data: bytes, *, first_only: bool = False) -> int | None:
    """Where the last whole record of `data` (which starts at a record boundary) ends: after the last newline
    preceded by an even number of quote characters (the first such newline with `first_only`); None if none."""
    if first_only:
        position, quotes = 0, 0
        while (newline := data.find(b"\n", position)) >= 0:
            quotes += data.count(b'"', position, newline)
            if quotes % 2 == 0:
                return newline + 1
            position = newline + 1
        return None
    newline = data.rfind(b"\n")
    quotes = data.count(b'"', 0, newline) if newline >= 0 else 0
    while newline >= 0:
        if quotes % 2 == 0:
            return newline + 1
        previous = data.rfind(b"\n", 0, newline)
        quotes -= data.count(b'"', max(previous, 0), newline)
        newline = previous
    return None


def _block_bytes(sample: bytes, chunk_rows: int) -> int:
    """Bytes to read per chunk: `chunk_rows` times the average record length of `sample`, within bounds."""
    lines = sample.count(b"\n")
    average = len(sample) / lines if lines else 256
    return min(_MAX_BLOCK_BYTES, max(_MIN_BLOCK_BYTES, int(average * chunk_rows)))


def _parse_csv_chunk(
    path: Path,
    header: bytes,
    body: bytes,
    null_values: list[str],
    lines_before: int,
    chunk_rows: int,
    shape: FieldCounts,
) -> tuple[pl.DataFrame, pl.Series]:
    """A chunk's rows as text and, per row, why its record is not one row of the header's columns (NULL when
    it is); blank lines are no rows (see `_csv_records`)."""
    data = header + body

    def parse(text: bytes) -> pl.DataFrame:
        return pl.read_csv(io.BytesIO(text), infer_schema=False, null_values=null_values)

    try:
        frame = parse(data)
    except pl.exceptions.PolarsError as err:
        if not data.strip():
            raise FileLevelError(
                None, "readable", f"{path.name}: the file is empty (no header row)"
            ) from None
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as decode_error:
            raise _not_utf8_chunk(
                path, data, len(header), lines_before, decode_error, null_values, chunk_rows
            ) from None
        return _reshaped(path, header, body, lines_before, parse, err)
    if shape.all_match(frame, body):
        return frame, _no_faults(frame.height)
    return _reshaped(path, header, body, lines_before, parse, frame)


def _reshaped(
    path: Path,
    header: bytes,
    body: bytes,
    lines_before: int,
    parse: Callable[[bytes], pl.DataFrame],
    parsed: pl.DataFrame | pl.exceptions.PolarsError,
) -> tuple[pl.DataFrame, pl.Series]:
    """The slow path for a chunk with a record of another field count or a blank line: `parsed` is what polars
    made of the whole chunk (or its error, raised as the file's when the records are not to blame)."""
    try:
        reshaped = reshape(header, body, lines_before, parse)
    except (Misshapen, pl.exceptions.PolarsError) as err:
        raise _not_well_formed(path, err) from None
    if reshaped is not None:
        return reshaped
    if isinstance(parsed, pl.DataFrame):
        return parsed, _no_faults(parsed.height)
    raise _not_well_formed(path, parsed) from None


def _no_faults(height: int) -> pl.Series:
    return pl.repeat(None, height, dtype=pl.Utf8, eager=True).alias(FAULT_COLUMN)


def _not_well_formed(path: Path, err: BaseException) -> FileLevelError:
    return FileLevelError(
        None, "readable", f"{path.name}: cannot be read: not well-formed CSV: {_first_line(err)}"
    )


def _not_utf8_chunk(
    path: Path,
    data: bytes,
    header_bytes: int,
    lines_before: int,
    err: UnicodeDecodeError,
    null_values: list[str],
    chunk_rows: int,
) -> FileLevelError:
    """`_not_utf8` for one chunk: the line counted from the file's start, the rows counted by a lossy pass."""
    if err.start < header_bytes:
        line = data.count(b"\n", 0, err.start) + 1
    else:
        line = lines_before + data.count(b"\n", header_bytes, err.start) + 1
    where = f" at line {line} (byte 0x{data[err.start]:02X})"
    try:
        lossy = pl.read_csv(
            io.BytesIO(data), infer_schema=False, null_values=null_values, encoding="utf8-lossy"
        )
    except pl.exceptions.PolarsError:
        return FileLevelError(None, "is_utf8", f"{path.name}: not UTF-8 text{where}; re-export it as UTF-8")
    column = _first_column_with(_numbered(path, lossy, null_values), "\ufffd")
    if column is not None:
        where += f", column {column!r}"

    def rows() -> Iterator[pl.DataFrame]:
        return _renumber(path, _lossy_chunks(path, null_values, chunk_rows), null_values)

    return FileLevelError(
        column, "is_utf8", f"{path.name}: not UTF-8 text{where}; re-export it as UTF-8", rows
    )


def _lossy_chunks(path: Path, null_values: list[str], chunk_rows: int) -> Iterator[pl.DataFrame]:
    """The file's rows with bad bytes read as U+FFFD (what a not-UTF-8 file's books count), in chunks: records
    as the file's readable chunks give them (blank lines no rows, a misshapen record a row without values)."""
    shape = FieldCounts()
    for header, body, lines_before, cut_open in _csv_blocks(path, chunk_rows):
        head, text = (part.decode("utf-8", "replace").encode("utf-8") for part in (header, body))
        checks = FieldCounts.never() if cut_open else shape
        frame, faults = _parse_csv_chunk(path, head, text, null_values, lines_before, chunk_rows, checks)
        yield frame.with_columns(faults)


def _with_header_names(frame: pl.DataFrame, header: list[str]) -> pl.DataFrame:
    if len(header) == frame.width and header != frame.columns:
        # polars keeps a quoted header name's doubled quotes (`"a""b"` reads as `a""b`): the name as written
        return frame.rename(dict(zip(frame.columns, header, strict=True)))
    return frame


def iter_files(
    files: list[tuple[str, Path]], read: Callable[[str, Path], Iterable[pl.DataFrame]]
) -> Iterator[pl.DataFrame]:
    """Several downloaded files of one delivery as one stream of chunks, each row with its file (`x_source_file`:
    the file's URI) and its row number in that file; columns may drift between files (and so between chunks). A
    file-level problem names the file's URI. No files: one empty chunk."""
    if not files:
        yield pl.DataFrame(
            {ROW_COLUMN: [], FILE_COLUMN: []}, schema={ROW_COLUMN: pl.Int64, FILE_COLUMN: pl.Utf8}
        )
        return
    for uri, path in files:
        try:
            for chunk in read(uri, path):
                yield chunk.with_columns(pl.lit(uri).alias(FILE_COLUMN))
        except FileLevelError as err:
            detail = err.message.removeprefix(f"{path.name}: ")
            raise FileLevelError(err.column, err.check, f"{uri}: {detail}") from None


def remove_downloads(folder: Path) -> None:
    """Drop a delivery's downloaded files once its rows are in the lake."""
    shutil.rmtree(folder, ignore_errors=True)
