"""`finrecon bench azure`: Azure Cost Management export landing from a local Azurite against focus-converter.

The generator's Microsoft rows (same values as `finrecon bench run`'s) are written as the parts of one export
month: a FocusCost export (FOCUS 1.0r2 columns, `x_ResourceGroupName`, Tags JSON) or an ActualCost cost-details
export (~50 PascalCase columns, `Date` as MM/DD/YYYY, brace-less Tags), as gzip-CSV or Snappy Parquet parts. They
are laid out in Azurite exactly as tests/azure_rig.py's `put_cost_export` lays out an export run:
`<root>/<export>/20261001-20261031/<runId>/part_<i>_0001.<ext>`, then `manifest.json` (the commit marker) last,
with `byteCount` and `dataRowCount` per blob. Row semantics as `finrecon bench cur`: commitment Used rows are
reservation-covered usage (cost 0 in ActualCost), Unused rows UnusedReservation, Purchase rows a reservation
Purchase, the rest on-demand Usage.

Then, each in its own process: the nightly flow with one `azure_export` source pointing at Azurite (timed by its
land stage: download + read + map + validate + write) and, for ActualCost, the FinOps Foundation's
focus-converter 1.0.0 (`--provider azure`, which maps cost-details columns) converting the same rows from one
uncompressed CSV. focus-converter has no provider for FocusCost exports (they are FOCUS already), so that shape
has no peer.
"""

from __future__ import annotations

import calendar
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

import finrecon
from finrecon.bench.cur import _free_port, ensure_peer, print_flow_and_peer, timed_process
from finrecon.bench.generate import PROVIDERS, connect_generator, rows_sql, write_erp
from finrecon.core.sql_text import identifier

ExportType = Literal["FocusCost", "ActualCost"]
FileFormat = Literal["csv.gz", "parquet"]
CONTAINER = "bench-billing"
ROOT = "exports"
EXPORT_NAME = "bench-azure"
MONTH_START = date(2026, 10, 1)
RUN_ID = "bench-run-0001"
SUBMITTED_TIME = "2026-11-02T03:00:00Z"
DATA_VERSIONS = {"FocusCost": "1.0r2", "ActualCost": "2021-10-01"}
# As tests/azure_rig.py (the manifest of Microsoft's documented example).
MANIFEST_VERSION = "2024-04-01"
EXPORT_API_VERSION = "2023-07-01-preview"
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000001"
# Azure's (fileFormat, compressionMode, part extension) per format.
FORMATS: dict[str, tuple[str, str, str]] = {
    "csv.gz": ("Csv", "Gzip", "csv.gz"),
    "parquet": ("Parquet", "Snappy", "snappy.parquet"),
}
CSV_GZ_PART_OPTIONS = "(format csv, header true, compression gzip)"
PARQUET_PART_OPTIONS = "(format parquet, compression snappy, row_group_size 122880)"
PEER_CSV_OPTIONS = "(format csv, header true)"

# The development account Azurite accepts (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

_SUBSCRIPTION = "'00000000-0000-4000-8000-0000000000' || right(SubAccountId, 2)"
_GROUP = "'rg-app-' || right(SubAccountId, 2)"
_COMMITTED = "CommitmentDiscountStatus is not null or ChargeCategory = 'Purchase'"
_BENEFIT = (
    "'/providers/Microsoft.Capacity/reservationOrders/' || CommitmentDiscountId || '/reservations/' || "
    "CommitmentDiscountId"
)

