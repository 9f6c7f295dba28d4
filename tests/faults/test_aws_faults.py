"""AWS S3 (moto) behind a faulty proxy, over two nights. Night 1: transient faults (429 and 503 SlowDown with
Retry-After, 500, a reset, a response held past the read timeout, bodies cut short) are retried with backoff and
change nothing. Night 2 (through `finrecon run`): persistent ones (500 for good, every download cut short, an
expired token) fail only their billing period, with one clear message, while December lands and each failed
period's last good version stays published (stale), as the run's status and console say.

Figures by hand: one usage line item per period, of the amount given below.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import aws_rig
import pytest
from aws_billing import BUCKET, cur2_table, usage_in_period
from botocore.client import BaseClient
from fault_proxy import S3_EXPIRED_TOKEN, FaultProxy, reset, slow, status, truncate
from support import make_project, po, query, run_flow
from typer.testing import CliRunner

from finrecon.cli import app

pytest_plugins = ["connectors.conftest", "azure_query_server"]
pytestmark = pytest.mark.usefixtures("prefect_harness")

EXPORT = "exports/cur2"
BY_PERIOD = "select x_billing_period, sum(BilledCost) from finops.charges group by 1 order by 1"
LIST = rf"^/{BUCKET}/?$"
INTERNAL_ERROR = status(
    500,
    {"Content-Type": "application/xml"},
    "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>",
)


def _put(s3: BaseClient, period: str, amount: float, execution: str = "e1") -> None:
    """One Data Exports delivery of `period` holding one usage line item of `amount`."""
    table = cur2_table(usage_in_period(period, amount))
    aws_rig.put_data_export(s3, BUCKET, "exports", "cur2", period, [table], "parquet", execution_id=execution)


def data(period: str) -> str:
    return rf"^/{BUCKET}/{EXPORT}/data/BILLING_PERIOD={period}/"


def manifest(period: str) -> str:
    return rf"^/{BUCKET}/{EXPORT}/metadata/BILLING_PERIOD={period}/"


def _project(root: Path, endpoint: str) -> Path:
    source = f"""
