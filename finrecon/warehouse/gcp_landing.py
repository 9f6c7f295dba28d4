"""Land one invoice month of the GCP billing export: pull it from BigQuery, map it to FOCUS, validate, write.

The invoice month is the unit of replacement (Google rewrites past days for a while), so all of a month's rows
land as one input of the state file and a re-pulled month replaces the previous pull in one transaction.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from finrecon.connectors import gcp_bigquery
from finrecon.models.config import GcpBigQuerySource
from finrecon.models.quarantine import FILE_COLUMN, ROW_COLUMN
from finrecon.warehouse.landing import FileLanding, ReconciliationError, failed_landing, land_charges
from finrecon.warehouse.models_runner import landing_model
from finrecon.warehouse.run import PlannedFile


def lines_to_focus(lines: pa.Table, label: str) -> pl.DataFrame:
    """Flat export lines in FOCUS columns, one output row per line (the staging SQL applied at landing)."""
    numbered = lines.append_column(ROW_COLUMN, pa.array(range(1, lines.num_rows + 1), pa.int64()))
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


def month_label(source: GcpBigQuerySource, invoice_month: str) -> str:
    return f"bq://{source.table_id}?invoice.month={invoice_month}"


def land_gcp_month(
    planned: PlannedFile, *, lake_root: Path, run_id: str, max_failure_ratio: float, today: date
) -> FileLanding:
    """Pull one invoice month and land it; a failing query fails this month alone."""
    source = planned.source
    assert isinstance(source, GcpBigQuerySource)
    if planned.problem is not None or planned.invoice_month is None:
        return failed_landing(
            source.name, planned.relative_path, planned.problem or "no month", planned.file_key
        )
    try:
        client = gcp_bigquery.bigquery_client(source)
        lines = gcp_bigquery.pull_month(client, source, planned.invoice_month, today)
    except gcp_bigquery.BigQueryError as err:
        return failed_landing(source.name, planned.relative_path, str(err), planned.file_key)
    label = month_label(source, planned.invoice_month)
    return land_charges(
        lambda: lines_to_focus(lines, label),
        source=source.name,
        relative_path=planned.relative_path,
        key=planned.file_key,
        source_kind="gcp_bigquery:push_down" if source.push_down else "gcp_bigquery",
        lake_root=lake_root,
        run_id=run_id,
        max_failure_ratio=max_failure_ratio,
    )
