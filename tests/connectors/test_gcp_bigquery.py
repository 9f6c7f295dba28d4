"""GCP billing export end to end: the real google-cloud-bigquery client against bqemulator, through the flow.

Rows are written in the export's own nested shape (credits inside rows, labels as key/value arrays); the expected
figures are worked out by hand below.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import gcp_rig
import pytest
from google.cloud import bigquery
from support import make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")

TABLE = "gcp_billing_export_v1_010101_ABCDEF_123456"
PROJECT_A = {"id": "proj-a", "number": "1", "name": "Project A", "labels": [{"key": "team", "value": "a"}]}
PROJECT_B = {
    "id": "proj-b",
    "number": "2",
    "name": "Project B",
    "labels": [{"key": "po", "value": "PO-1002"}],
}
COMPUTE = {"id": "6F81-5844-456A", "description": "Compute Engine"}
CPU = {"id": "CP-1", "description": "N2 Instance Core running in Americas"}
CUD_FEE = {"id": "CUD-1", "description": "Commitment v1: Cpu in Americas for 1 Year"}


def line(day: int, cost: float, *, month: str = "202411", project: dict[str, Any] = PROJECT_A,
         labels: list[dict[str, str]] | None = None, credits: list[dict[str, Any]] | None = None,
         sku: dict[str, str] = CPU, cost_type: str = "regular", exported: int = 1) -> dict[str, Any]:  # fmt: skip
    """One export row as Google writes it."""
    start = datetime(int(month[:4]), int(month[4:]), day, tzinfo=UTC)
    return {
        "billing_account_id": "010101-ABCDEF-123456",
        "service": COMPUTE,
        "sku": sku,
        "usage_start_time": start,
        "usage_end_time": start.replace(hour=1),
        "project": project,
        "labels": labels or [],
        "location": {
            "location": "us-central1",
            "country": "US",
            "region": "us-central1",
            "zone": "us-central1-a",
        },
        "export_time": datetime(2024, 12, exported, tzinfo=UTC),
        "cost": cost,
        "currency": "USD",
        "currency_conversion_rate": 1.0,
        "usage": {"amount": 1.0, "unit": "seconds", "amount_in_pricing_units": 1.0, "pricing_unit": "hour"},
        "credits": credits or [],
        "invoice": {"month": month},
        "cost_type": cost_type,
        "cost_at_list": cost,
    }


PO_A = [{"key": "po", "value": "PO-1001"}]
QUOTED = [{"key": "team", "value": 'Zoë "ops" — ünïcode'}]
SUD = {
    "name": "Sustained usage discount",
    "amount": -1.0,
    "full_name": "",
    "id": "sud",
    "type": "SUSTAINED_USAGE_DISCOUNT",
}
CUD = {"name": "Committed use discount", "amount": -6.0, "full_name": "", "id": "commitment-1",
       "type": "COMMITTED_USAGE_DISCOUNT"}  # fmt: skip

NOVEMBER = [
    line(3, 10.0, labels=PO_A, credits=[SUD]),  # PO-1001: billed 10, effective 9
    line(3, 2.5, labels=PO_A),  # same day, project, SKU and labels: push_down sums it with the line above
    line(4, 4.0, project=PROJECT_B),  # no label: inherits PO-1002 from its project's labels
    line(5, 6.0, labels=PO_A, credits=[CUD]),  # CUD-covered: billed 6, effective 0, commitment-1 used
    line(1, 3.0, sku=CUD_FEE),  # the commitment's monthly fee: a Purchase
    line(30, 1.5, cost_type="tax"),
    line(30, -0.01, cost_type="rounding_error"),
    line(6, 2.0, project=PROJECT_B, labels=QUOTED),  # a label with quotes and Unicode; PO-1002 by inheritance
]
# By hand: Σ cost = 10 + 2.5 + 4 + 6 + 3 + 1.5 − 0.01 + 2 = 28.99; Σ (cost + credits) = 28.99 − 1 − 6 = 21.99
# PO consumption (Σ BilledCost): PO-1001 = 10 + 2.5 + 6 = 18.5; PO-1002 = 4 + 2 = 6
OCTOBER = [line(7, 5.0, month="202410", labels=PO_A)]


def gcp_source_toml(endpoint: str, project: str, dataset: str, push_down: bool = False) -> str:
    return f"""
