"""The GCP test rig itself: the real google-cloud-bigquery client against bqemulator, and the FaultProxy.

These pin down what the connector's tests rely on: nested billing-export rows round-trip with their Arrow
types, named parameters filter, transient BigQuery errors are retried by the client, non-retryable ones are
not, and the emulator's known gap (``_PARTITIONTIME`` is "now") is visible here if a new version changes it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import gcp_rig
import google.auth
import pyarrow as pa
import pytest
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.cloud import bigquery
from google.oauth2 import service_account

# Short backoff for tests; the client's default starts at up to 1 s and doubles.
FAST_RETRY = bigquery.DEFAULT_RETRY.with_delay(initial=0.05, maximum=0.2).with_timeout(10.0)


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _row(month: str, cost: float, credits: list[float], labels: dict[str, str], start: str) -> dict[str, Any]:
    """One standard-export line item; only the columns the tests read are set (the rest stay NULL / [])."""
    return {
        "billing_account_id": "012345-6789AB-CDEF01",
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
        "sku": {"id": "2E27-4F75-95CD", "description": "N1 Predefined Instance Core"},
        "usage_start_time": _ts(start),
        "usage_end_time": _ts(start) + dt.timedelta(hours=1),
        "labels": [{"key": k, "value": v} for k, v in labels.items()],
        "export_time": _ts(start) + dt.timedelta(hours=5),
        "cost": cost,
        "currency": "USD",
        "credits": [{"name": f"credit {i}", "amount": a, "type": "PROMOTION"} for i, a in enumerate(credits)],
        "invoice": {"month": month},
        "cost_type": "regular",
    }


ROWS = [
    _row("202411", 10.0, [-1.25, -0.5], {"env": "prod", "app": "web"}, "2024-11-01T05:00:00"),
    _row("202411", 2.5, [], {"env": "dev"}, "2024-11-30T23:00:00"),
    _row("202412", 4.0, [-0.25], {}, "2024-12-01T00:00:00"),
]


def _table(bq: tuple[bigquery.Client, str]) -> str:
    client, dataset = bq
    table_id = gcp_rig.create_export_table(
        client, dataset, "gcp_billing_export_v1_012345_6789AB_CDEF01", gcp_rig.standard_export_schema()
    )
    gcp_rig.insert_rows(client, table_id, ROWS)
    return table_id


def _month_config(month: str) -> bigquery.QueryJobConfig:
    return bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("month", "STRING", month)])


def test_nested_rows_round_trip_with_a_month_parameter(bq: tuple[bigquery.Client, str]) -> None:
    client, _ = bq
    table_id = _table(bq)
    sql = f"""
        SELECT service, labels, credits, cost,
               (SELECT SUM(c.amount) FROM UNNEST(credits) AS c) AS credit_total
        FROM `{table_id}` WHERE invoice.month = @month ORDER BY cost DESC
    """
    got = client.query(sql, job_config=_month_config("202411")).to_arrow(create_bqstorage_client=False)

    assert got.column("cost").to_pylist() == [10.0, 2.5]
    assert got.column("credit_total").to_pylist() == [
        -1.75,
        None,
    ]  # SUM over no credits is NULL, as in BigQuery
    assert got.column("labels").to_pylist() == [
        [{"key": "env", "value": "prod"}, {"key": "app", "value": "web"}],
        [{"key": "env", "value": "dev"}],
    ]
    assert got.column("credits").to_pylist()[0][1]["amount"] == -0.5
    # RECORD → struct, REPEATED RECORD → list<struct>, as the connector will receive them.
    assert pa.types.is_struct(got.schema.field("service").type)
    labels_type = got.schema.field("labels").type
    assert pa.types.is_list(labels_type) and pa.types.is_struct(labels_type.value_type)

    totals = client.query(
        f"""
        SELECT invoice.month AS invoice_month, COUNT(*) AS line_items, SUM(cost) AS cost,
               SUM(IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) AS c), 0)) AS credits,
               MAX(export_time) AS max_export_time
        FROM `{table_id}` WHERE invoice.month IN UNNEST(@months)
        GROUP BY invoice.month ORDER BY invoice_month
        """,
        job_config=bigquery.QueryJobConfig(
            query_parameters=[bigquery.ArrayQueryParameter("months", "STRING", ["202411", "202412"])]
        ),
    ).to_arrow(create_bqstorage_client=False)
    assert totals.to_pylist() == [
        # 10.0 + 2.5 = 12.5 cost; -1.25 - 0.5 = -1.75 credits; net 10.75
        {
            "invoice_month": "202411",
            "line_items": 2,
            "cost": 12.5,
            "credits": -1.75,
            "max_export_time": _ts("2024-12-01T04:00:00"),
        },
        {
            "invoice_month": "202412",
            "line_items": 1,
            "cost": 4.0,
            "credits": -0.25,
            "max_export_time": _ts("2024-12-01T05:00:00"),
        },
    ]


def test_omitted_repeated_fields_are_empty_arrays_not_null(bq: tuple[bigquery.Client, str]) -> None:
    client, _ = bq
    table_id = _table(bq)
    got = client.query(
        f"SELECT ARRAY_LENGTH(tags) AS n, TO_JSON_STRING(system_labels) AS j FROM `{table_id}` ORDER BY cost"
    ).to_arrow(create_bqstorage_client=False)
    assert got.to_pylist() == [{"n": 0, "j": "[]"}] * 3


def test_detailed_schema_adds_resource_and_numeric_price(bq: tuple[bigquery.Client, str]) -> None:
    client, dataset = bq
    standard = [f.name for f in gcp_rig.standard_export_schema()]
    detailed = [f.name for f in gcp_rig.detailed_export_schema()]
    assert detailed == [*standard, "resource", "price"]

    table_id = gcp_rig.create_export_table(
        client, dataset, "gcp_billing_export_resource_v1_X", gcp_rig.detailed_export_schema()
    )
    assert client.get_table(table_id).time_partitioning.type_ == "DAY"
    row = {
        **ROWS[0],
        "resource": {
            "name": "vm-1",
            "global_name": "//compute.googleapis.com/projects/p/zones/z/instances/1",
        },
        "price": {
            "effective_price": Decimal("0.031611"),
            "unit": "hour",
            "pricing_unit_quantity": Decimal(1),
        },
    }
    gcp_rig.insert_rows(client, table_id, [row])
    got = client.query(f"SELECT resource.name AS name, price FROM `{table_id}`").to_arrow(
        create_bqstorage_client=False
    )
    assert got.column("name").to_pylist() == ["vm-1"]
    assert got.column("price").type.field("effective_price").type == pa.decimal128(38, 9)
    assert got.column("price").to_pylist()[0]["effective_price"] == Decimal("0.031611")


def test_partition_pseudo_column_is_now_in_the_emulator(bq: tuple[bigquery.Client, str]) -> None:
    """A known emulator gap: every row is in today's partition, so partition filters select nothing useful."""
    client, _ = bq
    table_id = _table(bq)
    sql = f"SELECT COUNT(*) AS n FROM `{table_id}` WHERE _PARTITIONTIME >= TIMESTAMP(@d)"

    def count(day: dt.date) -> int:
        config = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("d", "DATE", day)])
        return int(
            client.query(sql, job_config=config).to_arrow(create_bqstorage_client=False)["n"][0].as_py()
        )

    assert count(dt.date(2024, 12, 1)) == 3  # real BigQuery: only rows exported on or after Dec 1
    assert count(dt.date.today() + dt.timedelta(days=2)) == 0