# ActualCost (cost details) columns as (name, DuckDB expression over the generated row): the names staging reads
# (EA/MCA, matched case-insensitively) and those focus-converter's azure provider reads (BillingCurrencyCode,
# CostInBillingCurrency, benefitId, ...), all text as in the CSV.
ACTUAL_COST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("InvoiceId", "null"),
    ("BillingAccountId", "'7000001'"),
    ("BillingAccountName", "BillingAccountName"),
    ("BillingProfileId", "'BP-7000001'"),
    ("BillingProfileName", "'Bench billing profile'"),
    ("InvoiceSectionId", "'IS-01'"),
    ("InvoiceSectionName", "'Bench invoice section'"),
    ("BillingPeriodStartDate", "strftime(BillingPeriodStart, '%m/%d/%Y')"),
    ("BillingPeriodEndDate", "strftime(BillingPeriodEnd - interval 1 day, '%m/%d/%Y')"),
    ("SubscriptionId", _SUBSCRIPTION),
    ("SubscriptionName", "'Subscription ' || SubAccountId"),
    ("Date", "strftime(ChargePeriodStart, '%m/%d/%Y')"),
    ("ProductName", "ChargeDescription"),
    ("MeterId", "md5(SkuId)"),
    ("MeterCategory", "ServiceName"),
    ("MeterSubCategory", "'Standard'"),
    ("MeterRegion", "RegionId"),
    ("MeterName", "SkuId"),
    ("ServiceFamily", "ServiceCategory"),
    ("Quantity", "PricingQuantity"),
    ("UnitOfMeasure", "'1 Hour'"),
    ("EffectivePrice", "BilledCost"),
    ("UnitPrice", "ListCost"),
    ("PayGPrice", "ListCost"),
    ("CostInBillingCurrency", "BilledCost"),
    ("CostInPricingCurrency", "BilledCost"),
    ("PaygCostInBillingCurrency", "ListCost"),
    ("BillingCurrencyCode", "BillingCurrency"),
    ("PricingCurrency", "BillingCurrency"),
    ("ExchangeRatePricingToBilling", "1.0"),
    ("ResourceLocation", "RegionId"),
    ("AvailabilityZone", "null"),
    ("ConsumedService", "'Microsoft.Compute'"),
    ("ResourceId", f"'/subscriptions/' || {_SUBSCRIPTION} || '/resourceGroups/' || {_GROUP} || "
                   "'/providers/Microsoft.Compute/virtualMachines/' || ResourceId"),
    ("ResourceName", "ResourceId"),
    ("ResourceGroup", _GROUP),
    ("ServiceInfo1", "null"),
    ("ServiceInfo2", "null"),
    ("AdditionalInfo", "'{\"ServiceType\": \"Standard_D2s_v3\", \"VCPUs\": 2}'"),
    ("Tags", "substr(Tags, 2, length(Tags) - 2)"),
    ("CostCenter", "null"),
    ("ReservationId", f"case when {_COMMITTED} then CommitmentDiscountId end"),
    ("ReservationName", f"case when {_COMMITTED} then CommitmentDiscountId end"),
    ("ProductOrderId", f"case when {_COMMITTED} then CommitmentDiscountId end"),
    ("ProductOrderName", f"case when {_COMMITTED} then 'Reserved VM Instance, Standard_D2s_v3' end"),
    ("OfferId", "'MS-AZR-0017P'"),
    ("IsAzureCreditEligible", "'True'"),
    ("Term", f"case when {_COMMITTED} then '12' end"),
    ("PublisherName", "'Microsoft'"),
    ("PublisherType", "'Azure'"),
    ("PlanName", "null"),
    ("ChargeType", "case when CommitmentDiscountStatus = 'Unused' then 'UnusedReservation' "
                   "when ChargeCategory = 'Purchase' then 'Purchase' else 'Usage' end"),
    ("Frequency", "case when ChargeCategory = 'Purchase' then 'Recurring' else 'UsageBased' end"),
    ("PricingModel", f"case when {_COMMITTED} then 'Reservation' else 'OnDemand' end"),
    ("benefitId", f"case when {_COMMITTED} then {_BENEFIT} end"),
    ("benefitName", f"case when {_COMMITTED} then CommitmentDiscountId end"),
)  # fmt: skip

_FOCUS_TIMESTAMPS = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")


def azure_select(export_type: ExportType, fmt: FileFormat, start: int, stop: int) -> str:
    """A SELECT of the Microsoft rows `start`..`stop` as the export's columns. FocusCost: the generator's FOCUS
    columns plus `x_ResourceGroupName` (in CSV, timestamps as Azure writes them: `2026-10-01T00:00:00Z`);
    ActualCost: ACTUAL_COST_COLUMNS."""
    rows = rows_sql(PROVIDERS[1], start, stop)
    if export_type == "ActualCost":
        cells = ", ".join(f"{expr} as {identifier(name)}" for name, expr in ACTUAL_COST_COLUMNS)
        return f"select {cells}\nfrom ({rows})"
    replaced = ""
    if fmt == "csv.gz":
        replaced = " replace (" + ", ".join(
            f"strftime({identifier(name)}, '%Y-%m-%dT%H:%M:%SZ') as {identifier(name)}"
            for name in _FOCUS_TIMESTAMPS
        ) + ")"  # fmt: skip
    return f"select *{replaced}, {_GROUP} as x_ResourceGroupName\nfrom ({rows})"


