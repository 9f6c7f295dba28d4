"""Land one month of an Azure Cost Management export: fetch its current run's blobs, map to FOCUS, validate, write.

The month is the unit of replacement (Azure rewrites the previous month in the first days of the next), so all of
a month's blobs land as one input of the state file and a re-delivered month replaces the previous one at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

from finrecon.connectors import azure_exports, azure_query
from finrecon.connectors._files import DEFAULT_CHUNK_ROWS, remove_downloads
from finrecon.models.azure_cost import AZURE_COST_COLUMNS, AZURE_FOCUS_EXTRA_COLUMNS
from finrecon.models.config import AzureExportSource, AzureQuerySource
from finrecon.models.quarantine import FILE_COLUMN, ROW_COLUMN
from finrecon.warehouse.landing import Books, FileLanding, ReconciliationError, land_charges
from finrecon.warehouse.models_runner import landing_model
from finrecon.warehouse.run import PlannedFile


def _with_columns(frame: pl.DataFrame, names: tuple[str, ...]) -> pl.DataFrame:
    """`frame` with its columns matched case-insensitively to `names` (as text), the absent ones NULL."""
    lower = {c.lower(): c for c in frame.columns}
    renamed = {lower[n.lower()]: n for n in names if n.lower() in lower and lower[n.lower()] != n}
    frame = frame.rename(renamed)
    present = [pl.col(n).cast(pl.Utf8) for n in names if n in frame.columns]
    missing = [pl.lit(None, dtype=pl.Utf8).alias(n) for n in names if n not in frame.columns]
    return frame.with_columns(*present, *missing)


def export_to_focus(delivered: pl.DataFrame, export_type: str) -> pl.DataFrame:
    """An export month's rows in FOCUS columns, one output row per input row (staging SQL applied at landing)."""
    if export_type == "FocusCost":
        relation, model = "azure_focus_delivery", "stg_azure__focus_export"
        frame = _with_columns(delivered, ("SubAccountId", *AZURE_FOCUS_EXTRA_COLUMNS))
    else:
        relation, model = "azure_cost_delivery", "stg_azure__cost_export"
        frame = _with_columns(delivered, AZURE_COST_COLUMNS)
    con = duckdb.connect()
    try:
        con.execute("set enable_progress_bar = false")
        con.register(relation, frame.to_arrow())
        mapped = con.sql(landing_model(model)).pl()
    finally:
        con.close()
    if mapped.height != delivered.height:
        raise ReconciliationError(
            f"Azure export mapping changed the row count {delivered.height} → {mapped.height}"
        )
    return mapped.select(
        [c for c in mapped.columns if c != "x_ResourceGroupName"] or [ROW_COLUMN, FILE_COLUMN]
    )


