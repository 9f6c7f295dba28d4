"""`finrecon bench cur`: AWS CUR landing from a local S3 (moto) against focus-converter on the same rows.

The generator's AWS rows (same values as `finrecon bench run`'s) are written as a legacy CUR (gzip-CSV parts with
~95 `category/Name` columns, resource tags as `resourceTags/user:<key>` columns) or a CUR 2.0 Data Export
(Snappy Parquet parts, snake-case columns, `resource_tags` as a MAP), laid out in a moto S3 server exactly as
tests/aws_rig.py lays deliveries out (data files first, the manifest last; legacy: CREATE_NEW_REPORT layout).
Row semantics: commitment Used rows are DiscountedUsage (unblended 0, reservation effective cost), Unused rows
RIFee (the unused recurring fee), Purchase rows an RI Fee, the rest Usage.

Then, each in its own process: the nightly flow with one `aws_cur` source pointing at the moto endpoint (timed by
its land stage: download + read + map + validate + write), FinOps Foundation's focus-converter 1.0.0 converting
the same rows from the uncompressed legacy CSV (from its own virtualenv under .bench/), and a bare DuckDB
read-map-write of the delivered parts to FOCUS Parquet for scale.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from finrecon.bench.generate import PROVIDERS, connect_generator, rows_sql, write_erp
from finrecon.core.sql_text import identifier, literal
from finrecon.models.aws_cur import legacy_column

ExportType = Literal["cur_legacy", "cur2"]
BUCKET = "bench-billing"
PREFIX = "exports"
EXPORT_NAME = "bench-cur"
PERIOD = "2026-10"
ACCOUNT_ID = "123456789012"
PEER_SPECS = ("focus-converter==1.0.0", "multimethod<1.11", "click<8.2")
# The tag keys the generator writes (Tags JSON), as resource-tag columns.
TAG_KEYS = ("application", "environment", "po", "PO-Number", "poNumber", "purchase_order", "PO_ID")
# COPY options of a delivery's parts: legacy CUR gzip-CSV, CUR 2.0 Snappy Parquet.
LEGACY_PART_OPTIONS = "(format csv, header true, compression gzip)"
CUR2_PART_OPTIONS = "(format parquet, compression snappy, row_group_size 122880)"


def _tag_value(key: str) -> str:
    """The generator's tag `key` out of its Tags JSON (a JSON path with the key quoted, as a SQL literal)."""
    return f"json_extract_string(Tags, {literal(f'$.{json.dumps(key)}')})"


_RI = "'arn:aws:ec2:us-east-1:111111111111:reserved-instances/' || CommitmentDiscountId"
_RESERVED = "CommitmentDiscountStatus in ('Used', 'Unused') or ChargeCategory = 'Purchase'"

