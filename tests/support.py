"""Test helpers: write tiny FOCUS and ERP files, a config around them, run the real flow, query the result.

Only builds inputs and reads outputs; expected values always live in the tests themselves.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

# A FOCUS 1.2-style column set large enough for every mart.
FOCUS_COLUMNS = [
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "BilledCost",
    "EffectiveCost",
    "ChargeCategory",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "CommitmentDiscountId",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "PricingCategory",
    "ProviderName",
    "ResourceId",
    "ServiceName",
    "SubAccountId",
    "Tags",
]


def charge(day: str = "2024-09-01", **values: Any) -> dict[str, Any]:
    """One charge row (text values as a provider would write them); `day` sets the charge and billing period."""
    month = day[:7]
    year, mon = int(month[:4]), int(month[5:7])
    next_month = f"{year + mon // 12}-{mon % 12 + 1:02d}"
    row: dict[str, Any] = {
        "BillingAccountId": "111111111111",
        "BillingCurrency": "USD",
        "BillingPeriodStart": f"{month}-01T00:00:00Z",
        "BillingPeriodEnd": f"{next_month}-01T00:00:00Z",
        "BilledCost": "1.00",
        "EffectiveCost": "1.00",
        "ChargeCategory": "Usage",
        "ChargePeriodStart": f"{day}T00:00:00Z",
        "ChargePeriodEnd": f"{day}T01:00:00Z",
        "CommitmentDiscountId": None,
        "CommitmentDiscountStatus": None,
        "CommitmentDiscountType": None,
        "PricingCategory": "Standard",
        "ProviderName": "AWS",
        "ResourceId": "i-0001",
        "ServiceName": "Amazon Elastic Compute Cloud",
        "SubAccountId": "222222222222",
        "Tags": None,
    }
    row.update(values)
    if isinstance(row.get("Tags"), dict):
        row["Tags"] = json.dumps(row["Tags"])
    return row


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Path:
    """CSV with a header; None is written as an empty field. `.csv.gz` paths are gzip-compressed."""
    columns = list(columns or (rows[0].keys() if rows else FOCUS_COLUMNS))
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as handle:  # type: ignore[operator]
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return path


def po(number: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "po_number": number,
        "vendor_id": "V-1",
        "vendor_name": "Cloud Vendor Ltd",
        "currency": "USD",
        "total_amount": "100.00",
        "status": "open",
        "valid_from": "2024-01-01",
        "valid_to": "2024-12-31",
    }
    row.update(values)
    return row


PO_LINE_COLUMNS = ["po_number", "line_number", "description", "quantity", "unit_price", "amount"]
FX_COLUMNS = ["rate_date", "from_currency", "to_currency", "rate"]


FOCUS_SOURCE_TOML = """
[[sources]]
kind = "focus_files"
name = "test"
path = "focus"
"""


def make_project(
    root: Path,
    files: Mapping[str, Sequence[Mapping[str, Any]]],
    pos: Iterable[Mapping[str, Any]],
    fx: Iterable[Mapping[str, Any]] = (),
    extra_toml: str = "",
    po_default_prefix: str | None = "PO",
    warehouse_toml: str = "",
    sources_toml: str | None = None,
    erp_tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    erp_toml: str = "",
) -> Path:
    """Write FOCUS files (name -> rows), an ERP extract and a config under `root`; return the config path.

    `sources_toml` replaces the default `focus_files` source (e.g. an S3 export source). `erp_tables` writes
    further ERP extracts (table name -> rows, as `erp/<name>.csv`, configured as `[erp] <name>`); `erp_toml`
    adds lines to the `[erp]` table (it may end by opening sub-tables such as `[erp.column_map.po_headers]`).
    """
    for name, rows in files.items():
        write_csv(root / "focus" / name, rows)
    sources = sources_toml if sources_toml is not None else FOCUS_SOURCE_TOML
    write_csv(root / "erp" / "po_headers.csv", list(pos))
    write_csv(root / "erp" / "po_lines.csv", [], PO_LINE_COLUMNS)
    write_csv(root / "erp" / "fx_rates.csv", list(fx), FX_COLUMNS)
    extra_extracts = []
    for name, rows in (erp_tables or {}).items():
        write_csv(root / "erp" / f"{name}.csv", rows)
        extra_extracts.append(f'{name} = "erp/{name}.csv"')
    extracts = "\n".join(extra_extracts)
    prefix = f'po_default_prefix = "{po_default_prefix}"' if po_default_prefix else ""
    config = f"""
[warehouse]
published_path = "out/finops.duckdb"
lake_path = "out/lake"
state_path = "out/state.duckdb"
{warehouse_toml}

{sources}

[erp]
kind = "files"
po_headers = "erp/po_headers.csv"
po_lines = "erp/po_lines.csv"
fx_rates = "erp/fx_rates.csv"
{extracts}
{erp_toml}

[tags]
{prefix}

{extra_toml}
"""
    path = root / "finrecon.toml"
    path.write_text(config, encoding="utf-8")
    return path


def run_flow(config_path: Path, as_of: date | None = None) -> Any:
    """Run the real nightly flow (needs the `prefect_harness` fixture)."""
    from finrecon.flows.nightly import nightly

    return nightly(config_path=str(config_path), as_of=as_of)


def query(database: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()
