"""Bad AWS deliveries fail alone, with a message naming bucket and key; other periods load; stale ones stand."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import aws_rig
import pyarrow as pa
import pytest
from aws_billing import BUCKET, aws_project, cur2_table, usage_in_period
from botocore.client import BaseClient
from support import query

pytestmark = pytest.mark.usefixtures("prefect_harness")

EXPORT = "exports/cur2"


def table(period: str, amount: float) -> pa.Table:
    return cur2_table(usage_in_period(period, amount))


def _put(
    s3: BaseClient, period: str, tables: list[pa.Table], fmt: str = "parquet", execution: str = "e1"
) -> str:
    return aws_rig.put_data_export(s3, BUCKET, "exports", "cur2", period, tables, fmt, execution_id=execution)  # type: ignore[arg-type]


def _data_key(period: str, number: int = 1, suffix: str = "snappy.parquet") -> str:
    return f"{EXPORT}/data/BILLING_PERIOD={period}/cur2-{number:05d}.{suffix}"


def _failed(outcome: Any) -> dict[str, str]:
    """period (from the failing input's path) -> error message."""
    found = {}
    for failure in outcome.failed_files:
        path = str(failure["file_path"])
        period = path.split("BILLING_PERIOD=")[1][:7] if "BILLING_PERIOD=" in path else path
        found[period] = str(failure["error"])
    return found


def _with_text_amounts(table: pa.Table, replace: dict[int, str], extra_column: str) -> pa.Table:
    """The table with its unblended cost as text (as CSV delivers it), some values replaced, plus a new column."""
    amounts = [str(v) for v in table.column("line_item_unblended_cost").to_pylist()]
    for index, value in replace.items():
        amounts[index] = value
    index = table.schema.get_field_index("line_item_unblended_cost")
    table = table.set_column(index, "line_item_unblended_cost", pa.array(amounts, pa.string()))
    return table.append_column(extra_column, pa.array(["?"] * table.num_rows, pa.string()))


def test_each_bad_delivery_fails_alone_and_a_stale_period_keeps_its_last_good_rows(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path
) -> None:
    _put(s3, "2024-07", [table("2024-07", 5.0)])
    _put(s3, "2024-08", [table("2024-08", 6.0)])
    aws_rig.delete_object(s3, BUCKET, f"{EXPORT}/metadata/BILLING_PERIOD=2024-08/cur2-Manifest.json")
    _put(s3, "2024-09", [table("2024-09", 7.0)])
    _put(s3, "2024-10", [table("2024-10", 8.0)], fmt="csv.gz")
    gzip_key = _data_key("2024-10", suffix="csv.gz")
    whole = aws_rig.get_bytes(s3, BUCKET, gzip_key)
    aws_rig.put_raw(s3, BUCKET, gzip_key, whole[: len(whole) // 2])  # a truncated gzip
    november = cur2_table(
        usage_in_period("2024-11", 1.0) + usage_in_period("2024-11", 2.0) + usage_in_period("2024-11", 4.0)
    )
    _put(
        s3, "2024-11", [_with_text_amounts(november, {1: "abc"}, "line_item_never_seen_before")], fmt="csv.gz"
    )
    _put(s3, "2024-12", [])  # an empty month: a manifest listing no data files

    config = aws_project(tmp_path, moto.endpoint_url, "cur2", "cur2")
    first = aws_run(config)
    failed = _failed(first)
    assert sorted(failed) == ["2024-08", "2024-10", "2024-12"]
    assert (
        f"s3://{BUCKET}/{EXPORT}/data/BILLING_PERIOD=2024-08/ has data files but no manifest"
        in failed["2024-08"]
    )
    assert f"s3://{BUCKET}/{gzip_key}" in failed["2024-10"] and "cannot be read" in failed["2024-10"]
    assert f"s3://{BUCKET}/{EXPORT}/metadata/BILLING_PERIOD=2024-12/cur2-Manifest.json" in failed["2024-12"]
    assert "lists no data files" in failed["2024-12"]
    by_period = "select x_billing_period, sum(BilledCost) from finops.charges group by 1 order by 1"
    # November: 1.0 + 4.0; the "abc" row is quarantined, naming its data file, row and value
    assert query(first.published_path, by_period) == [("2024-07", 5.0), ("2024-09", 7.0), ("2024-11", 5.0)]
    quarantined = query(
        first.published_path,
        "select source_file, row_number, column_name, raw_value from finops.quarantine "
        "where row_number is not null order by column_name",
    )
    november_file = f"s3://{BUCKET}/{_data_key('2024-11', suffix='csv.gz')}"
    assert quarantined == [
        (november_file, 2, "BilledCost", "abc"),
        (november_file, 2, "EffectiveCost", "not a number: line_item_unblended_cost=abc"),
    ]
    books = query(
        first.published_path,
        "select rows_read, rows_loaded, rows_quarantined from finops.runs where run_id = ?",
        [first.run_id],
    )
    # read: July 1 + September 1 + November 3 (the failed periods' rows are unknown: nothing was read)
    assert books == [(5, 4, 1)]

    # September is re-delivered, but its manifest lists a file that is not there
    _put(s3, "2024-09", [table("2024-09", 70.0)], execution="e2")
    aws_rig.delete_object(s3, BUCKET, _data_key("2024-09"))
    second = aws_run(config)
    failed = _failed(second)
    assert sorted(failed) == ["2024-08", "2024-09", "2024-10", "2024-12"]
    assert (
        f"s3://{BUCKET}/{_data_key('2024-09')}: no such key, or no such bucket (HTTP 404: Not Found"
        in failed["2024-09"]
    )
    assert "listed in manifest" in failed["2024-09"]
    # the stale September keeps its last good delivery
    assert query(second.published_path, by_period) == [("2024-07", 5.0), ("2024-09", 7.0), ("2024-11", 5.0)]


def aws_run(config: Path) -> Any:
    from support import run_flow

    return run_flow(config, as_of=date(2024, 12, 31))


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        # a role that may read objects but not list the bucket: AWS answers AccessDenied
        (["s3:GetObject"], "access denied (HTTP 403 AccessDenied"),
        # credentials S3 does not know (revoked, or another account's): InvalidAccessKeyId
        (None, "credentials rejected (HTTP 403 InvalidAccessKeyId"),
    ],
)
def test_refused_credentials_fail_the_listing_and_every_landed_period_stands(
    s3: BaseClient,
    moto: aws_rig.MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    allowed: list[str] | None,
    expected: str,
) -> None:
    _put(s3, "2024-11", [table("2024-11", 3.0)])
    config = aws_project(tmp_path, moto.endpoint_url, "cur2", "cur2")
    aws_run(config)
    try:
        if allowed is None:
            moto.set_iam_auth(0)  # checks on: the fixtures' keys are unknown to moto's IAM
            secret = "testing"
        else:
            key_id, secret = aws_rig.restricted_credentials(moto, allowed)
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        outcome = aws_run(config)
    finally:
        moto.set_iam_auth(float("inf"))
    failed = _failed(outcome)
    assert list(failed) == [f"s3://{BUCKET}/{EXPORT}"]
    message = failed[f"s3://{BUCKET}/{EXPORT}"]
    assert message.startswith(f"s3://{BUCKET}/{EXPORT}/: {expected}")
    assert secret not in message  # no credential in the message
    assert query(outcome.published_path, "select sum(BilledCost) from finops.charges") == [(3.0,)]


@pytest.mark.parametrize(
    ("keep", "expected"), [(True, [("2024-10", 2.0), ("2024-11", 3.0)]), (False, [("2024-11", 3.0)])]
)
def test_a_month_expired_from_the_bucket_stands_unless_configured_otherwise(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path, keep: bool, expected: list[tuple[str, float]]
) -> None:
    _put(s3, "2024-10", [table("2024-10", 2.0)])
    _put(s3, "2024-11", [table("2024-11", 3.0)])
    extra = f"keep_missing_periods = {str(keep).lower()}"
    config = aws_project(tmp_path, moto.endpoint_url, "cur2", "cur2", extra=extra)
    aws_run(config)
    for key in aws_rig.list_keys(s3, BUCKET, f"{EXPORT}/"):  # a lifecycle rule expires October
        if "BILLING_PERIOD=2024-10" in key:
            aws_rig.delete_object(s3, BUCKET, key)
    outcome = aws_run(config)
    assert outcome.failed_files == []
    by_period = "select x_billing_period, sum(BilledCost) from finops.charges group by 1 order by 1"
    assert query(outcome.published_path, by_period) == expected