# Legacy CUR columns (CSV names) as (name, DuckDB expression over the generated row, kind); kind: text, ts, num.
LEGACY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("identity/LineItemId", "md5(ResourceId || cast(ChargePeriodStart as varchar) || cast(ListCost as varchar))",
     "text"),
    ("identity/TimeInterval", "strftime(ChargePeriodStart, '%Y-%m-%dT%H:%M:%SZ') || '/' || "
     "strftime(ChargePeriodEnd, '%Y-%m-%dT%H:%M:%SZ')", "text"),
    ("bill/InvoiceId", "'INV-2026-10'", "text"),
    ("bill/InvoicingEntity", "'Amazon Web Services, Inc.'", "text"),
    ("bill/BillingEntity", "'AWS'", "text"),
    ("bill/BillType", "'Anniversary'", "text"),
    ("bill/PayerAccountId", "BillingAccountId", "text"),
    ("bill/BillingPeriodStartDate", "BillingPeriodStart", "ts"),
    ("bill/BillingPeriodEndDate", "BillingPeriodEnd", "ts"),
    ("lineItem/UsageAccountId", "'2000000000' || right(SubAccountId, 2)", "text"),
    ("lineItem/LineItemType", "item_type", "text"),
    ("lineItem/UsageStartDate", "ChargePeriodStart", "ts"),
    ("lineItem/UsageEndDate", "ChargePeriodEnd", "ts"),
    ("lineItem/ProductCode", "ServiceName", "text"),
    ("lineItem/UsageType", "RegionId || ':BoxUsage:' || SkuId", "text"),
    ("lineItem/Operation", "'RunInstances'", "text"),
    ("lineItem/AvailabilityZone", "RegionId || 'a'", "text"),
    ("lineItem/ResourceId", "ResourceId", "text"),
    ("lineItem/UsageAmount", "PricingQuantity", "num"),
    ("lineItem/NormalizationFactor", "4.0", "num"),
    ("lineItem/NormalizedUsageAmount", "PricingQuantity * 4", "num"),
    ("lineItem/CurrencyCode", "BillingCurrency", "text"),
    ("lineItem/UnblendedRate", "BilledCost", "num"),
    ("lineItem/UnblendedCost", "BilledCost", "num"),
    ("lineItem/BlendedRate", "BilledCost", "num"),
    ("lineItem/BlendedCost", "BilledCost", "num"),
    ("lineItem/LineItemDescription", "ChargeDescription", "text"),
    ("lineItem/TaxType", "null", "text"),
    ("lineItem/LegalEntity", "'Amazon Web Services, Inc.'", "text"),
    ("product/ProductName", "ServiceName", "text"),
    ("product/productFamily", "ServiceCategory", "text"),
    ("product/servicecode", "ServiceName", "text"),
    ("product/region", "RegionId", "text"),
    ("product/regionCode", "RegionId", "text"),
    ("product/location", "'Region ' || RegionId", "text"),
    ("product/locationType", "'AWS Region'", "text"),
    ("product/instanceType", "'m5.large'", "text"),
    ("product/instanceFamily", "'General purpose'", "text"),
    ("product/vcpu", "'2'", "text"),
    ("product/memory", "'8 GiB'", "text"),
    ("product/operatingSystem", "'Linux'", "text"),
    ("product/tenancy", "'Shared'", "text"),
    ("product/sku", "SkuId", "text"),
    ("product/usagetype", "RegionId || ':BoxUsage:' || SkuId", "text"),
    ("product/operation", "'RunInstances'", "text"),
    ("product/servicename", "ServiceName", "text"),
    ("product/storage", "'EBS only'", "text"),
    ("product/networkPerformance", "'Up to 10 Gigabit'", "text"),
    ("product/physicalProcessor", "'Intel Xeon Platinum 8175'", "text"),
    ("product/clockSpeed", "'3.1 GHz'", "text"),
    ("product/currentGeneration", "'Yes'", "text"),
    ("product/ecu", "'10'", "text"),
    ("product/licenseModel", "'No License required'", "text"),
    ("product/preInstalledSw", "'NA'", "text"),
    ("product/processorArchitecture", "'64-bit'", "text"),
    ("product/capacitystatus", "'Used'", "text"),
    ("product/PurchaseOption", f"case when {_RESERVED} then 'Reserved Instances' else 'On-Demand' end", "text"),
    ("pricing/RateCode", "SkuId || '.JRTCKXETXF.6YS6EN2CT7'", "text"),
    ("pricing/RateId", "cast(hash(SkuId) % 100000000 as varchar)", "text"),
    ("pricing/currency", "'USD'", "text"),
    ("pricing/publicOnDemandCost", "ListCost", "num"),
    ("pricing/publicOnDemandRate", "ListCost", "num"),
    ("pricing/term", f"case when {_RESERVED} then 'Reserved' else 'OnDemand' end", "text"),
    ("pricing/unit", "'Hrs'", "text"),
    ("pricing/LeaseContractLength", f"case when {_RESERVED} then '1yr' end", "text"),
    ("pricing/OfferingClass", f"case when {_RESERVED} then 'standard' end", "text"),
    ("pricing/PurchaseOption", f"case when {_RESERVED} then 'No Upfront' end", "text"),
    ("reservation/AmortizedUpfrontCostForUsage", "case when item_type = 'DiscountedUsage' then 0.0 end", "num"),
    ("reservation/AmortizedUpfrontFeeForBillingPeriod", "case when item_type = 'RIFee' then 0.0 end", "num"),
    ("reservation/EffectiveCost", "case when item_type = 'DiscountedUsage' then EffectiveCost end", "num"),
    ("reservation/EndTime", f"case when {_RESERVED} then timestamp '2027-06-30 23:59:59' end", "ts"),
    ("reservation/ModificationStatus", "case when item_type = 'RIFee' then 'Original' end", "text"),
    ("reservation/NormalizedUnitsPerReservation", "case when item_type = 'RIFee' then 4.0 end", "num"),
    ("reservation/NumberOfReservations", "case when item_type = 'RIFee' then 1 end", "num"),
    ("reservation/RecurringFeeForUsage", "case when item_type = 'DiscountedUsage' then EffectiveCost end", "num"),
    ("reservation/ReservationARN", f"case when {_RESERVED} then {_RI} end", "text"),
    ("reservation/StartTime", f"case when {_RESERVED} then timestamp '2026-07-01 00:00:00' end", "ts"),
    ("reservation/SubscriptionId", f"case when {_RESERVED} then cast(hash(CommitmentDiscountId) % 1000000000 "
     "as varchar) end", "text"),
    ("reservation/TotalReservedNormalizedUnits", "case when item_type = 'RIFee' then 2976.0 end", "num"),
    ("reservation/TotalReservedUnits", "case when item_type = 'RIFee' then 744.0 end", "num"),
    ("reservation/UnitsPerReservation", "case when item_type = 'RIFee' then 744.0 end", "num"),
    ("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod", "case when item_type = 'RIFee' then 0.0 end", "num"),
    ("reservation/UnusedNormalizedUnitQuantity", "case when item_type = 'RIFee' then 4.0 end", "num"),
    ("reservation/UnusedQuantity", "case when item_type = 'RIFee' then 1.0 end", "num"),
    ("reservation/UnusedRecurringFee", "case when item_type = 'RIFee' then EffectiveCost end", "num"),
    ("reservation/UpfrontValue", "case when item_type = 'RIFee' then 0.0 end", "num"),
    ("savingsPlan/SavingsPlanARN", "null", "text"),
    ("savingsPlan/SavingsPlanEffectiveCost", "null", "num"),
    ("savingsPlan/TotalCommitmentToDate", "null", "num"),
    ("savingsPlan/UsedCommitment", "null", "num"),
    ("savingsPlan/SavingsPlanRate", "null", "num"),
    *((f"resourceTags/user:{key}", _tag_value(key), "text") for key in TAG_KEYS),
)  # fmt: skip


