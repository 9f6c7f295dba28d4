"""Deterministic FOCUS-shaped charges at any size, and a matching ERP extract, written by DuckDB.

Every value is a function of the row number (DuckDB `hash`), so the same arguments give the same rows. Shape,
per provider: 30,000 resources in 60 sub-accounts and 12 services; hourly charges over one month; Tags as JSON
with five spellings of the PO key (70 % of resources carry a PO of 300, 2 % an unknown PO, the rest none); 10 %
of resources covered by 20 commitments (Used rows), plus Unused and Purchase rows. Never committed: generate it.

Two layouts of the same rows: `per_provider` (each provider's rows in its own files of at most `rows_per_file`)
and `mixed` (all rows in provider order, cut into files of `rows_per_file`, so one file may hold several
providers: "10M rows as one file"). Each file is one streaming DuckDB COPY under a memory limit, so a file of any
size is written in bounded memory.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb

from finrecon.core.sql_text import literal

PROVIDERS = (
    ("AWS", "aws", "111111111111", "USD"),
    ("Microsoft", "azure", "/providers/Microsoft.Billing/billingAccounts/7000001", "EUR"),
    ("Google Cloud", "gcp", "01ABCD-23EFGH-45IJKL", "USD"),
)
PO_COUNT = 300
RESOURCES_PER_PROVIDER = 30_000
MONTH_START = "2026-10-01"
HOURS = 31 * 24

_ROWS_SQL = """
with numbered as (
    select
        i,
        cast(hash(i, $seed) % {resources} as bigint) as r,
        cast(hash(i, $seed, 'hour') % {hours} as bigint) as hour,
        (hash(i, $seed, 'cost') % 1000000) / 500000.0 as cost,
        cast(hash(i, $seed, 'kind') % 1000 as bigint) as kind
    from range($start, $stop) as t(i)
),
shaped as (
    select
        *,
        cast(hash(r, $provider, 'tag') % 100 as bigint) as tag_kind,
        r % 10 = 0 as covered,
        case when kind = 999 then 'Purchase' else 'Usage' end as charge_category,
        case when kind between 990 and 998 then 'Unused' when r % 10 = 0 and kind < 990 then 'Used' end
            as commitment_status,
        'cd-' || $slug || '-' || lpad(cast(r % 20 as varchar), 2, '0') as commitment_id
    from numbered
)
select
    $billing_account as BillingAccountId,
    $provider || ' billing' as BillingAccountName,
    $currency as BillingCurrency,
    timestamp '{month}' as BillingPeriodStart,
    timestamp '{month}' + interval 1 month as BillingPeriodEnd,
    timestamp '{month}' + hour * interval 1 hour as ChargePeriodStart,
    timestamp '{month}' + (hour + 1) * interval 1 hour as ChargePeriodEnd,
    charge_category as ChargeCategory,
    case when charge_category = 'Purchase' then 'Recurring' else 'Usage-Based' end as ChargeFrequency,
    case when commitment_status = 'Used' then 0.0 else round(cost, 6) end as BilledCost,
    case when charge_category = 'Purchase' then 0.0 else round(cost, 6) end as EffectiveCost,
    round(cost * 1.25, 6) as ListCost,
    round(cost, 6) as ContractedCost,
    case when commitment_status is not null or charge_category = 'Purchase' then commitment_id end
        as CommitmentDiscountId,
    commitment_status as CommitmentDiscountStatus,
    case when commitment_status is not null or charge_category = 'Purchase' then 'Reserved Instance' end
        as CommitmentDiscountType,
    case when commitment_status = 'Used' then 'Committed' else 'Standard' end as PricingCategory,
    1.0 as PricingQuantity,
    'Hours' as PricingUnit,
    $provider as ProviderName,
    $provider as PublisherName,
    $provider || ' Inc.' as InvoiceIssuerName,
    'region-' || (r % 8) as RegionId,
    case when commitment_status = 'Unused' then commitment_id else $slug || '-res-' || lpad(cast(r as varchar), 5, '0') end
        as ResourceId,
    list_element(['Compute', 'Storage', 'Databases', 'Networking', 'Analytics', 'Compute'], (r % 6) + 1)
        as ServiceCategory,
    $slug || '-service-' || (r % 12) as ServiceName,
    'sku-' || (r % 400) as SkuId,
    'Usage of ' || $slug || '-service-' || (r % 12) || ' in region-' || (r % 8) as ChargeDescription,
    $slug || '-acct-' || lpad(cast(r % 60 as varchar), 2, '0') as SubAccountId,
    case
        when tag_kind < 70 then '{{"application": "app-' || (r % 500) || '", "environment": "prod", "'
            || list_element(['po', 'PO-Number', 'poNumber', 'purchase_order', 'PO_ID'], (r % 5) + 1)
            || '": "' || case when r % 7 = 0 then '' else 'PO-' end || (1000 + hash(r, $provider, 'po') % {po_count})
            || '"}}'
        when tag_kind < 72 then '{{"application": "app-' || (r % 500) || '", "po": "PO-9' || (r % 90) || '"}}'
        when tag_kind < 90 then '{{"application": "app-' || (r % 500) || '", "environment": "dev"}}'
    end as Tags
