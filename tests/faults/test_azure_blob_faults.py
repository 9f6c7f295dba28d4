"""Azure Cost Management exports on Azurite behind a faulty proxy, over two nights. Night 1: transient faults (503
ServerBusy with Retry-After — Storage's throttling —, 500, a reset, a response held past the read timeout, a body
cut short) are retried with backoff and change nothing. Night 2: persistent ones (every download cut short, 500
for good, an expired token) fail only their month, with one clear message, while November lands and each failed
month's last good version stays published (stale).

Figures by hand: one FOCUS charge per month, of the amount given below.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import azure_rig
import pytest
from azure.storage.blob import ContainerClient
from fault_proxy import FaultProxy, reset, slow, status, truncate
from support import make_project, po, query, run_flow

pytest_plugins = ["connectors.conftest", "azure_query_server"]
pytestmark = pytest.mark.usefixtures("prefect_harness")

BY_PERIOD = "select x_billing_period, sum(BilledCost) from finops.charges group by 1 order by 1"
SERVER_BUSY = status(
    503,
    {"Retry-After": "1", "x-ms-error-code": "ServerBusy", "Content-Type": "application/xml"},
    "<?xml version='1.0' encoding='utf-8'?><Error><Code>ServerBusy</Code><Message>Ingress is over the account "
    "limit.</Message></Error>",
)
INTERNAL_ERROR = status(
    500,
    {"x-ms-error-code": "InternalError", "Content-Type": "application/xml"},
    "<?xml version='1.0' encoding='utf-8'?><Error><Code>InternalError</Code><Message>Server error.</Message></Error>",
)
# What Storage answers a bearer token past its lifetime.
EXPIRED_TOKEN = status(
    401,
    {"x-ms-error-code": "InvalidAuthenticationInfo", "Content-Type": "application/xml"},
    "<?xml version='1.0' encoding='utf-8'?><Error><Code>InvalidAuthenticationInfo</Code><Message>Server failed "
    "to authenticate the request.</Message><AuthenticationErrorDetail>Lifetime validation failed. The token is "
    "expired.</AuthenticationErrorDetail></Error>",
)


def _put(container: ContainerClient, month: str, amount: float, run: str = "run-1") -> None:
    """One FocusCost export run of `month` (YYYY-MM) holding one charge of `amount`."""
    row = {
        "BilledCost": amount, "EffectiveCost": amount, "BillingAccountId": "ba-1", "BillingCurrency": "EUR",
        "BillingPeriodStart": f"{month}-01T00:00:00Z", "ChargePeriodStart": f"{month}-05T00:00:00Z",
        "ChargeCategory": "Usage", "ProviderName": "Microsoft", "SubAccountId": "sub-1",
        "x_ResourceGroupName": "rg-app",
    }  # fmt: skip
    first = date(int(month[:4]), int(month[5:]), 1)
    azure_rig.put_cost_export(container, "exports", "focus", first, [azure_rig.csv_bytes([row])],
                              data_version="1.0r2", export_type="FocusCost", file_format="Csv", compression="None",
                              run_id=run, submitted_time=f"{month}-28T03:00:00Z")  # fmt: skip


def data(container: str, month: str) -> str:
    return (
        rf"^/{azure_rig.DEV_ACCOUNT}/{container}/exports/focus/{month.replace('-', '')}01-\d{{8}}/[^/]+/part_"
    )


def manifest(container: str, month: str) -> str:
    prefix = rf"^/{azure_rig.DEV_ACCOUNT}/{container}/exports/focus/{month.replace('-', '')}01-\d{{8}}/"
    return prefix + "[^/]+/manifest.json$"


def _through(proxy: FaultProxy, azurite: azure_rig.Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection string the pipeline reads now names the proxy as the blob endpoint."""
    endpoint = f"BlobEndpoint=http://127.0.0.1:{proxy.port}/"
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        azurite.connection_string.replace(f"BlobEndpoint=http://127.0.0.1:{azurite.port}/", endpoint),
    )


def _project(root: Path, container: str) -> Path:
    source = f"""
[[sources]]
kind = "azure_export"
name = "azure"
container = "{container}"
root_folder_path = "exports"
export_name = "focus"
max_retries = 2
retry_backoff_seconds = 0.05
connect_timeout_seconds = 1
read_timeout_seconds = 1
"""
    return make_project(root, {}, [po("PO-1001")], sources_toml=source)


def _failed(files: list[dict[str, Any]]) -> dict[str, str]:
    return {str(f["file_path"]).rsplit("/", 1)[1]: str(f["error"]) for f in files}


