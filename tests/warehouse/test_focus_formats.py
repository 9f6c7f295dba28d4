"""Source `focus_files` reads CSV, CSV.GZ and Parquet, FOCUS 1.0–1.2 column sets, Tags as JSON text or as a
Parquet MAP, column names in any case; non-FOCUS columns land with an `x_` prefix.

The same three charges are written in every format; each file must land as the same typed rows. Runs the real
nightly flow once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import make_project, po, run_flow, write_csv

# The three charges, as a provider would write them in text (CSV).
CHARGES: list[dict[str, Any]] = [
    {
        "BillingAccountId": "111111111111",
        "BillingCurrency": "USD",
        "BillingPeriodStart": "2024-09-01T00:00:00Z",
        "BillingPeriodEnd": "2024-10-01T00:00:00Z",
        "BilledCost": "1.10",
        "EffectiveCost": "1.00",
        "ListCost": "1.50",
        "ChargeCategory": "Usage",
        "ChargePeriodStart": "2024-09-01T00:00:00Z",
        "ChargePeriodEnd": "2024-09-01T01:00:00Z",
        "ProviderName": "AWS",
        "PublisherName": "AWS",
        "InvoiceIssuerName": "AWS",
        "ResourceId": "r-1",
        "ServiceName": "Amazon EC2",
        "SkuPriceId": "sp-1",
        "SubAccountId": "222222222222",
        "Tags": '{"po": "PO-1", "env": "prod"}',
        "Id": "id-1",
    },
    {
        "BillingAccountId": "111111111111",
        "BillingCurrency": "USD",
        "BillingPeriodStart": "2024-09-01T00:00:00Z",
        "BillingPeriodEnd": "2024-10-01T00:00:00Z",
        "BilledCost": "22.5",
        "EffectiveCost": "20.25",
        "ListCost": "30",
        "ChargeCategory": "Usage",
        "ChargePeriodStart": "2024-09-02T02:00:00+02:00",
        "ChargePeriodEnd": "2024-09-02T03:00:00+02:00",
        "ProviderName": "AWS",
        "PublisherName": "AWS",
        "InvoiceIssuerName": "AWS",
        "ResourceId": "r-2",
        "ServiceName": "Amazon S3",
        "SkuPriceId": "sp-2",
        "SubAccountId": "222222222222",
        "Tags": '"team": "data", "po": "PO-1"',  # Azure-style brace-less fragment
        "Id": "id-2",
    },
    {
        "BillingAccountId": "111111111111",
        "BillingCurrency": "USD",
        "BillingPeriodStart": "2024-09-01T00:00:00Z",
        "BillingPeriodEnd": "2024-10-01T00:00:00Z",
        "BilledCost": "-0.75",
        "EffectiveCost": "-0.75",
        "ListCost": "0",
        "ChargeCategory": "credit",
        "ChargePeriodStart": "2024-09-03 12:30:00",
        "ChargePeriodEnd": "2024-09-03 13:30:00",
        "ProviderName": "AWS",
        "PublisherName": "AWS",
        "InvoiceIssuerName": "AWS",
        "ResourceId": "r-3",
        "ServiceName": "Amazon EC2",
        "SkuPriceId": "sp-3",
        "SubAccountId": "222222222222",
        "Tags": None,
        "Id": "id-3",
    },
]

# Typed values every file's rows must land as (hand-written from the text above; offsets converted to UTC).
EXPECTED = [
    ("r-1", 1.10, 1.00, 1.50, "Usage", datetime(2024, 9, 1, 0, 0), "sp-1", {"po": "PO-1", "env": "prod"}),
    ("r-2", 22.5, 20.25, 30.0, "Usage", datetime(2024, 9, 2, 0, 0), "sp-2", {"team": "data", "po": "PO-1"}),
    ("r-3", -0.75, -0.75, 0.0, "Credit", datetime(2024, 9, 3, 12, 30), "sp-3", None),
]
TAG_DICTS = [row[-1] for row in EXPECTED]

V10_COLUMNS = list(CHARGES[0])  # FOCUS 1.0 column set (no InvoiceId, PricingCurrency, SkuMeter, …) + `Id`
# FOCUS 1.2 additions (1.1: SkuMeter, ServiceSubcategory; 1.2: InvoiceId, PricingCurrency)
V12_EXTRA = {
    "InvoiceId": "INV-1",
    "PricingCurrency": "EUR",
    "SkuMeter": "Compute",
    "ServiceSubcategory": "Other",
}


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _write_typed_parquet(path: Path) -> None:
    """Parquet as a FOCUS exporter writes it: numbers as numbers, timestamps with a zone, Tags as JSON text."""
    instants = [
        datetime(2024, 9, 1, 0, 0, tzinfo=UTC),
        datetime(2024, 9, 2, 0, 0, tzinfo=UTC),
        datetime(2024, 9, 3, 12, 30, tzinfo=UTC),
    ]
    columns: dict[str, pa.Array] = {}
    for name in V10_COLUMNS:
        values = [c[name] for c in CHARGES]
        if name == "BilledCost":
            columns[name] = pa.array([float(v) for v in values], type=pa.float64())
        elif name in ("EffectiveCost", "ListCost"):
            columns[name] = pa.array([Decimal(v) for v in values], type=pa.decimal128(18, 6))
        elif name == "ChargePeriodStart":
            # stored with a non-UTC zone: the same instants must land as UTC
            columns[name] = pa.array(instants, type=pa.timestamp("us", tz="UTC")).cast(
                pa.timestamp("us", tz="Europe/Berlin")
            )
        elif name in ("BillingPeriodStart", "BillingPeriodEnd"):
            columns[name] = pa.array([_utc(v) for v in values], type=pa.timestamp("us", tz="UTC"))
        else:
            columns[name] = pa.array(values, type=pa.string())
    pq.write_table(pa.table(columns), path)


def _write_map_tags_parquet(path: Path) -> None:
    """Parquet with text columns and `Tags` as MAP(string, string)."""
    columns: dict[str, pa.Array] = {}
    for name in V10_COLUMNS:
        if name == "Tags":
            items = [None if d is None else list(d.items()) for d in TAG_DICTS]
            columns[name] = pa.array(items, type=pa.map_(pa.string(), pa.string()))
        else:
            columns[name] = pa.array([c[name] for c in CHARGES], type=pa.string())
    pq.write_table(pa.table(columns), path)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_every_format_and_focus_version_lands_the_same_charges(prefect_harness: None, tmp_path: Path) -> None:
    config = make_project(tmp_path, {}, [po("PO-1")])
    focus = tmp_path / "focus"
    # FOCUS 1.0, CSV
    write_csv(focus / "v10.csv", CHARGES, V10_COLUMNS)
    # FOCUS 1.0, CSV.GZ, column names in other cases
    lower_rows = [
        {k.lower() if k != "BillingCurrency" else k.upper(): v for k, v in c.items()} for c in CHARGES
    ]
    write_csv(focus / "v10_lower.csv.gz", lower_rows, list(lower_rows[0]))
    # Parquet, typed; Parquet with Tags as a MAP
    _write_typed_parquet(focus / "typed.parquet")
    _write_map_tags_parquet(focus / "map_tags.parquet")
    # FOCUS 1.2, CSV, with the newer columns and without the non-FOCUS `Id`
    v12_rows = [{k: v for k, v in c.items() if k != "Id"} | V12_EXTRA for c in CHARGES]
    write_csv(focus / "v12.csv", v12_rows, list(v12_rows[0]))
    files = ["map_tags.parquet", "typed.parquet", "v10.csv", "v10_lower.csv.gz", "v12.csv"]

    outcome = run_flow(config)
    assert outcome.failed_files == []

    con = duckdb.connect(str(outcome.published_path), read_only=True)
    try:
        statuses = con.execute(
            "select file_path, status, rows_read, rows_loaded, rows_quarantined from run_files "
            "where source = 'test' order by file_path"
        ).fetchall()
        assert statuses == [(name, "landed", 3, 3, 0) for name in files]
        assert con.execute("select count(*) from quarantine where source = 'test'").fetchall() == [(0,)]

        columns = {r[0] for r in con.execute("describe charges").fetchall()}
        # the FOCUS 1.2 catalogue is there whichever version a file had; `Id` became `x_Id`
        for name in (
            "InvoiceId",
            "PricingCurrency",
            "SkuMeter",
            "SkuPriceId",
            "CapacityReservationId",
            "x_Id",
        ):
            assert name in columns, name
        assert not {"Id", "skupriceid", "billedcost", "BILLINGCURRENCY", "tags"} & columns

        rows = _rows(
            con,
            "select x_source_file, ResourceId, BilledCost, EffectiveCost, ListCost, ChargeCategory, "
            "ChargePeriodStart, SkuPriceId, Tags, BillingCurrency, BillingPeriodStart, InvoiceId, PricingCurrency, "
            "SkuMeter, ServiceSubcategory, CapacityReservationId, x_Id, x_po_status "
            "from charges order by x_source_file, ResourceId",
        )
    finally:
        con.close()

    assert [r["x_source_file"] for r in rows] == [name for name in files for _ in range(3)]
    by_file: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_file.setdefault(row["x_source_file"], []).append(row)

    for name in files:
        got = by_file[name]
        typed = [
            (
                r["ResourceId"],
                r["BilledCost"],
                r["EffectiveCost"],
                r["ListCost"],
                r["ChargeCategory"],
                r["ChargePeriodStart"],
                r["SkuPriceId"],
                None if r["Tags"] is None else json.loads(r["Tags"]),
            )
            for r in got
        ]
        assert typed == [
            (rid, pytest.approx(b), pytest.approx(e), pytest.approx(lc), cat, ts, sku, tags)
            for rid, b, e, lc, cat, ts, sku, tags in EXPECTED
        ], name
        assert [r["BillingCurrency"] for r in got] == ["USD"] * 3, name
        assert [r["BillingPeriodStart"] for r in got] == [datetime(2024, 9, 1)] * 3, name
        assert [r["CapacityReservationId"] for r in got] == [None] * 3, name
        # PO tags resolve whether Tags came as JSON text, a brace-less fragment or a MAP
        assert [r["x_po_status"] for r in got] == ["valid", "valid", "untagged"], name
        if name == "v12.csv":
            assert [r["InvoiceId"] for r in got] == ["INV-1"] * 3
            assert [r["PricingCurrency"] for r in got] == ["EUR"] * 3
            assert [r["SkuMeter"] for r in got] == ["Compute"] * 3
            assert [r["ServiceSubcategory"] for r in got] == ["Other"] * 3
            assert [r["x_Id"] for r in got] == [None] * 3
        else:
            # FOCUS 1.0 files: the columns they lack are NULL
            assert [r["InvoiceId"] for r in got] == [None] * 3, name
            assert [r["PricingCurrency"] for r in got] == [None] * 3, name
            assert [r["SkuMeter"] for r in got] == [None] * 3, name
            assert [r["ServiceSubcategory"] for r in got] == [None] * 3, name
            assert [r["x_Id"] for r in got] == ["id-1", "id-2", "id-3"], name

    # the MAP file's Tags equal the JSON-text file's Tags, compared as dicts
    map_tags = [None if r["Tags"] is None else json.loads(r["Tags"]) for r in by_file["map_tags.parquet"]]
    text_tags = [None if r["Tags"] is None else json.loads(r["Tags"]) for r in by_file["v10.csv"]]
    assert map_tags == text_tags == TAG_DICTS