def test_missing_table_raises_not_found_when_results_are_read(bq: tuple[bigquery.Client, str]) -> None:
    client, dataset = bq
    job = client.query(f"SELECT cost FROM `{client.project}.{dataset}.gcp_billing_export_v1_NOPE`")
    with pytest.raises(gexc.NotFound, match="Not found: Table"):
        job.to_arrow(create_bqstorage_client=False)


def test_query_and_wait_swallows_errors_in_the_emulator(bq: tuple[bigquery.Client, str]) -> None:
    """A known emulator gap: ``jobs.query`` answers a failed query with 200, so connectors use ``client.query``."""
    client, dataset = bq
    rows = client.query_and_wait(f"SELECT cost FROM `{client.project}.{dataset}.gcp_billing_export_v1_NOPE`")
    assert rows.total_rows == 0  # real BigQuery raises NotFound here


def test_rate_limit_is_retried_by_the_client_default_retry(
    bq: tuple[bigquery.Client, str], bq_fault_proxy: gcp_rig.FaultProxy
) -> None:
    client, _ = bq
    table_id = _table(bq)
    proxied = gcp_rig.bq_client(bq_fault_proxy.endpoint_url, client.project)
    bq_fault_proxy.fail_next(1, 403, "rateLimitExceeded")

    got = proxied.query(
        f"SELECT SUM(cost) AS cost FROM `{table_id}` WHERE invoice.month = @month",
        job_config=_month_config("202411"),
    ).to_arrow(create_bqstorage_client=False)  # default retry: one wait of up to 1 s

    assert got.to_pylist() == [{"cost": 12.5}]
    jobs_insert = f"/bigquery/v2/projects/{client.project}/jobs"
    assert bq_fault_proxy.failed == [gcp_rig.RecordedRequest("POST", jobs_insert)]
    assert [r for r in bq_fault_proxy.requests if r.method == "POST"] == [
        gcp_rig.RecordedRequest("POST", jobs_insert)
    ] * 2
    assert bq_fault_proxy.pending_faults() == 0