from shaped
"""


Layout = Literal["per_provider", "mixed"]
# DuckDB's memory for writing one file: COPY streams, so this bounds the generator whatever the file size.
GENERATOR_MEMORY_LIMIT = "1GB"


@dataclass(frozen=True)
class Generated:
    rows: int
    files: list[str]
    fmt: str
    erp_dir: str
    rows_per_file: int = 1_000_000
    layout: str = "per_provider"
    seed: int = 7


def _copy_options(fmt: str) -> str:
    if fmt == "parquet":
        return "(format parquet, compression zstd, row_group_size 122880)"
    return "(format csv, header true, compression gzip)"


def _inlined(value: object) -> str:
    """A generator value as SQL text: an int as its digits, anything else a literal() string."""
    if isinstance(value, int):
        return str(value)
    return literal(str(value))


def rows_sql(provider: tuple[str, str, str, str], start: int, stop: int, seed: int = 7) -> str:
    """The SELECT of one provider's rows number `start` (inclusive) to `stop` (exclusive), values inlined (so
    several providers' segments can be joined with UNION ALL in one COPY)."""
    name, slug, account, currency = provider
    params: dict[str, object] = {"seed": seed, "start": start, "stop": stop, "provider": name, "slug": slug,
                                 "billing_account": account, "currency": currency}  # fmt: skip
    sql = _ROWS_SQL.format(
        resources=RESOURCES_PER_PROVIDER, hours=HOURS, month=MONTH_START, po_count=PO_COUNT
    )
    return re.sub(r"\$(\w+)", lambda m: _inlined(params[m.group(1)]), sql)


