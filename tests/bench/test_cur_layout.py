"""`finrecon bench cur`'s delivery in a moto S3: the manifest lists the parts, they hold the rows, and the
connector's own listing and manifest reader find them (the flow and the focus-converter peer are not run here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from finrecon.bench import cur
from finrecon.connectors.aws_cur import list_deliveries, read_manifest
from finrecon.models.config import AwsCurSource


@pytest.fixture(scope="module")
def endpoint() -> Any:
    with cur.moto_server() as url:
        yield url


@pytest.mark.parametrize("export_type", ["cur_legacy", "cur2"])
def test_manifest_lists_parts_holding_the_rows(
    tmp_path: Path, endpoint: str, export_type: cur.ExportType
) -> None:
    data = cur.write_cur_files(tmp_path, 2_500, export_type, rows_per_part=1_000, peer_csv=False)
    client = cur.s3_client(endpoint)
    prefix = f"layout-{export_type}"
    manifest_key = cur.upload_delivery(client, data, tmp_path, prefix=prefix)
    manifest = json.loads(client.get_object(Bucket=cur.BUCKET, Key=manifest_key)["Body"].read())
    listed = manifest["reportKeys"] if export_type == "cur_legacy" else manifest["dataFiles"]
    assert len(listed) == 3
    total = 0
    for n, entry in enumerate(listed):
        key = entry.removeprefix(f"s3://{cur.BUCKET}/")
        local = tmp_path / f"fetched-{n}-{Path(key).name}"
        client.download_file(cur.BUCKET, key, str(local))
        reader = f"read_csv('{local}')" if export_type == "cur_legacy" else f"read_parquet('{local}')"
        total += int(duckdb.sql(f"select count(*) from {reader}").fetchall()[0][0])
        if export_type == "cur_legacy":
            assert len(duckdb.sql(f"select * from {reader} limit 0").columns) >= 90
    assert total == 2_500
    source = AwsCurSource(kind="aws_cur", export_type=export_type, bucket=cur.BUCKET, prefix=prefix,
                          export_name=cur.EXPORT_NAME, region="us-east-1", endpoint_url=endpoint)  # fmt: skip
    listing = list_deliveries(client, source)
    assert [m.period for m in listing.manifests] == [cur.PERIOD] and not listing.problems
    delivery = read_manifest(client, source, listing.manifests[0])
    assert len(delivery.data_keys) == 3 and len(delivery.columns) == len(data.columns)
