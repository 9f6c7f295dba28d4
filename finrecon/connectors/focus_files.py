"""Source `focus_files`: a folder of FOCUS files from any provider (CSV, CSV.GZ, Parquet; FOCUS 1.0–1.2)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from finrecon.connectors._files import (
    CSV_SUFFIXES,
    DEFAULT_CHUNK_ROWS,
    PARQUET_SUFFIXES,
    file_format,
    iter_delivered,
)
from finrecon.models.focus import COLUMN_ALIASES, FOCUS_COLUMNS, RESERVED_COLUMNS
from finrecon.models.quarantine import ROW_COLUMN, FileLevelError

_CANONICAL = {name.lower(): name for name in FOCUS_COLUMNS} | {
    k.lower(): v for k, v in COLUMN_ALIASES.items()
}


def discover(folder: Path) -> list[Path]:
    """Every FOCUS file under `folder` (recursive, hidden files skipped), in a stable order."""
    found = [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and file_format(p)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(found)


def nothing_found(folder: Path, label: str) -> str:
    """Why a folder gave no data files, for a message: what counts as one, and what the folder holds instead."""
    others = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
    held = f"it holds {others} other file(s)" if others else "it is empty"
    suffixes = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
    return (
        f"folder {label}: no data files ({suffixes}, hidden files skipped) in it or below it, {held}; check the "
        "source's `path` and that the export still writes there"
    )


def canonical_column(name: str) -> str:
    """FOCUS name for a delivered column (case-insensitive, renamed across versions); others get an `x_` prefix."""
    known = _CANONICAL.get(name.strip().lower())
    if known:
        return known
    return name if name.startswith("x_") else f"x_{name}"


def iter_focus_file(
    path: Path, null_values: list[str], chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pl.DataFrame]:
    """One FOCUS file as delivered, in chunks of about `chunk_rows` rows (see `iter_delivered`), with
    canonical names and `x_source_row`.

    Two delivered columns that land under one name (compared ignoring case, as DuckDB compares them) or a column
    named like one the pipeline adds fail the file, naming the column; the error carries the rows for the books.
    """
    chunks = iter_delivered(path, null_values, chunk_rows)
    first = next(chunks)
    renamed = {c: canonical_column(c) for c in first.columns if c != ROW_COLUMN}
    by_key: dict[str, list[str]] = {}
    for delivered, target in renamed.items():
        by_key.setdefault(target.lower(), []).append(delivered)

    def counted() -> Iterator[pl.DataFrame]:
        return (_unambiguous(chunk, renamed) for chunk in iter_delivered(path, null_values, chunk_rows))

    clashes = sorted(names for names in by_key.values() if len(names) > 1)
    if clashes:
        names = clashes[0]
        target = renamed[names[0]]
        spelled = " and ".join(repr(name) for name in names)
        message = f"{path.name}: column {target!r} appears twice (delivered as {spelled})"
        raise FileLevelError(target, "unique_column", message, counted)
    reserved = sorted(t for t in renamed.values() if t.lower() in RESERVED_COLUMNS)
    if reserved:
        message = f"{path.name}: column {reserved[0]!r} is reserved for a column the pipeline adds; rename it"
        raise FileLevelError(reserved[0], "not_reserved_column", message, counted)
    for chunk in itertools.chain([first], chunks):
        yield chunk.rename(renamed)


def _unambiguous(frame: pl.DataFrame, renamed: dict[str, str]) -> pl.DataFrame:
    """The frame with every column renamed that can be: what the books of a failed file are counted from."""
    keys = [target.lower() for target in renamed.values()]
    safe = {
        delivered: target
        for delivered, target in renamed.items()
        if keys.count(target.lower()) == 1 and target.lower() not in RESERVED_COLUMNS
    }
    return frame.select([c for c in frame.columns if c in safe or c == ROW_COLUMN]).rename(safe)