@dataclass(frozen=True)
class AzureData:
    """A generated export month on disk: its parts (in order, with their rows), the peer's CSV, the ERP folder."""

    export_type: str
    fmt: str
    rows: int
    rows_per_part: int
    parts: list[tuple[str, int]]
    peer_csv: str | None
    erp_dir: str


def part_name(fmt: FileFormat, index: int) -> str:
    """Azure's part names (0-based): `part_0_0001.csv.gz`, `part_1_0001.snappy.parquet`."""
    return f"part_{index}_0001.{FORMATS[fmt][2]}"


def _copy_part(
    con: Any, export_type: ExportType, fmt: FileFormat, start: int, stop: int, target: Path
) -> None:
    if fmt == "parquet":
        con.execute(
            f"copy ({azure_select(export_type, fmt, start, stop)}) to ? {PARQUET_PART_OPTIONS}",
            [target.as_posix()],
        )
    else:
        con.execute(
            f"copy ({azure_select(export_type, fmt, start, stop)}) to ? {CSV_GZ_PART_OPTIONS}",
            [target.as_posix()],
        )


def write_azure_files(
    folder: Path,
    rows: int,
    export_type: ExportType,
    fmt: FileFormat = "csv.gz",
    rows_per_part: int | None = None,
    peer_csv: bool = True,
) -> AzureData:
    """Write the month's parts (streaming DuckDB COPYs, bounded memory), for an ActualCost peer all rows as one
    uncompressed CSV of the same columns, and the ERP extract the flow needs."""
    per_part = rows_per_part or rows
    parts_dir = folder / "parts"
    shutil.rmtree(parts_dir, ignore_errors=True)
    parts_dir.mkdir(parents=True)
    con = connect_generator(folder / ".tmp")
    parts = []
    for index, start in enumerate(range(0, rows, per_part)):
        stop = min(start + per_part, rows)
        target = parts_dir / part_name(fmt, index)
        _copy_part(con, export_type, fmt, start, stop, target)
        parts.append((target.name, stop - start))
    peer: str | None = None
    if peer_csv and export_type == "ActualCost":
        path = folder / "peer" / "actual_cost.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"copy ({azure_select(export_type, 'csv.gz', 0, rows)}) to ? {PEER_CSV_OPTIONS}",
            [path.as_posix()],
        )
        peer = path.as_posix()
    erp_dir = folder / "erp"
    write_erp(con, erp_dir, rows)
    con.close()
    shutil.rmtree(folder / ".tmp", ignore_errors=True)
    data = AzureData(export_type, fmt, rows, per_part, parts, peer, erp_dir.as_posix())
    (folder / "generated.json").write_text(json.dumps(data.__dict__, indent=2))
    return data


def ensure_azure_files(
    folder: Path,
    rows: int,
    export_type: ExportType,
    fmt: FileFormat,
    rows_per_part: int | None,
    console: Console,
) -> AzureData:
    marker = folder / "generated.json"
    if marker.exists():
        known = json.loads(marker.read_text())
        wanted = (export_type, fmt, rows, rows_per_part or rows)
        if (known["export_type"], known["fmt"], known["rows"], known["rows_per_part"]) == wanted and (
            known["peer_csv"] is None
            if export_type == "FocusCost"
            else Path(known["peer_csv"] or "").exists()
        ):
            return AzureData(**{**known, "parts": [tuple(p) for p in known["parts"]]})
    shutil.rmtree(folder, ignore_errors=True)
    console.print(f"generating {rows:,} Microsoft rows as {export_type} {fmt} parts into {folder} …")
    return write_azure_files(folder, rows, export_type, fmt, rows_per_part)


# ---------------------------------------------------------------------------------------------------------------
# The local Blob Storage: Azurite (installed by `make azurite`), an export month laid out as tests/azure_rig.py does
# ---------------------------------------------------------------------------------------------------------------