def per_provider_counts(rows: int) -> list[int]:
    """Rows of each provider: `rows` split over the three, the first ones taking the remainder."""
    return [rows // 3 + (1 if k < rows % 3 else 0) for k in range(3)]


def file_segments(rows: int, rows_per_file: int, layout: Layout) -> list[list[tuple[int, int, int]]]:
    """Per file, its (provider index, start, stop) segments of each provider's row numbers."""
    counts = per_provider_counts(rows)
    if layout == "per_provider":
        return [
            [(k, start, min(start + rows_per_file, count))]
            for k, count in enumerate(counts)
            for start in range(0, count, rows_per_file)
        ]
    offsets = [sum(counts[:k]) for k in range(3)]
    files = []
    for first in range(0, rows, rows_per_file):
        last = min(first + rows_per_file, rows)
        segments = []
        for k, (offset, count) in enumerate(zip(offsets, counts, strict=True)):
            start, stop = max(first, offset), min(last, offset + count)
            if start < stop:
                segments.append((k, start - offset, stop - offset))
        files.append(segments)
    return files


def _file_name(segments: list[tuple[int, int, int]], part: int, fmt: str, layout: Layout) -> str:
    if layout == "per_provider":
        slug = PROVIDERS[segments[0][0]][1]
        return f"{slug}_2026-10_part{part:04d}.{fmt}"
    return f"charges_2026-10_part{part:04d}.{fmt}"


def connect_generator(scratch: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for writing generated files: bounded memory, spilling to `scratch`."""
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    con.execute(f"set memory_limit = '{GENERATOR_MEMORY_LIMIT}'")
    con.execute("set temp_directory = ?", [scratch.as_posix()])
    return con


def generate(
    out_dir: Path,
    rows: int,
    fmt: str = "parquet",
    rows_per_file: int = 1_000_000,
    seed: int = 7,
    layout: Layout = "per_provider",
) -> Generated:
    """Write `rows` charges split over three providers into files of at most `rows_per_file` rows, plus ERP."""
    if fmt not in ("parquet", "csv.gz"):
        raise ValueError("fmt must be 'parquet' or 'csv.gz'")
    if layout not in ("per_provider", "mixed"):
        raise ValueError("layout must be 'per_provider' or 'mixed'")
    if rows_per_file < 1:
        raise ValueError("rows_per_file must be at least 1")
    focus_dir = out_dir / "focus"
    focus_dir.mkdir(parents=True, exist_ok=True)
    con = connect_generator(out_dir / ".tmp")
    files = []
    per_kind: dict[str, int] = {}
    for segments in file_segments(rows, rows_per_file, layout):
        key = PROVIDERS[segments[0][0]][1] if layout == "per_provider" else "mixed"
        part = per_kind.get(key, 0)
        per_kind[key] = part + 1
        target = focus_dir / _file_name(segments, part, fmt, layout)
        sql = "\nunion all\n".join(
            f"select * from ({rows_sql(PROVIDERS[k], start, stop, seed)})" for k, start, stop in segments
        )
        con.execute(f"copy ({sql}) to ? {_copy_options(fmt)}", [target.as_posix()])
        files.append(target.name)
    erp_dir = out_dir / "erp"
    write_erp(con, erp_dir, rows)
    con.close()
    result = Generated(rows, files, fmt, erp_dir.as_posix(), rows_per_file, layout, seed)
    (out_dir / "generated.json").write_text(json.dumps(asdict(result), indent=2))
    return result


def describe(generated: dict[str, Any]) -> tuple[object, ...]:
    """What identifies a data set (for reuse): rows, format, rows per file, layout, seed."""
    return tuple(generated.get(k) for k in ("rows", "fmt", "rows_per_file", "layout", "seed"))


def write_erp(con: duckdb.DuckDBPyConnection, erp_dir: Path, rows: int) -> None:
    """300 POs (a tenth in EUR, a few closed, cancelled or expired), their lines, and daily USD/EUR rates."""
    erp_dir.mkdir(parents=True, exist_ok=True)
    # Each PO gets about rows / (PO_COUNT × 2) of spend at ~1.0 per row; amounts spread burn from ~30 % to ~150 %.
    scale = max(rows / (PO_COUNT * 2), 1.0)
    con.execute(
        f"""
        copy (
            select
                'PO-' || (1000 + n) as po_number,
                'V-' || (n % 3) as vendor_id,
                list_element(['Amazon Web Services', 'Microsoft', 'Google'], cast(n % 3 as bigint) + 1) as vendor_name,
                case when n % 10 = 0 then 'EUR' else 'USD' end as currency,
                round({scale} * (0.7 + (hash(n, 'amount') % 300) / 100.0), 2) as total_amount,
                case when n % 50 = 1 then 'Closed' when n % 50 = 2 then 'Cancelled' else 'Approved' end as status,
                date '2026-01-01' as valid_from,
                case when n % 25 = 3 then date '2026-10-15' else date '2026-12-31' end as valid_to,
                case when n % 20 = 0 then 'blanket' else 'standard' end as po_type,
                'CC-' || (n % 40) as cost_center
            from range({PO_COUNT}) as t(n)
        ) to ? (format csv, header true)
        """,
        [(erp_dir / "po_headers.csv").as_posix()],
    )
    con.execute(
        f"""
        copy (
            select 'PO-' || (1000 + n) as po_number, 1 as line_number, 'Cloud services' as description,
                   1 as quantity, 0.0 as unit_price, 0.0 as amount
            from range({PO_COUNT}) as t(n)
        ) to ? (format csv, header true)
        """,
        [(erp_dir / "po_lines.csv").as_posix()],
    )
    con.execute(
        """
        copy (
            select cast(d as date) as rate_date, 'USD' as from_currency, 'EUR' as to_currency,
                   round(0.90 + (hash(d) % 200) / 10000.0, 6) as rate
            from range(timestamp '2026-09-25', timestamp '2026-11-01', interval 1 day) as t(d)
        ) to ? (format csv, header true)
        """,
        [(erp_dir / "fx_rates.csv").as_posix()],
    )
