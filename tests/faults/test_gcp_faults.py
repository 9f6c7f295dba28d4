"""The GCP billing export on the BigQuery emulator behind a faulty proxy, over two nights.

Night 1: 500, 429, a reset and a request held past the configured timeout are retried with backoff; the totals are
the fault-free ones. Night 2: two months changed but BigQuery fails them for good (500 until the retry deadline,
401 expired credentials): only they fail, each with one clear message, a new month lands, and their night-1
versions stay published, stale.

Figures by hand: one export line per month (cost as given); a late line is added to September and October.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import gcp_rig
import pytest
from fault_proxy import FaultProxy, reset, slow, status
from google.cloud import bigquery
from support import make_project, po, query, run_flow

pytest_plugins = ["connectors.conftest", "azure_query_server"]
pytestmark = pytest.mark.usefixtures("prefect_harness")

TABLE = "gcp_billing_export_v1_010101_ABCDEF_123456"
BY_PERIOD = "select x_billing_period, sum(BilledCost) from finops.charges group by 1 order by 1"
JSON = {"Content-Type": "application/json; charset=UTF-8"}
INSERT = r"/projects/[^/]+/jobs$"  # jobs.insert: every query starts here
RESULTS = r"/projects/[^/]+/queries/"  # jobs.getQueryResults


def _error(code: int, reason: str, headers: dict[str, str] | None = None) -> Any:
    return status(code, JSON | (headers or {}), gcp_rig.bigquery_error_body(code, reason))


def line(month: str, day: int, cost: float, exported: int = 1) -> dict[str, Any]:
    """One standard-export row (nested as Google writes it)."""
    start = datetime(int(month[:4]), int(month[4:]), day, tzinfo=UTC)
    return {
        "billing_account_id": "010101-ABCDEF-123456",
        "service": {"id": "6F81-5844-456A", "description": "Compute Engine"},
        "sku": {"id": "CP-1", "description": "N2 Instance Core running in Americas"},
        "usage_start_time": start, "usage_end_time": start.replace(hour=1),
        "project": {"id": "proj-a", "number": "1", "name": "Project A", "labels": []},
        "labels": [], "credits": [],
        "location": {"location": "us-central1", "country": "US", "region": "us-central1", "zone": "us-central1-a"},
        "export_time": datetime(2024, 12, exported, tzinfo=UTC),
        "cost": cost, "currency": "USD", "currency_conversion_rate": 1.0,
        "usage": {"amount": 1.0, "unit": "seconds", "amount_in_pricing_units": 1.0, "pricing_unit": "hour"},
        "invoice": {"month": month}, "cost_type": "regular", "cost_at_list": cost,
    }  # fmt: skip


def _project(root: Path, endpoint: str, project: str, dataset: str) -> Path:
    source = f"""
[[sources]]
kind = "gcp_bigquery"
name = "gcp"
project = "{project}"
dataset = "{dataset}"
table = "{TABLE}"
endpoint_url = "{endpoint}"
storage_read_api = false
retry_initial_seconds = 0.05
retry_deadline_seconds = 6
request_timeout_seconds = 3
"""
    return make_project(root, {}, [po("PO-1001")], sources_toml=source)


def test_bigquery_faults_transient_retried_persistent_fail_their_month_which_stays_published_stale(
    bq: tuple[bigquery.Client, str],
    bq_emulator: gcp_rig.BigQueryEmulator,
    fault_proxy: Callable[[str, str], FaultProxy],
    tmp_path: Path,
) -> None:
    client, dataset = bq
    table_id = gcp_rig.create_export_table(client, dataset, TABLE, gcp_rig.standard_export_schema())
    gcp_rig.insert_rows(
        client, table_id, [line("202409", 3, 4.0), line("202410", 7, 5.0), line("202411", 2, 7.0)]
    )
    proxy = fault_proxy("gcp-bigquery", bq_emulator.endpoint_url)
    proxy.inject("POST", INSERT, _error(500, "backendError"))
    proxy.inject("GET", RESULTS, _error(429, "rateLimitExceeded", {"Retry-After": "1"}))
    proxy.inject("POST", INSERT, reset())
    proxy.inject("POST", INSERT, slow(4))  # past request_timeout_seconds = 3
    config = _project(tmp_path, proxy.endpoint_url, client.project, dataset)

    first = run_flow(config, as_of=date(2024, 11, 30))

    assert first.failed_files == []
    assert query(first.published_path, BY_PERIOD) == [("2024-09", 4.0), ("2024-10", 5.0), ("2024-11", 7.0)]
    assert sorted(proxy.faults_applied()) == sorted(["status 500", "status 429", "reset", "slow 4"])
    # four queries (the listing and three months) were started; three inserts were sent again after a fault
    assert proxy.count("POST", INSERT, fault=None) == 4
    assert proxy.count("POST", INSERT) == 4 + 3
    assert proxy.count("GET", RESULTS, fault="status 429") == 1

    # Night 2: late rows move September and October; December arrives; BigQuery fails the two months for good.
    late = [line("202409", 20, 1.0, exported=9), line("202410", 21, 0.5, exported=9)]
    gcp_rig.insert_rows(client, table_id, [*late, line("202412", 1, 3.0)])
    proxy.inject("POST", INSERT, _error(401, "authError"), times=None, body='"202409"')
    proxy.inject("POST", INSERT, _error(500, "backendError"), times=None, body='"202410"')
    seen = len(proxy.requests)

    second = run_flow(config, as_of=date(2024, 12, 31))

    # December landed, November stood; September and October keep their night-1 pull
    expected = [("2024-09", 4.0), ("2024-10", 5.0), ("2024-11", 7.0), ("2024-12", 3.0)]
    assert query(second.published_path, BY_PERIOD) == expected
    failed = {str(f["file_path"])[-6:]: str(f["error"]) for f in second.failed_files}
    assert sorted(failed) == ["202409", "202410"]
    where = f"{client.project}.{dataset}.{TABLE}: "
    assert failed["202409"].startswith(
        where
        + "credentials refused (HTTP 401 authError: injected by FaultProxy: authError): expired or revoked; "
        "refresh them"
    )
    assert failed["202410"].startswith(
        where
        + f"BigQuery at {proxy.endpoint_url} still failing after retrying for retry_deadline_seconds = 6 "
        "(HTTP 500 backendError: injected by FaultProxy: backendError)"
    )
    assert "retry_deadline_seconds = 6" in failed["202410"] and "rerun later" in failed["202410"]
    stale = {str(f["file_path"])[-6:]: [s["last_good_run"] for s in f["stale"]] for f in second.failed_files}
    assert stale == {"202409": [first.run_id], "202410": [first.run_id]}
    [message] = query(
        second.published_path, "select message from finops.runs where run_id = ?", [second.run_id]
    )[0]
    assert message.startswith("stale: 2 input(s) failed this run")
    # expired credentials: google-auth refreshes the token and resends at most twice, then it is not retried
    expired = sum(1 for r in proxy.requests[seen:] if r.fault == "status 401")
    assert 1 <= expired <= 3
    # the 500s were retried with backoff until the 6 s deadline: several attempts, not unbounded
    assert 3 <= sum(1 for r in proxy.requests[seen:] if r.fault == "status 500") <= 40