def azurite_main() -> Path:
    """Azurite's blob service script under `.azurite/` of the project (else of the current directory)."""
    for base in (Path(finrecon.__file__).resolve().parents[1], Path.cwd()):
        main = base / ".azurite" / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
        if any((base / ".azurite").glob(".stamp-*")) and main.exists():
            return main
    raise RuntimeError("Azurite is not installed (.azurite/ is missing or incomplete): run `make azurite`")


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
    )


@contextmanager
def azurite_server(location: Path, timeout: float = 60.0) -> Iterator[str]:
    """Azurite's blob service on 127.0.0.1 (flags as tests/azure_rig.py's `start_azurite`), its data under
    `location` (emptied first and after); yields the development account's connection string; stopped on exit."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("`node` is not on PATH: Azurite (installed by `make azurite`) needs Node.js")
    main = azurite_main()
    shutil.rmtree(location, ignore_errors=True)
    location.mkdir(parents=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURITE_")}
    command = [node, str(main), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location),
               "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry"]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=location
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"Azurite exited: {log.read()[-2000:]!r}")
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", f"/{DEV_ACCOUNT}?comp=list")
                    response = conn.getresponse()
                    response.read()
                    if (response.getheader("Server") or "").startswith("Azurite"):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Azurite on port {port} did not answer within {timeout:.0f} s")
                time.sleep(0.05)
            yield connection_string(port)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            shutil.rmtree(location, ignore_errors=True)


def container_client(conn_str: str, name: str = CONTAINER) -> Any:
    """The container `name` on Azurite, created if missing (proxy settings from the environment ignored)."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(conn_str, use_env_settings=False)
    container = service.get_container_client(name)
    with suppress(ResourceExistsError):
        container.create_container()
    return container


def month_folder(root: str = ROOT) -> str:
    last = MONTH_START.replace(day=calendar.monthrange(MONTH_START.year, MONTH_START.month)[1])
    return "/".join(p for p in (root, EXPORT_NAME, f"{MONTH_START:%Y%m%d}-{last:%Y%m%d}") if p)


def upload_export(container: Any, data: AzureData, folder: Path, root: str = ROOT) -> str:
    """Put the parts, then `manifest.json` (last: the commit marker); the manifest's blob name. Layout and manifest
    as tests/azure_rig.py's `put_cost_export` (OverwritePreviousReport, no timestamp folder):
    `<root>/bench-azure/20261001-20261031/bench-run-0001/part_<i>_0001.<ext>` and `.../manifest.json`."""
    file_format, compression, _ext = FORMATS[data.fmt]
    run_folder = f"{month_folder(root)}/{RUN_ID}"
    for blob in container.list_blobs(name_starts_with=month_folder(root) + "/"):  # Azure replaces the month
        container.delete_blob(blob.name)
    blobs: list[dict[str, Any]] = []
    for name, rows in data.parts:
        path = folder / "parts" / name
        blob_name = f"{run_folder}/{name}"
        with path.open("rb") as handle:
            container.get_blob_client(blob_name).upload_blob(handle, overwrite=True, max_concurrency=2)
        blobs.append({"blobName": blob_name, "byteCount": path.stat().st_size, "dataRowCount": rows})
    last = MONTH_START.replace(day=calendar.monthrange(MONTH_START.year, MONTH_START.month)[1])
    manifest: dict[str, Any] = {
        "manifestVersion": MANIFEST_VERSION,
        "byteCount": sum(b["byteCount"] for b in blobs),
        "blobCount": len(blobs),
        "dataRowCount": sum(b["dataRowCount"] for b in blobs),
        "exportConfig": {
            "exportName": EXPORT_NAME,
            "resourceId": (
                f"/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.CostManagement/exports/{EXPORT_NAME}"
            ),
            "dataVersion": DATA_VERSIONS[data.export_type],
            "apiVersion": EXPORT_API_VERSION,
            "type": data.export_type,
            "timeFrame": "MonthToDate",
            "granularity": None,
        },
        "deliveryConfig": {
            "partitionData": True,
            "dataOverwriteBehavior": "OverwritePreviousReport",
            "fileFormat": file_format,
            "compressionMode": compression,
            "containerUri": (
                f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/finrecon-bench"
                f"/providers/Microsoft.Storage/storageAccounts/{DEV_ACCOUNT}"
            ),
            "rootFolderPath": root,
        },
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": SUBMITTED_TIME,
            "runId": RUN_ID,
            "startDate": f"{MONTH_START:%Y-%m-%d}T00:00:00",
            "endDate": f"{last:%Y-%m-%d}T00:00:00Z",
        },
        "blobs": blobs,
    }
    manifest_name = f"{run_folder}/manifest.json"
    body = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")
    container.get_blob_client(manifest_name).upload_blob(body, overwrite=True)
    return manifest_name


