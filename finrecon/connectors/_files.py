"""Reading delimited and Parquet extracts as text, the common ground for validation."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from finrecon.models.quarantine import ROW_COLUMN, FileLevelError

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
    """Every column as text (NULL for the configured null tokens), plus a 1-based source row number.

    Parquet is read through DuckDB so that MAP and STRUCT columns (Tags as a map) become JSON text and
    timestamps with a zone become UTC text; CSV stays exactly as written.
    """
    fmt = file_format(path)
    try:
        if fmt == "csv":
            frame = pl.read_csv(path, infer_schema=False, null_values=null_values)
        elif fmt == "parquet":
            frame = _parquet_as_text(path)
        else:
            raise FileLevelError(None, "file_format", f"{path.name}: not a CSV, CSV.GZ or Parquet file")
    except (pl.exceptions.PolarsError, duckdb.Error, OSError, UnicodeDecodeError) as err:
        raise FileLevelError(None, "readable", f"{path.name}: cannot be read: {err}") from None
    text = frame.with_columns(pl.col(pl.Utf8).str.strip_chars().replace("", None))
    if null_values:
        text = text.with_columns(pl.col(pl.Utf8).replace(null_values, None))
    return text.with_row_index(ROW_COLUMN, offset=1).with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))


def _parquet_as_text(path: Path) -> pl.DataFrame:
    con = duckdb.connect()
    try:
        described = con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()
        projections = []
        for name, dtype, *_ in described:
            quoted = '"' + str(name).replace('"', '""') + '"'
            kind = str(dtype).upper()
            if kind.startswith(("MAP", "STRUCT")) or kind.endswith("[]"):
                projections.append(f"cast(to_json({quoted}) as varchar) as {quoted}")
            elif "TIME ZONE" in kind:
                projections.append(f"strftime(timezone('UTC', {quoted}), '%Y-%m-%d %H:%M:%S.%f') as {quoted}")
            else:
                projections.append(f"cast({quoted} as varchar) as {quoted}")
        sql = f"select {', '.join(projections)} from read_parquet(?)"
        return con.sql(sql, params=[str(path)]).pl()
    finally:
        con.close()
