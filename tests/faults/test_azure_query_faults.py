"""The Cost Management query API (the local fake, real azure-mgmt-costmanagement client and DefaultAzureCredential)
behind a faulty proxy, over two nights.

Night 1: a 429 with Retry-After, a 500, a reset after the POST was sent and an answer held past the configured
timeout are retried with backoff (the query POST only reads, so resending it is safe); the totals are the
fault-free ones. Night 2: September's query is refused with an expired token and October's answers 500 for good:
only they fail, each with one clear message, November lands, and their night-1 versions stay published, stale.

Figures by hand: the records below, summed per month (land_as_charges: one charge per day × resource group).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from azure_query_server import CostQueryServer, FakeManagedIdentityEndpoint
from fault_proxy import FaultProxy, reset, slow, status
from support import make_project, po, query, run_flow

pytest_plugins = ["connectors.conftest", "azure_query_server"]
pytestmark = pytest.mark.usefixtures("prefect_harness")

SCOPE = "subscriptions/00000000-0000-0000-0000-0000000000aa"
QUERY = r"/providers/Microsoft\.CostManagement/query$"
BY_PERIOD = "select x_billing_period, sum(BilledCost) from finops.charges group by 1 order by 1"
JSON = {"Content-Type": "application/json"}
ARM_500 = status(
    500, JSON, '{"error": {"code": "InternalServerError", "message": "Encountered internal error."}}'
)
# ARM's answer to a bearer token past its expiry.
_CHALLENGE = (
    'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", '
    'error_description="The access token has expired."'
)
EXPIRED = status(
    401,
    JSON | {"WWW-Authenticate": _CHALLENGE},
    '{"error": {"code": "ExpiredAuthenticationToken", "message": "The access token expiry UTC time is earlier '
    'than current UTC time."}}',
)


def records(september: float, october: float, november: float | None = None) -> list[dict[str, object]]:
    """September's cost split over two resource groups; October's and November's in one."""
    found: list[dict[str, object]] = [
        {"date": "2024-09-03", "cost": september - 1.5, "currency": "USD", "ResourceGroupName": "rg-a"},
        {"date": "2024-09-04", "cost": 1.5, "currency": "USD", "ResourceGroupName": "rg-b"},
        {"date": "2024-10-05", "cost": october, "currency": "USD", "ResourceGroupName": "rg-a"},
    ]
    if november is not None:
        found.append({"date": "2024-11-06", "cost": november, "currency": "USD", "ResourceGroupName": "rg-a"})
    return found


def _project(root: Path, base_url: str) -> Path:
    source = f"""
[[sources]]
kind = "azure_query"
name = "azure-api"
scope = "{SCOPE}"
dataset = "ActualCost"
group_by = ["ResourceGroupName"]
months = 3
base_url = "{base_url}"
land_as_charges = true
max_retries = 4
retry_backoff_seconds = 0.05
connect_timeout_seconds = 1
read_timeout_seconds = 1
"""
    return make_project(root, {}, [po("PO-1001")], sources_toml=source)


def test_query_api_faults_transient_retried_persistent_fail_their_month_which_stays_published_stale(
    cost_query_server: CostQueryServer,
    managed_identity: FakeManagedIdentityEndpoint,
    fault_proxy: Callable[[str, str], FaultProxy],
    tmp_path: Path,
) -> None:
    cost_query_server.set_records(SCOPE, records(4.0, 3.0))
    proxy = fault_proxy("azure-query", cost_query_server.base_url)
    proxy.inject("POST", QUERY, status(429, JSON | {"Retry-After": "1"}, '{"error": {"code": "429"}}'))
    proxy.inject("POST", QUERY, ARM_500)
    proxy.inject("POST", QUERY, reset())
    proxy.inject("POST", QUERY, slow(2.5))  # past read_timeout_seconds = 1
    config = _project(tmp_path, proxy.endpoint_url)

    first = run_flow(config, as_of=date(2024, 11, 30))

    assert first.failed_files == []
    # by hand: September 2.5 + 1.5, October 3.0, November nothing yet
    assert query(first.published_path, BY_PERIOD) == [("2024-09", 4.0), ("2024-10", 3.0)]
    assert sorted(proxy.faults_applied()) == sorted(["status 429", "status 500", "reset", "slow 2.5"])
    assert proxy.count("POST", QUERY, fault=None) == 3  # one answered query per month
    assert proxy.count("POST", QUERY) == 3 + 4  # and one resend per fault
    assert {r.fault for r in proxy.requests} >= {"status 429", "status 500", "reset", "slow 2.5"}

    # Night 2: Azure restates September and October, November has cost; the API then fails the two for good
    cost_query_server.set_records(SCOPE, records(40.0, 30.0, november=2.0))
    proxy.inject("POST", QUERY, EXPIRED, times=None, body=r'"from": ?"2024-09-01')
    proxy.inject("POST", QUERY, ARM_500, times=None, body=r'"from": ?"2024-10-01')
    seen = len(proxy.requests)

    second = run_flow(config, as_of=date(2024, 11, 30))

    assert query(second.published_path, BY_PERIOD) == [("2024-09", 4.0), ("2024-10", 3.0), ("2024-11", 2.0)]
    failed = {str(f["file_path"])[-7:]: str(f["error"]) for f in second.failed_files}
    assert sorted(failed) == ["2024-09", "2024-10"]
    assert failed["2024-09"].startswith(
        f"azure-query {SCOPE}: credentials refused (HTTP 401 ExpiredAuthenticationToken: The access token "
        "expiry UTC time is earlier than current UTC time.)"
    )
    assert "refresh them" in failed["2024-09"]
    assert failed["2024-10"] == (
        f"azure-query {SCOPE}: still failing after 4 retries (HTTP 500 InternalServerError: Encountered internal "
        "error.); a service-side problem: rerun later"
    )
    assert all(managed_identity.header_secret not in m for m in failed.values())
    assert all(t.token not in m for t in managed_identity.tokens_issued for m in failed.values())
    stale = {str(f["file_path"])[-7:]: [s["last_good_run"] for s in f["stale"]] for f in second.failed_files}
    assert stale == {"2024-09": [first.run_id], "2024-10": [first.run_id]}
    [message] = query(
        second.published_path, "select message from finops.runs where run_id = ?", [second.run_id]
    )[0]
    assert message.startswith("stale: 2 input(s) failed this run")
    later = proxy.requests[seen:]
    assert sum(1 for r in later if r.fault == "status 401") == 1  # an expired token is not retried
    assert sum(1 for r in later if r.fault == "status 500") == 5  # max_retries = 4 after the first