AZURE_CONFIG = """
[warehouse]
published_path = "out/finops.duckdb"
lake_path = "out/lake"
state_path = "out/state.duckdb"

[[sources]]
kind = "azure_export"
name = "azure"
container = "{container}"
root_folder_path = "{root}"
export_name = "{export_name}"

[erp]
po_headers = "erp/po_headers.csv"
po_lines = "erp/po_lines.csv"
fx_rates = "erp/fx_rates.csv"

[tags]
po_default_prefix = "PO"

[runner]
max_workers = {workers}
"""


def run_peer(cli: Path, data: AzureData, folder: Path) -> dict[str, Any]:
    """focus-converter's azure provider (cost-details columns) on the uncompressed ActualCost CSV."""
    out = folder / "peer" / "focus"
    shutil.rmtree(out, ignore_errors=True)
    command = [str(cli), "convert", "--provider", "azure", "--data-format", "csv", "--data-path",
               str(data.peer_csv), "--export-path", str(out), "--no-export-include-source-columns"]  # fmt: skip
    result = timed_process(command, folder)
    if result["exit"] != 0:
        raise RuntimeError(f"focus-converter failed ({result['exit']}):\n{result['log']}")
    return result


def run_azure_bench(
    rows: int,
    export_type: ExportType,
    fmt: FileFormat,
    workdir: Path,
    rows_per_part: int | None,
    workers: int,
    peer: bool,
    console: Console,
) -> dict[str, Any]:
    from finrecon.bench.runner import _measure

    folder = (
        workdir.resolve() / f"azure-{export_type}-{fmt.replace('.', '')}-{rows}-rpp{rows_per_part or rows}"
    )
    data = ensure_azure_files(folder, rows, export_type, fmt, rows_per_part, console)
    results: dict[str, Any] = {"export_type": export_type, "fmt": fmt, "rows": rows, "parts": len(data.parts)}
    with azurite_server(folder / "azurite") as conn_str:
        upload_export(container_client(conn_str), data, folder)
        config = folder / "bench.toml"
        config.write_text(
            AZURE_CONFIG.format(container=CONTAINER, root=ROOT, export_name=EXPORT_NAME, workers=workers)
        )
        shutil.rmtree(folder / "out", ignore_errors=True)
        console.print(f"finrecon: landing {rows:,} rows of {export_type} ({fmt}) from Azurite …")
        env = {"AZURE_STORAGE_CONNECTION_STRING": conn_str, "NO_PROXY": "127.0.0.1,localhost",
               "no_proxy": "127.0.0.1,localhost"}  # fmt: skip
        results["finrecon"] = _measure(["flow", str(config)], folder, env)
    if peer and export_type == "ActualCost":
        cli = ensure_peer(workdir.resolve() / "focus-venv", console)
        console.print("focus-converter 1.0.0 (--provider azure) on the uncompressed CSV …")
        results["peer"] = run_peer(cli, data, folder)
    elif peer:
        results["peer_note"] = (
            "focus-converter 1.0.0 has no provider for FocusCost exports (its azure provider maps cost-details "
            "columns; FocusCost is FOCUS already): no peer for this shape"
        )
    print_azure(results, console)
    return results


def print_azure(results: dict[str, Any], console: Console) -> None:
    title = (f"{results['rows']:,} rows, Azure {results['export_type']} {results['fmt']} "
             f"({results['parts']} part(s)), {os.cpu_count()} cores")  # fmt: skip
    print_flow_and_peer(
        console,
        title,
        results["rows"],
        results["finrecon"],
        results.get("peer"),
        note=results.get("peer_note"),
    )
