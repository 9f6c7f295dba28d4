"""Reading delimited and Parquet extracts as text, the common ground for validation."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from finrecon.models.quarantine import FILE_COLUMN, ROW_COLUMN, FileLevelError

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
    and the configured null tokens are NULL.
    """
    fmt = file_format(path)
    try:
        if fmt == "csv":
            frame = pl.read_csv(path, infer_schema=False, null_values=null_values)
        elif fmt == "parquet":
            frame = _read_parquet(path, keep_types)
        else:
            raise FileLevelError(None, "file_format", f"{path.name}: not a CSV, CSV.GZ or Parquet file")
    except (pl.exceptions.PolarsError, duckdb.Error, OSError, UnicodeDecodeError) as err:
        raise FileLevelError(None, "readable", f"{path.name}: cannot be read: {err}") from None
    text = frame.with_columns(pl.col(pl.Utf8).replace(sorted({"", *null_values}), None))
    return text.with_row_index(ROW_COLUMN, offset=1).with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))


def _has_nested_or_decimal(path: Path) -> bool:
    schema = pq.read_schema(path)
    return any(
        pa.types.is_nested(field.type)
        or pa.types.is_decimal(field.type)
        or pa.types.is_dictionary(field.type)
        for field in schema
    )


def _read_parquet(path: Path, keep_types: bool) -> pl.DataFrame:
    if keep_types and not _has_nested_or_decimal(path):
        return pl.read_parquet(path)  # the fast path: polars reads Parquet natively, in parallel
    con = duckdb.connect()
    try:
        described = con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()
        projections = []
        for name, dtype, *_ in described:
            quoted = '"' + str(name).replace('"', '""') + '"'
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