def _aws_rows(start: int, stop: int) -> str:
    """The generator's AWS rows `start`..`stop` with the CUR line item type they become."""
    return f"""
    select *,
        case when CommitmentDiscountStatus = 'Used' then 'DiscountedUsage'
             when CommitmentDiscountStatus = 'Unused' then 'RIFee'
             when ChargeCategory = 'Purchase' then 'Fee'
             else 'Usage' end as item_type
    from ({rows_sql(PROVIDERS[0], start, stop)})
    """


def cur_select(export_type: ExportType, start: int, stop: int) -> str:
    """A SELECT of rows `start`..`stop` as the export's columns: legacy CSV names and text (AWS's CSV timestamp
    form), or CUR 2.0 snake case, typed, with `resource_tags` a MAP of `user_<key>` entries."""
    if export_type == "cur_legacy":
        cells = [
            f"strftime({expr}, '%Y-%m-%dT%H:%M:%SZ') as {identifier(name)}"
            if kind == "ts"
            else f"{expr} as {identifier(name)}"
            for name, expr, kind in LEGACY_COLUMNS
        ]
    else:
        cells = [
            f"cast({expr} as {'timestamp' if kind == 'ts' else 'double' if kind == 'num' else 'varchar'}) as "
            f"{identifier(legacy_column(name))}"
            for name, expr, kind in LEGACY_COLUMNS
            if not name.startswith("resourceTags/")
        ]
        entries = ", ".join(
            f"struct_pack(key := {literal(f'user_{key}')}, value := {_tag_value(key)})" for key in TAG_KEYS
        )
        cells.append(
            f"map_from_entries(list_filter([{entries}], lambda e: e.value is not null)) as resource_tags"
        )
    return "select " + ",\n    ".join(cells) + f"\nfrom ({_aws_rows(start, stop)})"


