"""`finrecon export --parquet DIR`: every published table and view as one Parquet file each, for tools that read
Parquet but not DuckDB (Spark, pandas without duckdb, BI tools). The files are a snapshot of one publication."""

from __future__ import annotations

from pathlib import Path

import duckdb

from finrecon.core.sql_text import identifier
from finrecon.warehouse.dictionary import published_schema


def export_parquet(database: Path, out_dir: Path) -> list[Path]:
    """Write `<out_dir>/<table>.parquet` for every table and view (`charges` included: read from the lake)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database), read_only=True)
    written = []
    try:
        for name in published_schema(con):
            target = out_dir / f"{name}.parquet"
            partial = target.with_name(f".{target.name}.partial")  # a reader never sees half a file
            con.execute(
                f"copy (select * from {identifier(name)}) to ? (format parquet, compression zstd)",
                [partial.as_posix()],
            )
            partial.replace(target)
            written.append(target)
    finally:
        con.close()
    return written