[[sources]]
kind = "aws_cur"
name = "aws"
export_type = "cur2"
bucket = "{BUCKET}"
prefix = "exports"
export_name = "cur2"
region = "us-east-1"
endpoint_url = "{endpoint}"
max_attempts = 4
connect_timeout_seconds = 1
read_timeout_seconds = 1
"""
    return make_project(root, {}, [po("PO-1001")], sources_toml=source)


def _failed(outcome_files: list[dict[str, Any]]) -> dict[str, str]:
    return {str(f["file_path"]).split("BILLING_PERIOD=")[1][:7]: str(f["error"]) for f in outcome_files}


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_s3_faults_transient_retried_persistent_fail_their_period_which_stays_published_stale(
    s3: BaseClient, moto: aws_rig.MotoServer, fault_proxy: Callable[[str, str], FaultProxy], tmp_path: Path
) -> None:
    for period, amount in (("2024-09", 7.0), ("2024-10", 8.0), ("2024-11", 9.0)):
        _put(s3, period, amount)
    proxy = fault_proxy("aws-s3", moto.endpoint_url)
    slow_down = status(
        503, {"Retry-After": "1"}, "<Error><Code>SlowDown</Code><Message>Slow</Message></Error>"
    )
    proxy.inject("GET", LIST, status(429, {"Retry-After": "1"}))  # throttled listing
    proxy.inject("GET", manifest("2024-09"), slow_down)  # S3's own throttling answer
    proxy.inject("HEAD", data("2024-09"), INTERNAL_ERROR)
    proxy.inject("GET", data("2024-10"), reset())
    proxy.inject("GET", manifest("2024-10"), truncate(5))  # a manifest cut short after its headers
    proxy.inject("GET", manifest("2024-11"), slow(2.5))  # past read_timeout_seconds = 1
    proxy.inject("GET", data("2024-11"), truncate(10))
    config = _project(tmp_path, proxy.endpoint_url)

    first = run_flow(config, as_of=date(2024, 12, 31))

    # Night 1: every transient fault was retried; the totals are the fault-free ones (by hand: as delivered)
    assert first.failed_files == []
    assert query(first.published_path, BY_PERIOD) == [("2024-09", 7.0), ("2024-10", 8.0), ("2024-11", 9.0)]
    assert sorted(proxy.faults_applied()) == sorted(
        ["status 429", "status 503", "status 500", "reset", "truncate 5", "slow 2.5", "truncate 10"]
    )
    for method, path in [
        ("GET", LIST), ("GET", manifest("2024-09")), ("HEAD", data("2024-09")), ("GET", data("2024-10")),
        ("GET", manifest("2024-10")), ("GET", manifest("2024-11")), ("GET", data("2024-11")),
    ]:  # fmt: skip
        assert proxy.count(method, path, fault=None) >= 1, (
            method,
            path,
        )  # sent again after the fault, went through

    # Night 2: AWS restates September to November and delivers December; S3 fails three of them for good
    for period, amount in (("2024-09", 70.0), ("2024-10", 80.0), ("2024-11", 90.0)):
        _put(s3, period, amount, execution="e2")
    _put(s3, "2024-12", 10.0)
    proxy.inject("GET", data("2024-09"), INTERNAL_ERROR, times=None)
    proxy.inject("GET", data("2024-10"), truncate(10), times=None)
    proxy.inject("GET", manifest("2024-11"), S3_EXPIRED_TOKEN, times=None)
    seen = len(proxy.requests)

    result = CliRunner().invoke(app, ["run", "--config", str(config), "--as-of", "2024-12-31"])
    output = " ".join(result.output.split())

    assert result.exit_code == 1, output  # published, but inputs failed
    database = tmp_path / "out" / "finops.duckdb"
    # December landed; the three failed periods keep their first delivery, nothing of the second
    assert query(database, BY_PERIOD) == [
        ("2024-09", 7.0),
        ("2024-10", 8.0),
        ("2024-11", 9.0),
        ("2024-12", 10.0),
    ]
    run_id, message = query(
        database, "select run_id, message from finops.runs order by started_at desc limit 1"
    )[0]
    failed = _failed(
        [{"file_path": p, "error": e} for p, e in query(
            database, "select file_path, error from finops.run_files where run_id = ? and status = 'failed'", [run_id]
        )]
    )  # fmt: skip
    assert sorted(failed) == ["2024-09", "2024-10", "2024-11"]
    sep_key = f"s3://{BUCKET}/{EXPORT}/data/BILLING_PERIOD=2024-09/cur2-00001.snappy.parquet"
    # max_attempts = 4 is botocore's: retries after the first attempt
    assert (
        f"{sep_key}: S3 still failing after 5 attempts (HTTP 500 InternalError: We encountered an internal error.)"
        in failed["2024-09"]
    )
    assert "rerun later" in failed["2024-09"]
    oct_key = f"s3://{BUCKET}/{EXPORT}/data/BILLING_PERIOD=2024-10/cur2-00001.snappy.parquet"
    assert f"{oct_key}: the download kept being cut short" in failed["2024-10"]
    assert "nothing of it was landed" in failed["2024-10"]
    nov_manifest = f"s3://{BUCKET}/{EXPORT}/metadata/BILLING_PERIOD=2024-11/cur2-Manifest.json"
    assert (
        f"{nov_manifest}: credentials rejected (HTTP 400 ExpiredToken: The provided token has expired.); refresh them"
        in failed["2024-11"]
    )
    # the run's status names the stale periods, in the publication and on the console
    assert message.startswith("stale: 3 input(s) failed this run and keep their last good version: ")
    for period in ("2024-09", "2024-10", "2024-11"):
        assert f"BILLING_PERIOD={period}/cur2-Manifest.json (last good: run {first.run_id})" in message
        assert (
            f"stale: sources[0] (aws): s3://{BUCKET}/{EXPORT}/metadata/BILLING_PERIOD={period}/cur2-Manifest.json "
            f"keeps its last good version (landed by run {first.run_id})"
        ) in output
    assert output.count("file failed: sources[0] (aws)") == 3 and "Traceback" not in output
    assert aws_rig.SECRET_ACCESS_KEY + "\n" not in result.output
    # attempts: the 500 up to max_attempts; the cut-short body a bounded number of times; the expired token once
    later = proxy.requests[seen:]
    assert sum(1 for r in later if r.method == "GET" and "BILLING_PERIOD=2024-09/cur2-0" in r.path) == 5
    cut = sum(1 for r in later if r.method == "GET" and "BILLING_PERIOD=2024-10/cur2-0" in r.path)
    assert 2 <= cut <= 5
    assert (
        sum(1 for r in later if r.method == "GET" and "BILLING_PERIOD=2024-11/cur2-Manifest" in r.path) == 1
    )
    # no partial download is left where a later run could take it for a whole file
    assert [p.name for p in (tmp_path / "data" / "downloads").rglob("*") if p.is_file()] == []
