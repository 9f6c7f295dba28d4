"""Land one invoice month of the GCP billing export: pull it from BigQuery, map it to FOCUS, validate, write.

The invoice month is the unit of replacement (Google rewrites past days for a while), so all of a month's rows
land as one input of the state file and a re-pulled month replaces the previous pull in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from finrecon.connectors import gcp_bigquery
from finrecon.connectors._files import DEFAULT_CHUNK_ROWS
from finrecon.core.sql_text import identifier
from finrecon.models.config import GcpBigQuerySource
from finrecon.models.quarantine import FILE_COLUMN, ROW_COLUMN
from finrecon.warehouse.landing import FileLanding, ReconciliationError, land_charges
from finrecon.warehouse.models_runner import landing_model
from finrecon.warehouse.run import PlannedFile


def _chunks(table: pa.Table, chunk_rows: int) -> Iterator[tuple[int, pa.Table]]:
    """The pulled rows in slices of `chunk_rows` (zero-copy), each with the number of rows before it; at least one."""
    for offset in range(0, max(table.num_rows, 1), chunk_rows):
        yield offset, table.slice(offset, chunk_rows)


def lines_to_focus(lines: pa.Table, label: str, offset: int = 0) -> pl.DataFrame:
    """Flat export lines in FOCUS columns, one output row per line (the staging SQL applied at landing);
    `offset`: lines of the month before these."""
    numbered = lines.append_column(
        ROW_COLUMN, pa.array(range(offset + 1, offset + lines.num_rows + 1), pa.int64())
    )
    numbered = numbered.append_column(FILE_COLUMN, pa.array([label] * lines.num_rows, pa.string()))
    con = duckdb.connect()
    try:
        con.execute("set enable_progress_bar = false")
        con.register("gcp_billing_lines", numbered)
        mapped = con.sql(landing_model("stg_gcp__billing_export")).pl()
    finally:
        con.close()
    if mapped.height != lines.num_rows:
        raise ReconciliationError(
            f"{label}: mapping to FOCUS changed the row count {lines.num_rows} → {mapped.height}"
        )
    return mapped


def focus_rows(table: pa.Table, label: str, offset: int = 0) -> pl.DataFrame:
    """Rows of Google's FOCUS export as delivered (nested columns such as a repeated Tags as JSON text)."""
    con = duckdb.connect()
    try:
        con.register("focus_export", table)
        described = con.execute("describe select * from focus_export").fetchall()
        projections = []
        for name, dtype, *_ in described:
            quoted = identifier(str(name))
            kind = str(dtype).upper().replace('"', "")
            if kind.startswith(
                "STRUCT(KEY VARCHAR, VALUE VARCHAR)[]"
            ):  # labels-style key/value list: an object
                projections.append(f"cast(to_json(map_from_entries({quoted})) as varchar) as {quoted}")
            elif kind.startswith(("MAP", "STRUCT")) or kind.endswith("]"):
                projections.append(f"cast(to_json({quoted}) as varchar) as {quoted}")
            else:
                projections.append(quoted)
        frame = con.sql(f"select {', '.join(projections)} from focus_export").pl()
    finally:
        con.close()
    return frame.with_row_index(ROW_COLUMN, offset=offset + 1).with_columns(
        pl.col(ROW_COLUMN).cast(pl.Int64), pl.lit(label).alias(FILE_COLUMN)
    )


def month_label(source: GcpBigQuerySource, invoice_month: str) -> str:
    return f"bq://{source.table_id}?invoice.month={invoice_month}"


def land_gcp_month(
    planned: PlannedFile,
    *,
    lake_root: Path,
    run_id: str,
    max_failure_ratio: float,
    today: date,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> FileLanding:
    """Pull one invoice month and land it; a failing query fails this month alone."""
    source = planned.source
    assert isinstance(source, GcpBigQuerySource)
    if planned.problem is not None:
        return planned.failed(planned.problem)
    assert planned.invoice_month is not None  # planned with one unless it has a problem
    try:
        client = gcp_bigquery.bigquery_client(source)
        lines = gcp_bigquery.pull_month(client, source, planned.invoice_month, today)
    except gcp_bigquery.BigQueryError as err:
        return planned.failed(str(err))
    label = month_label(source, planned.invoice_month)
    to_focus = focus_rows if source.export_type == "focus" else lines_to_focus

    def load() -> Iterator[pl.DataFrame]:
        for offset, chunk in _chunks(lines, chunk_rows):
            yield to_focus(chunk, label, offset)

    return land_charges(
        load,
        source=source.name,
        relative_path=planned.relative_path,
        key=planned.file_key,
        source_kind=f"gcp_bigquery:{source.export_type}{':push_down' if source.push_down else ''}",
        lake_root=lake_root,
        run_id=run_id,
        max_failure_ratio=max_failure_ratio,
    )
