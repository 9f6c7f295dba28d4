"""Land one billing period of an AWS export: fetch its manifest's files, map them to FOCUS, validate, write.

A period is the unit of replacement: its manifest names every data file, so all of them land together as one
input of the state file, and a restated month replaces the previous delivery's parts in one transaction. CUR
rows are mapped to FOCUS by the staging SQL applied at landing (`stg_aws__cur_legacy` → `stg_aws__cur2`), so
the validation, quarantine and books are the same as for any FOCUS file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

from finrecon.connectors import aws_cur
from finrecon.connectors._files import DEFAULT_CHUNK_ROWS, remove_downloads
from finrecon.models.aws_cur import CUR2_COLUMNS
from finrecon.models.config import AwsCurSource
from finrecon.warehouse.landing import FileLanding, ReconciliationError, land_charges
from finrecon.warehouse.models_runner import landing_model
from finrecon.warehouse.run import PlannedFile


def cur_to_focus(delivered: pl.DataFrame, export_type: str) -> pl.DataFrame:
    """CUR rows (CUR 2.0 or legacy, as read; one chunk of a delivery) in FOCUS columns, one output row per input row."""
    missing = [pl.lit(None, dtype=pl.Utf8).alias(c) for c in CUR2_COLUMNS if c not in delivered.columns]
    frame = delivered.with_columns(missing).with_columns(pl.col("resource_tags").cast(pl.Utf8))
    con = duckdb.connect()
    try:
        con.execute("set enable_progress_bar = false")
        if export_type == "cur_legacy":  # a view: the legacy rows are read once, by the CUR 2.0 mapping
            con.register("cur_legacy_delivery", frame.to_arrow())
            con.execute(f"create temp view cur2_delivery as {landing_model('stg_aws__cur_legacy')}")
        else:
            con.register("cur2_delivery", frame.to_arrow())
        mapped = con.sql(landing_model("stg_aws__cur2")).pl()
    finally:
        con.close()
    if mapped.height != delivered.height:
        raise ReconciliationError(
            f"CUR to FOCUS mapping changed the row count: {delivered.height} → {mapped.height}"
        )
    return mapped


def land_aws_period(
    planned: PlannedFile,
    *,
    download_root: Path,
    lake_root: Path,
    run_id: str,
    max_failure_ratio: float,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> FileLanding:
    """Fetch one period's delivery (the manifest it was planned from) and land it; a bad delivery fails alone."""
    source = planned.source
    assert isinstance(source, AwsCurSource)
    if planned.problem is not None:
        return planned.failed(planned.problem)
    assert planned.manifest is not None  # planned with one unless it has a problem
    folder = download_root / source.name / planned.manifest.period
    try:
        client = aws_cur.s3_client(source)
        delivery = aws_cur.read_manifest(client, source, planned.manifest)
        files = aws_cur.download_delivery(client, source, delivery, folder)
    except aws_cur.DeliveryError as err:
        return planned.failed(str(err))

    if not files:
        message = f"manifest s3://{source.bucket}/{planned.manifest.key} lists no data files (an empty month)"
        return planned.failed(message + "; not loaded")

    def load() -> Iterator[pl.DataFrame]:
        for delivered in aws_cur.iter_delivery_files(source, files, chunk_rows):
            yield delivered if source.export_type == "focus" else cur_to_focus(delivered, source.export_type)

    landing = land_charges(
        load,
        source=source.name,
        relative_path=planned.relative_path,
        key=planned.file_key,
        source_kind=f"aws_cur:{source.export_type}",
        lake_root=lake_root,
        run_id=run_id,
        max_failure_ratio=max_failure_ratio,
    )
    if landing.status == "landed":
        remove_downloads(folder)
    return landing
