"""Source `focus_files`: a folder of FOCUS files from any provider (CSV, CSV.GZ, Parquet; FOCUS 1.0–1.2)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from finrecon.connectors._files import file_format, read_delivered
from finrecon.models.focus import COLUMN_ALIASES, FOCUS_COLUMNS
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


def canonical_column(name: str) -> str:
    """FOCUS name for a delivered column (case-insensitive, renamed across versions); others get an `x_` prefix."""
    known = _CANONICAL.get(name.strip().lower())
    if known:
        return known
    return name if name.startswith("x_") else f"x_{name}"


def read_focus_file(path: Path, null_values: list[str]) -> pl.DataFrame:
    """One FOCUS file as delivered (CSV as text, Parquet typed) with canonical names and `x_source_row`."""
    frame = read_delivered(path, null_values)
    renamed = {c: canonical_column(c) for c in frame.columns if c != ROW_COLUMN}
    targets = list(renamed.values())
    clashes = sorted({t for t in targets if targets.count(t) > 1})
    if clashes:
        raise FileLevelError(clashes[0], "unique_column", f"{path.name}: column {clashes[0]!r} appears twice")
    return frame.rename(renamed)
