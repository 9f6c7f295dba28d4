"""ERP source `files`: PO headers, PO lines and FX rates extracted as CSV or Parquet."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from finrecon.connectors._files import read_as_text
from finrecon.models.quarantine import ROW_COLUMN


def read_erp_file(path: Path) -> pl.DataFrame:
    """One ERP extract as text, column names lower-cased and trimmed, with a 1-based `x_source_row`."""
    frame = read_as_text(path, null_values=["", "NULL", "null"])
    return frame.rename({c: c.strip().lower() for c in frame.columns if c != ROW_COLUMN})