@dataclass(frozen=True)
class CurData:
    """A generated delivery on disk: its parts (in order, with their rows), the peer's CSV, the ERP folder."""

    export_type: str
    rows: int
    rows_per_part: int
    parts: list[tuple[str, int]]
    peer_csv: str
    erp_dir: str
    columns: list[dict[str, str]]


def part_name(export_type: ExportType, n: int) -> str:
    """AWS's part names (1-based): legacy CSV `<report>-1.csv.gz`, Data Exports `<export>-00001.snappy.parquet`."""
    if export_type == "cur_legacy":
        return f"{EXPORT_NAME}-{n}.csv.gz"
    return f"{EXPORT_NAME}-{n:05d}.snappy.parquet"


def write_cur_files(
    folder: Path, rows: int, export_type: ExportType, rows_per_part: int | None = None, peer_csv: bool = True
) -> CurData:
    """Write the delivery's parts (streaming DuckDB COPYs, bounded memory) and, for the peer, all rows as one
    uncompressed legacy CSV; plus the ERP extract the flow needs."""
    per_part = rows_per_part or rows
    parts_dir = folder / "parts"
    shutil.rmtree(parts_dir, ignore_errors=True)
    parts_dir.mkdir(parents=True)
    con = connect_generator(folder / ".tmp")
    parts = []
    for n, start in enumerate(range(0, rows, per_part), start=1):
        stop = min(start + per_part, rows)
        target = parts_dir / part_name(export_type, n)
        if export_type == "cur_legacy":
            con.execute(f"copy ({cur_select(export_type, start, stop)}) to ? {LEGACY_PART_OPTIONS}",
                        [target.as_posix()])  # fmt: skip
        else:
            con.execute(f"copy ({cur_select(export_type, start, stop)}) to ? {CUR2_PART_OPTIONS}",
                        [target.as_posix()])  # fmt: skip
        parts.append((target.name, stop - start))
    peer = folder / "peer" / "cur.csv"
    if peer_csv:
        peer.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"copy ({cur_select('cur_legacy', 0, rows)}) to ? (format csv, header true)", [peer.as_posix()]
        )
    described = con.execute(f"describe ({cur_select(export_type, 0, 1)})").fetchall()
    columns = [{"name": str(row[0]), "type": str(row[1])} for row in described]
    erp_dir = folder / "erp"
    write_erp(con, erp_dir, rows)
    con.close()
    shutil.rmtree(folder / ".tmp", ignore_errors=True)
    data = CurData(export_type, rows, per_part, parts, peer.as_posix(), erp_dir.as_posix(), columns)
    (folder / "generated.json").write_text(json.dumps(data.__dict__, indent=2))
    return data


def ensure_cur_files(
    folder: Path, rows: int, export_type: ExportType, rows_per_part: int | None, console: Console
) -> CurData:
    marker = folder / "generated.json"
    if marker.exists():
        known = json.loads(marker.read_text())
        if (known["export_type"], known["rows"], known["rows_per_part"]) == (
            export_type,
            rows,
            rows_per_part or rows,
        ) and Path(known["peer_csv"]).exists():
            return CurData(**{**known, "parts": [tuple(p) for p in known["parts"]]})
    shutil.rmtree(folder, ignore_errors=True)
    console.print(f"generating {rows:,} AWS rows as {export_type} parts into {folder} …")
    return write_cur_files(folder, rows, export_type, rows_per_part)


