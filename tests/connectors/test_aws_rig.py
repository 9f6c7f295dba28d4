"""Tests of the AWS test rig itself: layouts, manifests, encodings and the counting proxy.

The connector tests trust these writers to lay out buckets as AWS does, so the expected keys here are
spelled out literally rather than rebuilt with the rig's own helpers.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

import aws_rig
import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

TAGS = pa.map_(pa.string(), pa.string())
CUR2_SCHEMA = pa.schema(
    [
        ("line_item_usage_account_id", pa.string()),
        ("line_item_unblended_cost", pa.float64()),
        ("line_item_usage_start_date", pa.timestamp("ms", tz="UTC")),
        ("resource_tags", TAGS),
    ]
)


def cur2_table(account: str, costs: list[float], tags: list[list[tuple[str, str]] | None]) -> pa.Table:
    start = dt.datetime(2024, 11, 3, 10, 0, tzinfo=dt.UTC)
    return pa.table(
        {
            "line_item_usage_account_id": [account] * len(costs),
            "line_item_unblended_cost": costs,
            "line_item_usage_start_date": [start] * len(costs),
            "resource_tags": tags,
        },
        schema=CUR2_SCHEMA,
    )


def read_json(s3: BaseClient, bucket: str, key: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(aws_rig.get_bytes(s3, bucket, key))
    return data


def test_data_export_parquet_two_files_then_manifest_last(
    s3: BaseClient, counting_proxy: aws_rig.CountingProxy
) -> None:
    t1 = cur2_table("111111111111", [1.5, 2.25], [[("user:env", "prod")], None])
    t2 = cur2_table("222222222222", [0.125], [[]])
    via_proxy = aws_rig.s3_client(counting_proxy.endpoint_url)

    manifest_key = aws_rig.put_data_export(
        via_proxy, "cur-bucket", "cur2", "my-export", "2024-11", [t1, t2], "parquet", "exec-1"
    )

    data = "cur2/my-export/data/BILLING_PERIOD=2024-11"
    assert manifest_key == "cur2/my-export/metadata/BILLING_PERIOD=2024-11/my-export-Manifest.json"
    assert aws_rig.list_keys(s3, "cur-bucket") == [
        f"{data}/my-export-00001.snappy.parquet",
        f"{data}/my-export-00002.snappy.parquet",
        manifest_key,
    ]
    # Raw paths are percent-encoded as botocore sent them ('=' becomes %3D).
    puts = [
        unquote(path)
        for method, path, _ in counting_proxy.requests
        if method == "PUT" and path.count("/") > 1
    ]
    assert puts[-1] == f"/cur-bucket/{manifest_key}"  # the commit marker goes last

    manifest = read_json(s3, "cur-bucket", manifest_key)
    assert manifest == {
        "executionId": "exec-1",
        "account": "123456789012",
        "bucket": "cur-bucket",
        "exportName": "my-export",
        "dataFiles": [
            f"s3://cur-bucket/{data}/my-export-00001.snappy.parquet",
            f"s3://cur-bucket/{data}/my-export-00002.snappy.parquet",
        ],
        "columns": [
            {"name": "line_item_usage_account_id", "type": "string"},
            {"name": "line_item_unblended_cost", "type": "double"},
            {"name": "line_item_usage_start_date", "type": "timestamp"},
            {"name": "resource_tags", "type": "map<string,string>"},
        ],
        "billingPeriod": {"start": "2024-11-01T00:00:00.000Z", "end": "2024-12-01T00:00:00.000Z"},
        "compression": "PARQUET",
        "format": "PARQUET",
        "additionalOutputFiles": [],
    }

    first = pq.read_table(
        io.BytesIO(aws_rig.get_bytes(s3, "cur-bucket", f"{data}/my-export-00001.snappy.parquet"))
    )
    assert pa.types.is_map(first.schema.field("resource_tags").type)  # a real Parquet MAP, not JSON text
    assert first.column("resource_tags").to_pylist() == [[("user:env", "prod")], None]
    assert first.column("line_item_unblended_cost").to_pylist() == [1.5, 2.25]


def test_data_files_are_deterministic_and_prefix_may_be_empty(s3: BaseClient) -> None:
    table = cur2_table("111111111111", [1.0], [[("k", "v")]])
    formats: list[tuple[Literal["parquet", "csv.gz"], str]] = [
        ("parquet", "e-00001.snappy.parquet"),
        ("csv.gz", "e-00001.csv.gz"),
    ]
    for fmt, name in formats:
        aws_rig.put_data_export(s3, "bkt", "", "e", "2024-12", [table], fmt, "x1")
        first = aws_rig.get_bytes(s3, "bkt", f"e/data/BILLING_PERIOD=2024-12/{name}")
        aws_rig.put_data_export(s3, "bkt", "", "e", "2024-12", [table], fmt, "x2")
        assert aws_rig.get_bytes(s3, "bkt", f"e/data/BILLING_PERIOD=2024-12/{name}") == first
    manifest = read_json(s3, "bkt", "e/metadata/BILLING_PERIOD=2024-12/e-Manifest.json")
    assert manifest["billingPeriod"] == {
        "start": "2024-12-01T00:00:00.000Z",
        "end": "2025-01-01T00:00:00.000Z",
    }


def test_data_export_csv_writes_maps_as_json_text(s3: BaseClient) -> None:
    table = cur2_table(
        "111111111111",
        [1e-07, 3.0, 0.5],
        [[("user:env", "prod"), ("user:team", "ä-data")], [], None],
    )
    key = aws_rig.put_data_export(
        s3, "cur-bucket", "p/q", "focus", "2024-11", [table], "csv.gz", "e1", subfolder="run-1"
    )

    manifest = read_json(s3, "cur-bucket", key)
    assert manifest["compression"] == "GZIP"
    assert manifest["format"] == "TEXT_OR_CSV"
    data_key = "p/q/focus/data/BILLING_PERIOD=2024-11/run-1/focus-00001.csv.gz"
    assert manifest["dataFiles"] == [f"s3://cur-bucket/{data_key}"]

    text = gzip.decompress(aws_rig.get_bytes(s3, "cur-bucket", data_key)).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [json.loads(r["resource_tags"]) if r["resource_tags"] else None for r in rows] == [
        {"user:env": "prod", "user:team": "ä-data"},
        {},
        None,
    ]
    assert [r["line_item_unblended_cost"] for r in rows] == ["0.0000001", "3.0", "0.5"]
    assert rows[0]["line_item_usage_start_date"] == "2024-11-03T10:00:00.000Z"


LEGACY_CSV = pa.table(
    {
        "identity/LineItemId": ["a", "b"],
        "lineItem/UnblendedCost": [1.0, None],
        "lineItem/UsageStartDate": [dt.datetime(2024, 11, 1), dt.datetime(2024, 11, 2)],
    }
)


def test_legacy_create_new_writes_two_identical_manifests(s3: BaseClient) -> None:
    key = aws_rig.put_legacy_cur(
        s3,
        "legacy",
        "cur",
        "rep",
        dt.date(2024, 11, 1),
        dt.date(2024, 12, 1),
        [LEGACY_CSV, LEGACY_CSV],
        "create_new",
        "asm-1",
        "csv.gz",
    )

    assert key == "cur/rep/20241101-20241201/rep-Manifest.json"
    assert aws_rig.list_keys(s3, "legacy") == [
        "cur/rep/20241101-20241201/asm-1/rep-1.csv.gz",
        "cur/rep/20241101-20241201/asm-1/rep-2.csv.gz",
        "cur/rep/20241101-20241201/asm-1/rep-Manifest.json",
        "cur/rep/20241101-20241201/rep-Manifest.json",
    ]
    top = aws_rig.get_bytes(s3, "legacy", key)
    assert aws_rig.get_bytes(s3, "legacy", "cur/rep/20241101-20241201/asm-1/rep-Manifest.json") == top
    manifest = json.loads(top)
    assert manifest["assemblyId"] == "asm-1"
    assert manifest["reportName"] == "rep"
    assert manifest["bucket"] == "legacy"
    assert manifest["billingPeriod"] == {"start": "20241101T000000.000Z", "end": "20241201T000000.000Z"}
    assert manifest["reportKeys"] == [
        "cur/rep/20241101-20241201/asm-1/rep-1.csv.gz",
        "cur/rep/20241101-20241201/asm-1/rep-2.csv.gz",
    ]
    assert manifest["columns"] == [
        {"category": "identity", "name": "LineItemId", "type": "String"},
        {"category": "lineItem", "name": "UnblendedCost", "type": "OptionalBigDecimal"},
        {"category": "lineItem", "name": "UsageStartDate", "type": "DateTime"},
    ]
    assert (manifest["compression"], manifest["contentType"], manifest["charset"]) == (
        "GZIP",
        "text/csv",
        "UTF-8",
    )
    assert manifest["additionalArtifactKeys"] == []

    text = gzip.decompress(aws_rig.get_bytes(s3, "legacy", manifest["reportKeys"][0])).decode()
    assert text.splitlines() == [
        "identity/LineItemId,lineItem/UnblendedCost,lineItem/UsageStartDate",
        "a,1.0,2024-11-01T00:00:00.000Z",
        "b,,2024-11-02T00:00:00.000Z",
    ]


@pytest.mark.parametrize(("padding", "month"), [(False, "month=1"), (True, "month=01")])
def test_legacy_overwrite_layout_month_padding(s3: BaseClient, padding: bool, month: str) -> None:
    table = pa.table({"line_item_unblended_cost": [2.0], "bill_payer_account_id": ["999"], "extra": ["x"]})
    key = aws_rig.put_legacy_cur(
        s3,
        "legacy",
        "",
        "rep",
        dt.date(2025, 1, 1),
        dt.date(2025, 2, 1),
        [table],
        "overwrite",
        "asm-2",
        "parquet",
        month_padding=padding,
    )

    folder = f"rep/rep/year=2025/{month}"
    assert key == f"{folder}/rep-Manifest.json"
    assert aws_rig.list_keys(s3, "legacy") == [f"{folder}/rep-00001.snappy.parquet", key]
    manifest = read_json(s3, "legacy", key)
    assert manifest["reportKeys"] == [f"{folder}/rep-00001.snappy.parquet"]
    assert manifest["billingPeriod"] == {"start": "20250101T000000.000Z", "end": "20250201T000000.000Z"}
    assert (manifest["compression"], manifest["contentType"]) == ("Parquet", "Parquet")
    assert manifest["columns"] == [
        {"category": "line_item", "name": "unblended_cost", "type": "BigDecimal"},
        {"category": "bill", "name": "payer_account_id", "type": "String"},
        {"category": "", "name": "extra", "type": "String"},
    ]


def test_legacy_rejects_a_period_that_is_not_one_month(s3: BaseClient) -> None:
    with pytest.raises(ValueError, match="first day"):
        aws_rig.put_legacy_cur(
            s3, "bkt", "", "r", dt.date(2024, 11, 1), dt.date(2024, 11, 30), [], "overwrite", "a", "csv.gz"
        )


def test_bad_input_helpers_truncate_and_delete(s3: BaseClient) -> None:
    key = aws_rig.put_data_export(s3, "bkt", "x", "e", "2024-11", [LEGACY_CSV], "csv.gz", "e1")
    data_files = read_json(s3, "bkt", key)["dataFiles"]
    assert isinstance(data_files, list)
    data_key = data_files[0].removeprefix("s3://bkt/")
    whole = aws_rig.get_bytes(s3, "bkt", data_key)
    aws_rig.put_raw(s3, "bkt", data_key, whole[:15])
    with pytest.raises(EOFError):
        gzip.decompress(aws_rig.get_bytes(s3, "bkt", data_key))
    aws_rig.delete_object(s3, "bkt", data_key)
    assert aws_rig.list_keys(s3, "bkt") == [key]


def test_counting_proxy_counts_one_get_per_download_and_none_for_lists(
    s3: BaseClient, counting_proxy: aws_rig.CountingProxy, tmp_path: Path
) -> None:
    aws_rig.ensure_bucket(s3, "bkt")
    aws_rig.put_raw(s3, "bkt", "dir/a b+c.bin", b"x" * 1000)  # a key that needs URL-encoding
    aws_rig.put_raw(s3, "bkt", "other.bin", b"y")
    client = aws_rig.s3_client(counting_proxy.endpoint_url)

    client.download_file("bkt", "dir/a b+c.bin", str(tmp_path / "out.bin"))  # HEAD then GET
    assert (tmp_path / "out.bin").read_bytes() == b"x" * 1000
    assert counting_proxy.object_gets() == ["dir/a b+c.bin"]
    assert [m for m, _, _ in counting_proxy.requests] == ["HEAD", "GET"]

    counting_proxy.clear()
    listed = client.list_objects_v2(Bucket="bkt", Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/a b+c.bin"]
    assert counting_proxy.object_gets() == []
    [(method, path, query)] = counting_proxy.requests
    assert (method, path) == ("GET", "/bkt")
    assert "list-type=2" in query

    assert client.get_object(Bucket="bkt", Key="other.bin")["Body"].read() == b"y"
    assert counting_proxy.object_gets() == ["other.bin"]
    assert counting_proxy.object_gets("dir/") == []


def test_signed_requests_through_the_proxy_pass_moto_signature_checks(
    moto: aws_rig.MotoServer, s3: BaseClient, counting_proxy: aws_rig.CountingProxy
) -> None:
    """With moto's IAM checks on, a request signed for the proxy's Host is accepted; a rewritten Host is not."""
    aws_rig.ensure_bucket(s3, "bkt")
    aws_rig.put_raw(s3, "bkt", "k", b"payload")
    moto.set_iam_auth(3)  # create_user, create_access_key and put_user_policy go unchecked, then checks start
    try:
        iam = boto3.client(
            "iam",
            endpoint_url=moto.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        iam.create_user(UserName="rig")
        created = iam.create_access_key(UserName="rig")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="rig", PolicyName="s3", PolicyDocument=json.dumps(policy))

        def client_for(endpoint_url: str) -> BaseClient:
            return boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name="us-east-1",
                aws_access_key_id=created["AccessKeyId"],
                aws_secret_access_key=created["SecretAccessKey"],
                config=aws_rig.PATH_STYLE,
            )

        # Control first, so the checks are proven on: what a proxy that "fixed" Host would do.
        # Signed for moto's host:port, sent with another Host: moto recomputes the signature and refuses.
        rewrites_host = client_for(moto.endpoint_url)
        proxy_host = counting_proxy.endpoint_url.removeprefix("http://")

        def swap_host(request: object, **_: object) -> None:
            request.headers["Host"] = proxy_host  # type: ignore[attr-defined]

        rewrites_host.meta.events.register("before-send.s3.GetObject", swap_host)
        with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
            rewrites_host.get_object(Bucket="bkt", Key="k")

        # Through the proxy, Host is forwarded as signed: reads and writes pass the same checks.
        via_proxy = client_for(counting_proxy.endpoint_url)
        assert via_proxy.get_object(Bucket="bkt", Key="k")["Body"].read() == b"payload"
        via_proxy.put_object(Bucket="bkt", Key="k2", Body=b"more")
        assert counting_proxy.object_gets() == ["k"]
    finally:
        moto.set_iam_auth(float("inf"))
