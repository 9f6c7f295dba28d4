"""Reading delimited and Parquet extracts as text, the common ground for validation."""

from __future__ import annotations

import codecs
import gzip
import io
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from finrecon.models.quarantine import FILE_COLUMN, ROW_COLUMN, FileLevelError
from finrecon.warehouse.sql_text import identifier

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
    if fmt == "csv":
        frame = _read_csv(path, null_values)
    else:
        try:
            names = pq.read_schema(path).names
            frame = _read_parquet(path, keep_types)
        except (pl.exceptions.PolarsError, duckdb.Error, pa.ArrowException, OSError) as err:
            raise FileLevelError(
                None, "readable", f"{path.name}: cannot be read: {_first_line(err)}"
            ) from None
        _refuse_duplicate_columns(path, names, frame, null_values)
    return _numbered(path, frame, null_values)


def _numbered(path: Path, frame: pl.DataFrame, null_values: list[str]) -> pl.DataFrame:
    """NULL for empty strings and null tokens, and the 1-based row number (a name no delivered column may use)."""
    if ROW_COLUMN in frame.columns:
        message = f"{path.name}: column {ROW_COLUMN!r} is reserved for the row number the pipeline adds"
        rows = _numbered(path, frame.drop(ROW_COLUMN), null_values)
        raise FileLevelError(ROW_COLUMN, "not_reserved_column", message, rows)
    text = frame.with_columns(pl.col(pl.Utf8).replace(sorted({"", *null_values}), None))
    return text.with_row_index(ROW_COLUMN, offset=1).with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))


def _first_line(err: BaseException) -> str:
    """An error's first line: the library's advice below it (options of its own reader) would mislead."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _raw_bytes(path: Path, limit: int = -1) -> bytes:
    """The file's bytes (the first `limit`, or all), decompressed; a broken gzip stream is a FileLevelError."""
    if not path.name.lower().endswith(".gz"):
        with path.open("rb") as handle:
            return handle.read(limit)
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(limit)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise FileLevelError(
            None,
            "readable",
            f"{path.name}: cannot be read: the gzip stream is truncated or corrupt ({_first_line(err)}); "
            "its rows are unknown",
        ) from None


_WIDE_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


def _read_csv(path: Path, null_values: list[str]) -> pl.DataFrame:
    """A CSV (or CSV.GZ) as text: UTF-8 (a byte-order mark is allowed), comma-delimited, header first.

    Polars reads the file itself (memory-mapped, in parallel); the bytes are only looked at to explain a failure.
    """
    head = _raw_bytes(path, 1 << 16)
    for bom, encoding in _WIDE_BOMS.items():
        if head.startswith(bom):
            raise FileLevelError(
                None, "is_utf8", f"{path.name}: the file is {encoding}-encoded; CSV files must be UTF-8"
            )
    try:
        frame = pl.read_csv(path, infer_schema=False, null_values=null_values)
    except pl.exceptions.PolarsError as err:
        raise _unreadable_csv(path, err, null_values) from None
    header = _csv_header(head, frame.columns)
    _refuse_duplicate_columns(path, header, frame, null_values)
    if len(header) == frame.width and header != frame.columns:
        # polars keeps a quoted header name's doubled quotes (`"a""b"` reads as `a""b`): the name as written
        frame = frame.rename(dict(zip(frame.columns, header, strict=True)))
    return frame


def _unreadable_csv(path: Path, err: Exception, null_values: list[str]) -> FileLevelError:
    """Why polars could not read a CSV, in the words of the file, not of the reader's options."""
    data = _raw_bytes(path)  # a truncated gzip stream raises here
    if not data.strip():
        return FileLevelError(None, "readable", f"{path.name}: the file is empty (no header row)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as decode_error:
        return _not_utf8(path, data, decode_error, null_values)
    return FileLevelError(
        None, "readable", f"{path.name}: cannot be read: not well-formed CSV: {_first_line(err)}"
    )


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
    path: Path, names: list[str], frame: pl.DataFrame, null_values: list[str]
) -> None:
    """A column named twice: which of the two is the real one is a guess, so the file fails, naming it."""
    seen: set[str] = set()
    for position, name in enumerate(names, start=1):
        if name in seen:
            first = names.index(name) + 1
            message = f"{path.name}: column {name!r} appears twice (columns {first} and {position})"
            raise FileLevelError(name, "unique_column", message, _numbered(path, frame, null_values))
        seen.add(name)


def _not_utf8(path: Path, data: bytes, err: UnicodeDecodeError, null_values: list[str]) -> FileLevelError:
    """The error for text that is not UTF-8, naming the first bad line and column; the rows are counted (the
    bad bytes read as U+FFFD) so that the books show what the file held."""
    line = data.count(b"\n", 0, err.start) + 1
    where = f" at line {line} (byte 0x{data[err.start]:02X})"
    try:
        lossy = pl.read_csv(
            io.BytesIO(data), infer_schema=False, null_values=null_values, encoding="utf8-lossy"
        )
    except pl.exceptions.PolarsError:
        return FileLevelError(None, "is_utf8", f"{path.name}: not UTF-8 text{where}; re-export it as UTF-8")
    rows = _numbered(path, lossy, null_values)
    column = _first_column_with(rows, "\ufffd")
    if column is not None:
        where += f", column {column!r}"
    return FileLevelError(
        column, "is_utf8", f"{path.name}: not UTF-8 text{where}; re-export it as UTF-8", rows
    )


def _first_column_with(frame: pl.DataFrame, text: str) -> str | None:
    """The first text column (in file order) holding `text` anywhere, else None."""
    for name in frame.columns:
        if frame.schema[name] == pl.Utf8 and frame.get_column(name).str.contains(text, literal=True).any():
            return name
    return None


def delimiter_hint(columns: list[str]) -> str:
    """Why a file may lack every required column: its header is one name holding another delimiter."""
    delivered = [c for c in columns if c != ROW_COLUMN]
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
        sql = f"select {', '.join(projections)} from read_parquet(?)"
        return con.sql(sql, params=[str(path)]).pl()
    finally:
        con.close()


def read_files(files: list[tuple[str, Path]], read: Callable[[str, Path], pl.DataFrame]) -> pl.DataFrame:
    """Several downloaded files of one delivery as one frame, each row with its file (`x_source_file`: the file's
    URI) and its row number in that file; columns that drift between files are unioned. A file-level problem
    names the file's URI."""
    frames = []
    for uri, path in files:
        try:
            frame = read(uri, path)
        except FileLevelError as err:
            detail = err.message.removeprefix(f"{path.name}: ")
            raise FileLevelError(err.column, err.check, f"{uri}: {detail}") from None
        frames.append(frame.with_columns(pl.lit(uri).alias(FILE_COLUMN)))
    if not frames:
        return pl.DataFrame(
            {ROW_COLUMN: [], FILE_COLUMN: []}, schema={ROW_COLUMN: pl.Int64, FILE_COLUMN: pl.Utf8}
        )
    return pl.concat(frames, how="diagonal_relaxed")


def remove_downloads(folder: Path) -> None:
    """Drop a delivery's downloaded files once its rows are in the lake."""
    shutil.rmtree(folder, ignore_errors=True)