[[sources]]
kind = "gcp_bigquery"
name = "gcp"
project = "{project}"
dataset = "{dataset}"
table = "{TABLE}"
endpoint_url = "{endpoint}"
push_down = {str(push_down).lower()}
storage_read_api = false
retry_initial_seconds = 0.05
retry_deadline_seconds = 20
"""


def gcp_project(root: Path, endpoint: str, project: str, dataset: str, push_down: bool = False) -> Path:
    pos = [po("PO-1001", total_amount="100.00"), po("PO-1002", total_amount="50.00")]
    sources = gcp_source_toml(endpoint, project, dataset, push_down)
    return make_project(root, {}, pos, sources_toml=sources)


def export_table(client: bigquery.Client, dataset: str, rows: list[dict[str, Any]]) -> str:
    table_id = gcp_rig.create_export_table(client, dataset, TABLE, gcp_rig.standard_export_schema())
    gcp_rig.insert_rows(client, table_id, rows)
    return table_id


def marts(database: Path) -> dict[str, Any]:
    return {
        "charges": query(
            database,
            "select x_billing_period, round(sum(BilledCost), 9), round(sum(EffectiveCost), 9) "
            "from finops.charges group by 1 order by 1",
        ),
        "burn": query(database, "select po_number, round(consumed_amount, 9) from finops.po_burn order by 1"),
        "coverage": query(
            database,
            "select charge_date, sub_account_id, service_name, round(total_cost, 9), round(valid_po_cost, 9), "
            "round(untagged_cost, 9) from finops.tag_coverage order by all",
        ),
        "commitments": query(
            database,
            "select commitment_discount_id, billing_month, round(used_cost, 9), round(unused_cost, 9) "
            "from finops.commitment_utilization order by all",
        ),
    }


def test_standard_export_lands_with_credits_labels_and_commitments_and_push_down_agrees(
    bq: tuple[bigquery.Client, str], bq_emulator: gcp_rig.BigQueryEmulator, tmp_path: Path
) -> None:
    client, dataset = bq
    export_table(client, dataset, NOVEMBER + OCTOBER)
    results = {}
    for push_down in (False, True):
        config = gcp_project(
            tmp_path / str(push_down), bq_emulator.endpoint_url, client.project, dataset, push_down
        )
        outcome = run_flow(config, as_of=date(2024, 11, 30))
        assert outcome.failed_files == []
        results[push_down] = marts(outcome.published_path)
        rows = query(outcome.published_path, "select count(*) from finops.charges")[0][0]
        assert rows == (9 if not push_down else 8)  # the two same-day PO-1001 CPU lines become one

    raw = results[False]
    assert raw["charges"] == [("2024-10", 5.0, 5.0), ("2024-11", 28.99, 21.99)]
    assert dict(raw["burn"]) == pytest.approx({"PO-1001": 18.5 + 5.0, "PO-1002": 6.0})
    assert raw["commitments"] == [("commitment-1", "2024-11", 0.0, 0.0)]
    assert results[True] == raw

    database = tmp_path / "False" / "out" / "finops.duckdb"
    tags = query(database, "select Tags from finops.charges where BilledCost = 2.0")
    assert tags == [('{"po":"PO-1002","team":"Zoë \\"ops\\" — ünïcode"}',)]
    categories = query(
        database, "select ChargeCategory, round(sum(BilledCost), 9) from finops.charges group by 1 order by 1"
    )
    assert categories == [("Adjustment", -0.01), ("Purchase", 3.0), ("Tax", 1.5), ("Usage", 29.5)]


def _query_jobs(proxy: gcp_rig.FaultProxy, since: int = 0) -> int:
    """Query jobs the client started through the proxy (jobs.insert or jobs.query) after request `since`."""
    started = [
        r for r in proxy.requests[since:] if r.method == "POST" and r.path.endswith(("/jobs", "/queries"))
    ]
    return len(started)


def _statuses(outcome: Any) -> list[tuple[str, str]]:
    return query(
        outcome.published_path,
        "select file_path, status from finops.run_files where run_id = ? and source = 'gcp' order by 1",
        [outcome.run_id],
    )


def test_only_months_whose_export_moved_are_pulled_again_and_throttling_is_retried(
    bq: tuple[bigquery.Client, str], bq_fault_proxy: gcp_rig.FaultProxy, tmp_path: Path
) -> None:
    client, dataset = bq
    table_id = export_table(client, dataset, NOVEMBER + OCTOBER)
    config = gcp_project(tmp_path, bq_fault_proxy.endpoint_url, client.project, dataset)
    bq_fault_proxy.fail_next(1, 403, "rateLimitExceeded")
    bq_fault_proxy.fail_next(1, 500, "backendError")
    first = run_flow(config, as_of=date(2024, 11, 30))
    assert (
        first.failed_files == [] and len(bq_fault_proxy.failed) == 2
    )  # both throttled requests were retried
    assert _query_jobs(bq_fault_proxy) == 3 + 2  # the listing and one pull per month, plus the two retried

    seen = len(bq_fault_proxy.requests)
    second = run_flow(config, as_of=date(2024, 11, 30))
    assert _query_jobs(bq_fault_proxy, seen) == 1  # only the listing: nothing moved, nothing pulled
    assert second.unchanged

    # Google writes a late October row a week later: October's MAX(export_time) moves, November's does not
    gcp_rig.insert_rows(client, table_id, [line(8, 0.75, month="202410", labels=PO_A, exported=8)])
    seen = len(bq_fault_proxy.requests)
    third = run_flow(config, as_of=date(2024, 11, 30))
    assert _query_jobs(bq_fault_proxy, seen) == 2
    label = f"bq://{client.project}.{dataset}.{TABLE}?invoice.month="
    assert _statuses(third) == [(label + "202410", "landed"), (label + "202411", "unchanged")]
    totals = "select x_billing_period, sum(BilledCost), count(*) from finops.charges group by 1 order by 1"
    assert query(third.published_path, totals) == [("2024-10", 5.75, 2), ("2024-11", 28.99, 8)]


def test_bad_costs_are_quarantined_and_a_broken_table_fails_with_a_clear_message(
    bq: tuple[bigquery.Client, str], bq_emulator: gcp_rig.BigQueryEmulator, tmp_path: Path
) -> None:
    client, dataset = bq
    export_table(client, dataset, [line(3, 1.0), line(4, float("nan")), line(5, 2.0)])
    gcp_rig.insert_rows(client, f"{client.project}.{dataset}.{TABLE}", [{**line(6, 1.0), "cost": None}])
    config = gcp_project(tmp_path / "nan", bq_emulator.endpoint_url, client.project, dataset)
    outcome = run_flow(config, as_of=date(2024, 11, 30))
    assert outcome.failed_files == []
    assert query(outcome.published_path, "select sum(BilledCost), count(*) from finops.charges") == [(3.0, 2)]
    quarantined = query(
        outcome.published_path,
        "select column_name, check_name, raw_value from finops.quarantine where row_number is not null "
        "order by all",
    )
    assert ("BilledCost", "is_decimal", "nan") in quarantined
    assert ("BilledCost", "not_nullable", None) in quarantined

    # a table whose schema lacks a column the pull names: that month fails, naming the column
    schema = [f for f in gcp_rig.standard_export_schema() if f.name != "cost_at_list"]
    other = f"{dataset}_old"
    table_id = gcp_rig.create_export_table(client, other, TABLE, schema)
    rows = [{k: v for k, v in line(3, 1.0).items() if k != "cost_at_list"}]
    gcp_rig.insert_rows(client, table_id, rows)
    outcome = run_flow(gcp_project(tmp_path / "drift", bq_emulator.endpoint_url, client.project, other),
                       as_of=date(2024, 11, 30))  # fmt: skip
    [failure] = outcome.failed_files
    assert "cost_at_list" in str(failure["error"]) and TABLE in str(failure["error"])

    # no table at all: the listing fails, naming the table
    outcome = run_flow(gcp_project(tmp_path / "missing", bq_emulator.endpoint_url, client.project, f"{dataset}_none"),
                       as_of=date(2024, 11, 30))  # fmt: skip
    [failure] = outcome.failed_files
    assert f"{client.project}.{dataset}_none.{TABLE}: not found" in str(failure["error"])
    client.delete_dataset(f"{client.project}.{other}", delete_contents=True, not_found_ok=True)


def test_permission_denied_fails_the_listing_and_landed_months_stand(
    bq: tuple[bigquery.Client, str], bq_fault_proxy: gcp_rig.FaultProxy, tmp_path: Path
) -> None:
    client, dataset = bq
    export_table(client, dataset, OCTOBER)
    config = gcp_project(tmp_path, bq_fault_proxy.endpoint_url, client.project, dataset)
    run_flow(config, as_of=date(2024, 11, 30))
    bq_fault_proxy.fail_next(1, 403, "accessDenied")
    outcome = run_flow(config, as_of=date(2024, 11, 30))
    [failure] = outcome.failed_files
    assert "permission denied" in str(failure["error"])
    assert query(outcome.published_path, "select sum(BilledCost) from finops.charges") == [(5.0,)]


def _focus_schema() -> list[bigquery.SchemaField]:
    text = [
        "BillingAccountId",
        "BillingCurrency",
        "ChargeCategory",
        "ProviderName",
        "ServiceName",
        "SubAccountId",
    ]
    times = ["BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"]
    tags = bigquery.SchemaField(
        "Tags", "RECORD", mode="REPEATED",
        fields=[bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("value", "STRING")],
    )  # fmt: skip
    return [
        *[bigquery.SchemaField(name, "STRING") for name in text],
        *[bigquery.SchemaField(name, "TIMESTAMP") for name in times],
        bigquery.SchemaField("BilledCost", "FLOAT"),
        bigquery.SchemaField("EffectiveCost", "FLOAT"),
        tags,
        bigquery.SchemaField("x_ExportTime", "TIMESTAMP"),
    ]


def _focus_row(day: int, billed: float, effective: float, project: str, po_number: str | None,
               category: str = "Usage") -> dict[str, Any]:  # fmt: skip
    """A row of Google's FOCUS export, written by hand for the same usage as the detailed export below."""
    start = datetime(2024, 11, day, tzinfo=UTC)
    return {
        "BillingAccountId": "010101-ABCDEF-123456", "BillingCurrency": "USD", "ChargeCategory": category,
        "ProviderName": "Google Cloud", "ServiceName": "Compute Engine", "SubAccountId": project,
        "BillingPeriodStart": datetime(2024, 11, 1, tzinfo=UTC), "BillingPeriodEnd": datetime(2024, 12, 1, tzinfo=UTC),
        "ChargePeriodStart": start, "ChargePeriodEnd": start.replace(hour=1),
        "BilledCost": billed, "EffectiveCost": effective,
        "Tags": [{"key": "po", "value": po_number}] if po_number else [],
        "x_ExportTime": datetime(2024, 12, 1, tzinfo=UTC),
    }  # fmt: skip