# ---------------------------------------------------------------------------------------------------------------
# The local S3: moto's server, and a delivery laid out as tests/aws_rig.py lays it out
# ---------------------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def moto_server(timeout: float = 60.0) -> Iterator[str]:
    """A `moto_server` subprocess on 127.0.0.1 (in memory); yields its endpoint URL; stopped on exit."""
    port = _free_port()
    script = Path(sys.executable).parent / "moto_server"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "moto.server"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*command, "-H", "127.0.0.1", "-p", str(port)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"moto_server exited: {log.read()[-2000:]!r}")
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/moto-api/")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server on port {port} did not answer within {timeout:.0f} s")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


def s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}),
    )


def _legacy_manifest_type(column: str, sql_type: str) -> str:
    if column == "identity/TimeInterval":
        return "Interval"
    if "/" in column and any(w in column for w in ("Date", "Time")) and sql_type == "VARCHAR":
        return "DateTime"
    return (
        "OptionalBigDecimal" if sql_type in ("DOUBLE", "DECIMAL", "INTEGER", "BIGINT") else "OptionalString"
    )


def _data_export_type(sql_type: str) -> str:
    if sql_type.startswith("MAP"):
        return "map<string,string>"
    return {"VARCHAR": "string", "DOUBLE": "double", "TIMESTAMP": "timestamp"}.get(sql_type, sql_type.lower())


def upload_delivery(client: Any, data: CurData, folder: Path, prefix: str = PREFIX) -> str:
    """Put the parts, then the manifest (last, as AWS does); the manifest's key. Layouts as tests/aws_rig.py:

    legacy (CREATE_NEW_REPORT): <prefix>/<report>/20261001-20261101/<assemblyId>/<report>-1.csv.gz, the manifest in
    the assembly folder and, last, <prefix>/<report>/20261001-20261101/<report>-Manifest.json;
    CUR 2.0: <prefix>/<export>/data/BILLING_PERIOD=2026-10/<export>-00001.snappy.parquet and
    <prefix>/<export>/metadata/BILLING_PERIOD=2026-10/<export>-Manifest.json.
    """
    try:
        client.head_bucket(Bucket=BUCKET)
    except Exception:  # botocore's ClientError for a missing bucket
        client.create_bucket(Bucket=BUCKET)
    root = "/".join(p for p in (prefix, EXPORT_NAME) if p)
    if data.export_type == "cur_legacy":
        assembly = "a1b2c3d4-0000-4000-8000-000000000001"
        period_dir = f"{root}/20261001-20261101"
        data_dir = f"{period_dir}/{assembly}"
    else:
        data_dir = f"{root}/data/BILLING_PERIOD={PERIOD}"
    keys = []
    for name, _rows in data.parts:
        key = f"{data_dir}/{name}"
        client.upload_file(str(folder / "parts" / name), BUCKET, key)
        keys.append(key)
    if data.export_type == "cur_legacy":
        columns = []
        for column in data.columns:
            category, _, name = column["name"].partition("/")
            columns.append(
                {
                    "category": category,
                    "name": name,
                    "type": _legacy_manifest_type(column["name"], column["type"]),
                }
            )
        manifest: dict[str, Any] = {
            "assemblyId": assembly,
            "account": ACCOUNT_ID,
            "reportName": EXPORT_NAME,
            "reportId": "bench",
            "bucket": BUCKET,
            "billingPeriod": {"start": "20261001T000000.000Z", "end": "20261101T000000.000Z"},
            "reportKeys": keys,
            "columns": columns,
            "compression": "GZIP",
            "contentType": "text/csv",
            "charset": "UTF-8",
            "additionalArtifactKeys": [],
        }
        manifest_keys = [
            f"{data_dir}/{EXPORT_NAME}-Manifest.json",
            f"{period_dir}/{EXPORT_NAME}-Manifest.json",
        ]
    else:
        manifest = {
            "executionId": "bench-execution-0001",
            "account": ACCOUNT_ID,
            "bucket": BUCKET,
            "exportName": EXPORT_NAME,
            "dataFiles": [f"s3://{BUCKET}/{key}" for key in keys],
            "columns": [{"name": c["name"], "type": _data_export_type(c["type"])} for c in data.columns],
            "billingPeriod": {"start": "2026-10-01T00:00:00.000Z", "end": "2026-11-01T00:00:00.000Z"},
            "compression": "PARQUET",
            "format": "PARQUET",
            "additionalOutputFiles": [],
        }
        manifest_keys = [f"{root}/metadata/BILLING_PERIOD={PERIOD}/{EXPORT_NAME}-Manifest.json"]
    body = json.dumps(manifest, indent=2).encode()
    for key in manifest_keys:
        client.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="application/json")
    return manifest_keys[-1]