def test_storage_faults_transient_retried_persistent_fail_their_month_which_stays_published_stale(
    blob_container: ContainerClient,
    azurite: azure_rig.Azurite,
    fault_proxy: Callable[[str, str], FaultProxy],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    name = blob_container.container_name
    for month, amount in (("2024-08", 4.0), ("2024-09", 5.0), ("2024-10", 6.0)):
        _put(blob_container, month, amount)
    proxy = fault_proxy("azure-blob", azurite.account_url.removesuffix("/" + azure_rig.DEV_ACCOUNT))
    _through(proxy, azurite, monkeypatch)
    listing = rf"^/{azure_rig.DEV_ACCOUNT}/{name}/?$"
    proxy.inject("GET", listing, SERVER_BUSY)  # Storage's throttling answer
    proxy.inject("GET", manifest(name, "2024-09"), INTERNAL_ERROR)
    proxy.inject("GET", data(name, "2024-09"), reset())
    proxy.inject("GET", data(name, "2024-10"), slow(2.5))  # past read_timeout_seconds = 1
    proxy.inject("GET", data(name, "2024-10"), truncate(10))
    proxy.inject("HEAD", manifest(name, "2024-10"), status(503, {"x-ms-error-code": "ServerBusy"}))
    config = _project(tmp_path, name)

    first = run_flow(config, as_of=date(2024, 11, 30))

    # Night 1: every transient fault was retried with backoff; the totals are the fault-free ones
    assert first.failed_files == []
    assert query(first.published_path, BY_PERIOD) == [("2024-08", 4.0), ("2024-09", 5.0), ("2024-10", 6.0)]
    assert sorted(proxy.faults_applied()) == sorted(
        ["status 503", "status 500", "reset", "slow 2.5", "truncate 10", "status 503"]
    )
    for method, path in [
        ("GET", listing), ("GET", manifest(name, "2024-09")), ("GET", data(name, "2024-09")),
        ("GET", data(name, "2024-10")), ("HEAD", manifest(name, "2024-10")),
    ]:  # fmt: skip
        assert proxy.count(method, path, fault=None) >= 1, (
            method,
            path,
        )  # sent again after the fault, went through
    # the slow and the cut-short answers to October's data blob were each followed by another attempt
    assert proxy.count("GET", data(name, "2024-10")) >= 3

    # Night 2: Azure rewrites August to October and delivers November; Storage fails three of them for good
    for month, amount in (("2024-08", 40.0), ("2024-09", 50.0), ("2024-10", 60.0)):
        _put(blob_container, month, amount, run="run-2")
    _put(blob_container, "2024-11", 7.0)
    proxy.inject("GET", data(name, "2024-08"), truncate(10), times=None)
    proxy.inject("GET", data(name, "2024-09"), INTERNAL_ERROR, times=None)
    proxy.inject("GET", manifest(name, "2024-10"), EXPIRED_TOKEN, times=None)
    seen = len(proxy.requests)

    outcome = run_flow(config, as_of=date(2024, 11, 30))

    # November landed; the failed months keep their first delivery and nothing of the second
    expected = [("2024-08", 4.0), ("2024-09", 5.0), ("2024-10", 6.0), ("2024-11", 7.0)]
    assert query(outcome.published_path, BY_PERIOD) == expected
    failed = _failed(outcome.failed_files)
    assert sorted(failed) == ["2024-08", "2024-09", "2024-10"]
    assert f"azure://{name}/exports/focus/202408" in failed["2024-08"]
    assert (
        "the download kept being cut short" in failed["2024-08"]
        and "nothing of it was landed" in failed["2024-08"]
    )
    assert f"azure://{name}/exports/focus/202409" in failed["2024-09"]
    assert "storage still failing after retries (HTTP 500 InternalError: Server error.)" in failed["2024-09"]
    assert "rerun later" in failed["2024-09"]
    assert (
        f"azure://{name}/exports/focus/202410" in failed["2024-10"] and "manifest.json" in failed["2024-10"]
    )
    assert (
        "expired or invalid (HTTP 401 InvalidAuthenticationInfo: Server failed to authenticate the request.); "
        "refresh it" in failed["2024-10"]
    )
    assert all(azure_rig.DEV_KEY not in message for message in failed.values())
    # the run's status names the stale months with the run whose version stands
    stale = {
        str(f["file_path"]).rsplit("/", 1)[1]: [s["last_good_run"] for s in f["stale"]]
        for f in outcome.failed_files
    }
    assert stale == {"2024-08": [first.run_id], "2024-09": [first.run_id], "2024-10": [first.run_id]}
    [message] = query(
        outcome.published_path, "select message from finops.runs where run_id = ?", [outcome.run_id]
    )[0]
    assert message.startswith("stale: 3 input(s) failed this run")
    for month in ("2024-08", "2024-09", "2024-10"):
        assert f"azure azure://{name}/exports/focus/{month} (last good: run {first.run_id})" in message
    # attempts: the 500 max_retries + 1 times, the expired token once, the cut-short blob a bounded number
    later = proxy.requests[seen:]
    hits = {
        month: sum(1 for r in later if r.method == "GET" and r.path.startswith(f"/{azure_rig.DEV_ACCOUNT}/{name}/")
                   and f"/{month.replace('-', '')}01-" in r.path and "/part_" in r.path)
        for month in ("2024-08", "2024-09")
    }  # fmt: skip
    assert hits["2024-09"] == 3
    assert 2 <= hits["2024-08"] <= 9
    assert sum(1 for r in later if r.fault == "status 401") == 1  # an expired credential is not retried
    downloads = tmp_path / "data" / "downloads"
    assert sorted(p.name for p in downloads.rglob("*") if p.is_file()) == []