def test_detailed_and_focus_exports_of_the_same_usage_publish_the_same_marts(
    bq: tuple[bigquery.Client, str], bq_emulator: gcp_rig.BigQueryEmulator, tmp_path: Path
) -> None:
    client, dataset = bq
    account = "010101_ABCDEF_123456"
    detailed = gcp_rig.create_export_table(
        client, dataset, f"gcp_billing_export_resource_v1_{account}", gcp_rig.detailed_export_schema()
    )
    gcp_rig.insert_rows(client, detailed, [
        {**line(3, 10.0, labels=PO_A, credits=[SUD]), "resource": {"name": "vm-1", "global_name": "//vm-1"}},
        {**line(4, 4.0, project=PROJECT_B), "resource": {"name": "vm-2", "global_name": "//vm-2"}},
        line(30, 1.5, cost_type="tax"),
    ])  # fmt: skip
    focus = gcp_rig.create_export_table(
        client, dataset, f"gcp_billing_export_focus_{account}", _focus_schema()
    )
    gcp_rig.insert_rows(client, focus, [
        _focus_row(3, 10.0, 9.0, "proj-a", "PO-1001"),
        _focus_row(4, 4.0, 4.0, "proj-b", "PO-1002"),  # Google applies the project's label, as inheritance does
        _focus_row(30, 1.5, 1.5, "proj-a", None, category="Tax"),
    ])  # fmt: skip

    results = {}
    for export_type in ("detailed", "focus"):
        sources = gcp_source_toml(bq_emulator.endpoint_url, client.project, dataset).replace(
            f'table = "{TABLE}"',
            # the FOCUS view is filtered on ChargePeriodStart: look back far enough for November 2024
            f'billing_account_id = "010101-ABCDEF-123456"\nexport_type = "{export_type}"\nlookback_months = 36',
        )
        pos = [po("PO-1001", total_amount="100.00"), po("PO-1002", total_amount="50.00")]
        config = make_project(tmp_path / export_type, {}, pos, sources_toml=sources)
        outcome = run_flow(config, as_of=date(2024, 11, 30))
        assert outcome.failed_files == []
        results[export_type] = marts(outcome.published_path)
        results[export_type].pop("commitments")
    # by hand: billed 10 + 4 + 1.5, effective 9 + 4 + 1.5; PO-1001 10, PO-1002 4
    assert results["detailed"]["charges"] == [("2024-11", 15.5, 14.5)]
    assert dict(results["detailed"]["burn"]) == {"PO-1001": 10.0, "PO-1002": 4.0}
    assert results["focus"] == results["detailed"]
    resources = query(tmp_path / "detailed" / "out" / "finops.duckdb",
                      "select ResourceId from finops.charges where ResourceId is not null order by 1")  # fmt: skip
    assert resources == [("vm-1",), ("vm-2",)]