CUR_CONFIG = """
[warehouse]
published_path = "out/finops.duckdb"
lake_path = "out/lake"
state_path = "out/state.duckdb"

[[sources]]
kind = "aws_cur"
name = "aws"
export_type = "{export_type}"
bucket = "{bucket}"
prefix = "{prefix}"
export_name = "{export_name}"
region = "us-east-1"
endpoint_url = "{endpoint}"

[erp]
po_headers = "erp/po_headers.csv"
po_lines = "erp/po_lines.csv"
fx_rates = "erp/fx_rates.csv"

[tags]
po_default_prefix = "PO"

[runner]
max_workers = {workers}
"""


# ---------------------------------------------------------------------------------------------------------------
# The peer: focus-converter in its own virtualenv
# ---------------------------------------------------------------------------------------------------------------


def ensure_peer(venv: Path, console: Console) -> Path:
    """focus-converter's CLI in `venv`, made with pip (PEER_SPECS) unless already there."""
    cli = venv / "bin" / "focus-converter"
    if cli.exists():
        return cli
    console.print(f"installing {', '.join(PEER_SPECS)} into {venv} …")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *PEER_SPECS], check=True)
    return cli


def timed_process(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `command`; its wall seconds, peak RSS (its own and its waited-for children's, from wait4) and exit code."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=log)
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        log.seek(0)
        tail = log.read()[-3000:].decode(errors="replace")
    return {"seconds": seconds, "peak_rss": usage.ru_maxrss * 1024, "exit": process.returncode, "log": tail}


def run_peer(cli: Path, data: CurData, folder: Path) -> dict[str, Any]:
    out = folder / "peer" / "focus"
    shutil.rmtree(out, ignore_errors=True)
    command = [str(cli), "convert", "--provider", "aws-cur", "--data-format", "csv", "--data-path",
               data.peer_csv, "--export-path", str(out), "--no-export-include-source-columns"]  # fmt: skip
    result = timed_process(command, folder)
    if result["exit"] != 0:
        raise RuntimeError(f"focus-converter failed ({result['exit']}):\n{result['log']}")
    return result


# ---------------------------------------------------------------------------------------------------------------
# The bench
# ---------------------------------------------------------------------------------------------------------------


def run_cur_bench(
    rows: int,
    export_type: ExportType,
    workdir: Path,
    rows_per_part: int | None,
    workers: int,
    peer: bool,
    console: Console,
) -> dict[str, Any]:
    from finrecon.bench.runner import _measure

    folder = workdir.resolve() / f"cur-{export_type}-{rows}-rpp{rows_per_part or rows}"
    data = ensure_cur_files(folder, rows, export_type, rows_per_part, console)
    results: dict[str, Any] = {"export_type": export_type, "rows": rows, "parts": len(data.parts),
                               "columns": len(data.columns)}  # fmt: skip
    with moto_server() as endpoint:
        upload_delivery(s3_client(endpoint), data, folder)
        config = folder / "bench.toml"
        config.write_text(
            CUR_CONFIG.format(
                export_type=export_type,
                bucket=BUCKET,
                prefix=PREFIX,
                export_name=EXPORT_NAME,
                endpoint=endpoint,
                workers=workers,
            )
        )
        shutil.rmtree(folder / "out", ignore_errors=True)
        console.print(f"finrecon: landing {rows:,} rows of {export_type} from {endpoint} …")
        flow = _measure(["flow", str(config)], folder, AWS_ENV)
    results["finrecon"] = flow
    parts_glob = (folder / "parts" / ("*.csv.gz" if export_type == "cur_legacy" else "*.parquet")).as_posix()
    console.print("bare DuckDB: read, map, write FOCUS Parquet …")
    results["duckdb"] = _measure(
        ["cur-reference", parts_glob, export_type, str(folder / "duckdb.parquet")], folder
    )
    if peer:
        cli = ensure_peer(workdir.resolve() / "focus-venv", console)
        console.print("focus-converter 1.0.0 on the uncompressed CSV …")
        results["peer"] = run_peer(cli, data, folder)
    print_cur(results, console)
    return results


def print_cur(results: dict[str, Any], console: Console) -> None:
    title = (f"{results['rows']:,} rows, AWS {results['export_type']} ({results['parts']} part(s), "
             f"{results['columns']} columns), {os.cpu_count()} cores")  # fmt: skip
    baselines = (("bare DuckDB read-map-write", results["duckdb"]),)
    print_flow_and_peer(console, title, results["rows"], results["finrecon"], results.get("peer"), baselines)


def _gb(value: float) -> str:
    return f"{value / 2**30:.2f} GB"


def print_flow_and_peer(
    console: Console,
    title: str,
    rows: int,
    flow: dict[str, Any],
    peer: dict[str, Any] | None,
    baselines: tuple[tuple[str, dict[str, Any]], ...] = (),
    note: str | None = None,
) -> None:
    """The flow's land / data work / whole run, any baselines, and the peer with the two ratios, as one table."""
    stages = dict(flow["stages"].items())
    land_s, land_peak = stages["land"]
    table = Table(title=title)
    for name in ("measurement", "seconds", "rows/s", "peak RSS"):
        table.add_column(name, justify="left" if name == "measurement" else "right")
    table.add_row("finrecon: land (download, read, map, validate, write)", f"{land_s:.1f}",
                  f"{rows / land_s:,.0f}", _gb(land_peak))  # fmt: skip
    data_work = sum(seconds for seconds, _ in stages.values())
    table.add_row("finrecon: data work (Σ stages)", f"{data_work:.1f}", f"{rows / data_work:,.0f}", "")
    table.add_row("finrecon: whole run (process, Prefect included)", f"{flow['wall']:.1f}",
                  f"{rows / flow['wall']:,.0f}", _gb(flow["peak_rss"]))  # fmt: skip
    for label, measured in baselines:
        table.add_row(label, f"{measured['seconds']:.1f}", f"{rows / measured['seconds']:,.0f}",
                      _gb(measured["peak_rss"]))  # fmt: skip
    if peer:
        table.add_row("focus-converter 1.0.0 (uncompressed CSV)", f"{peer['seconds']:.1f}",
                      f"{rows / peer['seconds']:,.0f}", _gb(peer["peak_rss"]))  # fmt: skip
        table.add_row(
            "ratio rows/s: finrecon land ÷ focus-converter", f"{peer['seconds'] / land_s:.2f}×", "", ""
        )
        table.add_row("ratio peak: finrecon process ÷ focus-converter", "", "",
                      f"{flow['peak_rss'] / peer['peak_rss']:.2f}×")  # fmt: skip
    console.print(table)
    if note:
        console.print(note)
    console.print(f"finrecon published {flow['rows']:,} of {rows:,} rows")
    if flow.get("failed_files"):
        console.print(
            f"[yellow]{flow['failed_files']} file(s) failed to land: see the run's summary[/yellow]"
        )
