"""Split a raw frame into valid rows and quarantine records with Pandera, never dropping a row silently."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

ROW_COLUMN = "x_source_row"
FILE_COLUMN = "x_source_file"  # present when one input spans several files (a billing period's data files)
# Present in every chunk of a CSV: why a record could not be split into the header's columns (its line and field
# count), NULL for a well-formed record. Such a row carries no values, only its number: it is quarantined whole.
FAULT_COLUMN = "x_record_fault"
FIELD_COUNT_CHECK = "fields_match_header"

RowChunks = Callable[[], Iterator[pl.DataFrame]]

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "row_number": pl.Int64(),
    "column_name": pl.Utf8(),
    "check_name": pl.Utf8(),
    "raw_value": pl.Utf8(),
    "source_file": pl.Utf8(),  # the data file within the input, when the input spans several
}


@dataclass(frozen=True)
class Split:
    """Valid rows (still raw text) and one quarantine record per failing (row, column, check)."""

    valid: pl.DataFrame
    quarantined_rows: pl.DataFrame
    failures: pl.DataFrame


def empty_failures() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def split_valid(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> Split:
    """Validate `frame` (which carries a 1-based `x_source_row`) and split it.

    Pandera reports each failure with the positional index of the row; that is mapped back to the source row
    number so that the quarantine names file, row, column, check and the raw value. A record the reader could
    not split into the header's columns (`FAULT_COLUMN`) is quarantined as it stands, its fault as raw value.
    """
    if FAULT_COLUMN in frame.columns:
        return _split_misshapen(frame, schema)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    else:
        return Split(frame, frame.clear(), empty_failures())
    positions = cases.filter(pl.col("index").is_not_null())
    unlocated = cases.filter(pl.col("index").is_null())
    if unlocated.height:
        # A schema-level failure (e.g. a wrong dtype) cannot be pinned to rows: it is a file-level error.
        first = unlocated.row(0, named=True)
        raise FileLevelError(str(first["column"]), str(first["check"]), str(first["failure_case"]))
    rows = frame.with_row_index("__position")
    located = positions.select(
        pl.col("index").cast(pl.UInt32).alias("__position"),
        pl.col("column").cast(pl.Utf8).alias("column_name"),
        pl.col("check").cast(pl.Utf8).alias("check_name"),
        pl.col("failure_case").cast(pl.Utf8).alias("raw_value"),
    )
    source_file = pl.col(FILE_COLUMN) if FILE_COLUMN in frame.columns else pl.lit(None, dtype=pl.Utf8)
    lineage = rows.select("__position", ROW_COLUMN, source_file.alias("source_file"))
    failures = (
        _name_frame_level_columns(located, rows, schema)
        .with_columns(shorten_raw_value(pl.col("raw_value")))
        .join(lineage, on="__position", how="left")
        .select(
            pl.col(ROW_COLUMN).alias("row_number"), "column_name", "check_name", "raw_value", "source_file"
        )
        .unique()
        .sort("source_file", "row_number", "column_name", "check_name", nulls_last=True)
    )
    bad = positions.get_column("index").cast(pl.UInt32).unique()
    is_bad = pl.col("__position").is_in(bad.implode())
    return Split(
        valid=rows.filter(~is_bad).drop("__position"),
        quarantined_rows=rows.filter(is_bad).drop("__position"),
        failures=failures,
    )


def _split_misshapen(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> Split:
    """`split_valid` for a frame with the reader's FAULT_COLUMN: the misshapen records (no values to check) are
    quarantined with one record each, the rest validated as usual."""
    if frame.get_column(FAULT_COLUMN).null_count() == frame.height:  # the common case: no copy of the rows
        return split_valid(frame.drop(FAULT_COLUMN), schema)
    is_misshapen = pl.col(FAULT_COLUMN).is_not_null()
    misshapen = frame.filter(is_misshapen)
    split = split_valid(frame.filter(~is_misshapen).drop(FAULT_COLUMN), schema)
    source_file = pl.col(FILE_COLUMN) if FILE_COLUMN in frame.columns else pl.lit(None, dtype=pl.Utf8)
    records = misshapen.select(
        pl.col(ROW_COLUMN).alias("row_number"),
        pl.lit(None, dtype=pl.Utf8).alias("column_name"),
        pl.lit(FIELD_COUNT_CHECK).alias("check_name"),
        pl.col(FAULT_COLUMN).alias("raw_value"),
        source_file.alias("source_file"),
    )
    failures = pl.concat([split.failures, records]).sort(
        "source_file", "row_number", "column_name", "check_name", nulls_last=True
    )
    bad_rows = pl.concat([split.quarantined_rows, misshapen.drop(FAULT_COLUMN)]).sort(ROW_COLUMN)
    return Split(split.valid, bad_rows, failures)


# A quarantined value longer than this is kept as its start and its length: a 50 MB cell must not be copied
# into every quarantine table it passes through (the lake keeps nothing of it, the file keeps all of it).
RAW_VALUE_MAX_CHARS = 1_000


def shorten_raw_value(value: pl.Expr) -> pl.Expr:
    """`value`, or its first RAW_VALUE_MAX_CHARS characters and its full length when it is longer."""
    length = value.str.len_chars()
    head = value.str.slice(0, RAW_VALUE_MAX_CHARS)
    shortened = pl.concat_str([head, pl.lit("… ["), length.cast(pl.Utf8), pl.lit(" characters]")])
    return pl.when(length > RAW_VALUE_MAX_CHARS).then(shortened).otherwise(value).alias("raw_value")


def _frame_check_columns(schema: pa.DataFrameSchema) -> dict[str, list[str]]:
    """Columns behind each table-wide check: uniqueness over `schema.unique`, others declared in metadata."""
    declared: dict[str, list[str]] = dict((schema.metadata or {}).get("frame_check_columns", {}))
    if schema.unique:
        declared["multiple_fields_uniqueness"] = list(schema.unique)
    return declared


def _name_frame_level_columns(
    located: pl.DataFrame, rows: pl.DataFrame, schema: pa.DataFrameSchema
) -> pl.DataFrame:
    """A table-wide check names the schema, not a column: name its columns and carry their raw values instead."""
    columns_of = _frame_check_columns(schema)
    frame_level = pl.col("column_name") == schema.name
    named = located.filter(~frame_level)
    parts = [named]
    for check, group in located.filter(frame_level).group_by("check_name"):
        columns = columns_of.get(str(check[0]), [])
        if not columns:
            parts.append(group)
            continue
        values = rows.select(
            "__position", pl.concat_str([pl.col(c).fill_null("") for c in columns], separator=",")
        )
        values = values.rename({values.columns[1]: "__values"})
        parts.append(
            group.join(values, on="__position", how="left").select(
                "__position",
                pl.lit(",".join(columns)).alias("column_name"),
                "check_name",
                pl.col("__values").alias("raw_value"),
            )
        )
    return pl.concat(parts)


class FileLevelError(Exception):
    """A failure that concerns a whole file (a missing column, an unreadable file).

    `rows` is the file as far as it could be read (text, with `x_source_row`), when it could: a frame, or for a
    file read in chunks a function giving them again; the books then count its rows and cost as read and
    quarantined instead of knowing nothing of them.
    """

    def __init__(
        self, column: str | None, check: str, message: str, rows: pl.DataFrame | RowChunks | None = None
    ) -> None:
        super().__init__(message)
        self.column = column
        self.check = check
        self.message = message
        self.rows = rows

    def row_chunks(self) -> Iterator[pl.DataFrame] | None:
        """The rows as chunks (a large file's are read again, chunk by chunk, only when asked), or None."""
        if self.rows is None:
            return None
        if isinstance(self.rows, pl.DataFrame):
            return iter([self.rows])
        return self.rows()

    def record(self) -> pl.DataFrame:
        """The file's one quarantine record: no row number, the column and check that failed."""
        return pl.DataFrame(
            {
                "row_number": [None],
                "column_name": [self.column],
                "check_name": [self.check],
                "raw_value": [None],
                "source_file": [None],
            },
            schema=QUARANTINE_SCHEMA,
        )


def missing_columns_error(file_label: str, missing: list[str], hint: str = "") -> FileLevelError:
    """The file-level failure for required columns a file lacks, naming the file and every missing column
    (`hint`: a likely cause, such as another delimiter, appended to the message)."""
    names = ", ".join(repr(name) for name in missing)
    noun = f"required column {names} is" if len(missing) == 1 else f"required columns {names} are"
    return FileLevelError(",".join(missing), "column_present", f"{file_label}: {noun} missing{hint}")