def land_azure_month(
    planned: PlannedFile,
    *,
    download_root: Path,
    lake_root: Path,
    run_id: str,
    max_failure_ratio: float,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> FileLanding:
    """Fetch one month's current run and land it; a bad delivery fails this month alone."""
    source = planned.source
    assert isinstance(source, AzureExportSource)
    if planned.problem is not None:
        return planned.failed(planned.problem)
    assert planned.azure_month is not None  # planned with one unless it has a problem
    folder = download_root / source.name / planned.azure_month.period
    try:
        container = azure_exports.container_client(source)
        manifest = azure_exports.latest_manifest(container, source, planned.azure_month)
        azure_exports.check_supported(manifest, source)
        files = azure_exports.download_month(container, source, manifest, folder)
    except azure_exports.ExportError as err:
        return planned.failed(str(err))
    if not files:
        message = f"azure://{source.container}/{manifest.name} lists no blobs (an empty month); not loaded"
        return planned.failed(message)

    def load() -> Iterator[pl.DataFrame]:
        for chunk in azure_exports.iter_month(source, manifest, files, chunk_rows):
            yield export_to_focus(chunk, manifest.export_type)

    landing = land_charges(
        load,
        source=source.name,
        relative_path=planned.relative_path,
        key=planned.file_key,
        source_kind=f"azure_export:{manifest.export_type}:{manifest.data_version}",
        lake_root=lake_root,
        run_id=run_id,
        max_failure_ratio=max_failure_ratio,
    )
    if landing.status == "landed":
        remove_downloads(folder)
    return landing


def _scope_ids(scope: str) -> tuple[str | None, str | None]:
    """(billing account id, subscription id) a Cost Management scope names."""
    parts = scope.split("/")
    lowered = [p.lower() for p in parts]
    account = parts[lowered.index("billingaccounts") + 1] if "billingaccounts" in lowered else None
    subscription = parts[lowered.index("subscriptions") + 1] if "subscriptions" in lowered else None
    return account, subscription


_QUERY_SCHEMA = {
    "usage_date": pl.Utf8,
    "cost": pl.Float64,
    "currency": pl.Utf8,
    "billing_account_id": pl.Utf8,
    "subscription_id": pl.Utf8,
    "resource_group": pl.Utf8,
    "service_name": pl.Utf8,
    "tags": pl.Utf8,
    ROW_COLUMN: pl.Int64,
}


def query_rows_frame(rows: list[dict[str, object]], source: AzureQuerySource, month: str) -> pl.DataFrame:
    """The API's daily rows as one frame: usage_date, cost, currency, subscription, resource group, service, tags.

    Columns are looked up case-insensitively (Azure does not promise to echo the requested case); a TagKey grouping
    arrives as a `TagKey` and a `TagValue` column, both NULL for cost without the tag.
    """
    account, subscription = _scope_ids(source.scope)
    cost_column = "pretaxcost" if source.dataset == "ActualCost" else "cost"
    records = []
    for number, original in enumerate(rows, start=1):
        row = {str(k).lower(): v for k, v in original.items()}
        day = str(row.get("usagedate", ""))
        tag = {str(row["tagkey"]): str(row.get("tagvalue") or "")} if row.get("tagkey") else None
        records.append({
            "usage_date": f"{day[:4]}-{day[4:6]}-{day[6:8]}" if len(day) == 8 else day,
            "cost": row.get(cost_column),
            "currency": row.get("currency"),
            "billing_account_id": account or subscription or source.scope,
            "subscription_id": str(row.get("subscriptionid") or subscription or "") or None,
            "resource_group": row.get("resourcegroupname"),
            "service_name": row.get("servicename"),
            "tags": json.dumps(tag) if tag else None,
            ROW_COLUMN: number,
        })  # fmt: skip
    return pl.DataFrame(records, schema=_QUERY_SCHEMA).with_columns(pl.lit(month).alias("month"))


def query_rows_to_focus(frame: pl.DataFrame, source: AzureQuerySource, label: str) -> pl.DataFrame:
    """API rows as FOCUS charges (for an estate without exports): daily Usage rows of the scope."""
    month_start = pl.col("month") + "-01"
    return frame.select(
        pl.lit("Microsoft").alias("ProviderName"),
        pl.lit("Microsoft").alias("InvoiceIssuerName"),
        pl.col("billing_account_id").alias("BillingAccountId"),
        pl.col("subscription_id").alias("SubAccountId"),
        pl.col("currency").alias("BillingCurrency"),
        month_start.alias("BillingPeriodStart"),
        pl.col("usage_date").alias("ChargePeriodStart"),
        pl.col("cost").alias("BilledCost"),
        pl.col("cost").alias("EffectiveCost"),
        pl.lit("Usage").alias("ChargeCategory"),
        pl.col("service_name").alias("ServiceName"),
        pl.col("tags").alias("Tags"),
        pl.col("resource_group").alias("x_resource_group"),
        pl.lit(source.dataset).alias("x_azure_dataset"),
        pl.lit(label).alias(FILE_COLUMN),
        pl.col(ROW_COLUMN),
    )


def land_azure_query_month(
    planned: PlannedFile, *, lake_root: Path, run_id: str, max_failure_ratio: float
) -> FileLanding:
    """Query one month; land its rows as charges, or keep them as the reference the exports are reconciled with."""
    source = planned.source
    assert isinstance(source, AzureQuerySource) and planned.query_month is not None
    month = planned.query_month.strftime("%Y-%m")
    try:
        rows = azure_query.query_month(azure_query.cost_client(source), source, planned.query_month)
    except azure_query.QueryError as err:
        return planned.failed(str(err))
    frame = query_rows_frame(rows, source, month)
    if not source.land_as_charges:
        reference = frame.select(
            pl.lit(source.name).alias("source"), pl.lit(planned.file_key).alias("file_key"),
            pl.lit(source.scope).alias("scope"), pl.lit(source.dataset).alias("dataset"),
            pl.col("usage_date").str.to_date().alias("usage_date"), "currency", "billing_account_id",
            "subscription_id", "cost", pl.lit(run_id).alias("run_id"),
        )  # fmt: skip
        return FileLanding(
            source.name, planned.relative_path, planned.file_key, "landed", Books(), reference=reference
        )
    return land_charges(
        lambda: [query_rows_to_focus(frame, source, planned.relative_path)],
        source=source.name,
        relative_path=planned.relative_path,
        key=planned.file_key,
        source_kind=f"azure_query:{source.dataset}",
        lake_root=lake_root,
        run_id=run_id,
        max_failure_ratio=max_failure_ratio,
    )