def test_backend_errors_on_get_query_results_are_retried_with_a_fast_retry(
    bq: tuple[bigquery.Client, str], bq_fault_proxy: gcp_rig.FaultProxy
) -> None:
    """``to_arrow()`` reads results with the default retry; ``result(retry=...)`` is where a test shortens it."""
    client, _ = bq
    table_id = _table(bq)
    proxied = gcp_rig.bq_client(bq_fault_proxy.endpoint_url, client.project)
    bq_fault_proxy.fail_next(2, 500, "backendError", path_contains="/queries/")

    job = proxied.query(f"SELECT COUNT(*) AS n FROM `{table_id}`", retry=FAST_RETRY)
    got = job.result(retry=FAST_RETRY).to_arrow(create_bqstorage_client=False)

    assert got.to_pylist() == [{"n": 3}]
    assert len(bq_fault_proxy.failed) == 2
    assert all(r.path.endswith(f"/queries/{job.job_id}") for r in bq_fault_proxy.failed)


def test_non_retryable_errors_surface_at_once(
    bq: tuple[bigquery.Client, str], bq_fault_proxy: gcp_rig.FaultProxy
) -> None:
    client, _ = bq
    proxied = gcp_rig.bq_client(bq_fault_proxy.endpoint_url, client.project)
    bq_fault_proxy.fail_next(1, 403, "accessDenied")
    with pytest.raises(gexc.Forbidden, match="accessDenied"):
        proxied.query("SELECT 1 AS x").to_arrow(create_bqstorage_client=False)
    assert len(bq_fault_proxy.requests) == 1


def test_adc_resolves_to_the_fake_service_account(
    bq: tuple[bigquery.Client, str],
    bq_emulator: gcp_rig.BigQueryEmulator,
    gcp_token_server: gcp_rig.FakeTokenServer,
) -> None:
    """Production-style credentials (ADC) work against the emulator and only ever talk to loopback."""
    credentials, project = google.auth.default(scopes=["https://www.googleapis.com/auth/bigquery"])
    assert isinstance(credentials, service_account.Credentials)
    assert project == bq_emulator.project
    client = bigquery.Client(
        project=project,
        credentials=credentials,
        client_options=ClientOptions(api_endpoint=bq_emulator.endpoint_url),
    )
    before = gcp_token_server.requests
    assert client.query("SELECT 1 AS x").to_arrow(create_bqstorage_client=False).to_pylist() == [{"x": 1}]
    assert gcp_token_server.requests == before + 1


def test_missing_emulator_venv_says_how_to_build_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(gcp_rig, "BQEMULATOR_STAMP", tmp_path / "no-stamp")
    with pytest.raises(RuntimeError, match="run `make bqemulator`"):
        gcp_rig.start_bq_emulator()
