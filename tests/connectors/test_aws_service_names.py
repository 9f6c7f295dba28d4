"""ServiceName from AWS CUR 2.0 is the product name AWS's FOCUS export states for the same line items.

CUR 2.0 (Data Exports) has no `product_product_name` column: the name is the `product_name` key of the `product`
map (a MAP in Parquet, JSON text in CSV), while `product_servicecode` and `line_item_product_code` hold codes
such as `AmazonEC2`. The deliveries here are shaped that way (tests/aws_billing.py), put on a real moto S3 and
read back through the connector (manifest, download, reader) before the CUR → FOCUS mapping.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any, Literal

import aws_rig
import duckdb
import polars as pl
import pyarrow as pa
import pytest
from aws_billing import BUCKET, EC2, PAYER, TEAM_A, TEAM_B, Item, cur2_rows, cur2_table, focus_rows
from botocore.client import BaseClient

from finrecon.connectors import aws_cur
from finrecon.models.config import AwsCurSource
from finrecon.warehouse.aws_landing import cur_to_focus

S3 = "Amazon Simple Storage Service"
RDS = "Amazon Relational Database Service"
SP = "Savings Plans for AWS Compute usage"
ITEMS = [
    Item("usage", 3, TEAM_A, EC2, "PO-1001", 10.0),
    Item("usage", 4, TEAM_B, S3, None, 4.0),
    Item("usage", 5, TEAM_B, RDS, None, 7.0),
    Item(
        "sp_fee", 1, PAYER, SP, None, 6.0, effective=1.0, commitment="arn:aws:savingsplans::1:savingsplan/s"
    ),
    Item("tax", 30, PAYER, EC2, None, 1.2),
]


LEGACY_SAMPLE = Path(__file__).parents[1] / "data" / "aws" / "aws_cur_legacy_anonymous.csv"


def _source(endpoint: str, export_name: str, export_type: str = "cur2") -> AwsCurSource:
    return AwsCurSource.model_validate({
        "kind": "aws_cur", "export_type": export_type, "bucket": BUCKET, "prefix": "exports",
        "export_name": export_name, "region": "us-east-1", "endpoint_url": endpoint, "max_attempts": 2,
    })  # fmt: skip


def _mapped_service_names(client: BaseClient, source: AwsCurSource, folder: Path) -> list[str | None]:
    """ServiceName of each row of the source's one delivery, in delivery order, as the landing maps it."""
    [ref] = aws_cur.list_deliveries(client, source).manifests
    files = aws_cur.download_delivery(client, source, aws_cur.read_manifest(client, source, ref), folder)
    chunks = aws_cur.iter_delivery_files(source, files)
    mapped = [cur_to_focus(chunk, source.export_type).sort("x_source_row") for chunk in chunks]
    return [name for frame in mapped for name in frame.get_column("ServiceName").to_list()]


def _service_names(
    s3: BaseClient,
    endpoint: str,
    tmp_path: Path,
    rows: list[dict[str, Any]],
    fmt: Literal["parquet", "csv.gz"],
) -> list[str | None]:
    """ServiceName of each delivered row, in delivery order, after the connector read it and staging mapped it."""
    export = f"cur2-{fmt.replace('.', '-')}"
    aws_rig.put_data_export(
        s3, BUCKET, "exports", export, "2024-11", [cur2_table(rows)], fmt, execution_id="e1"
    )
    source = _source(endpoint, export)
    return _mapped_service_names(aws_cur.s3_client(source), source, tmp_path / fmt)


@pytest.mark.parametrize("fmt", ["parquet", "csv.gz"])
def test_cur2_service_names_are_the_focus_exports_product_names(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path, fmt: Literal["parquet", "csv.gz"]
) -> None:
    names = _service_names(s3, moto.endpoint_url, tmp_path, cur2_rows(ITEMS), fmt)

    # what AWS's FOCUS export of the same line items says, row for row
    assert names == [row["ServiceName"] for row in focus_rows(ITEMS)]
    assert names == [EC2, S3, RDS, SP, EC2]  # by hand: the product names, never a code such as AmazonEC2


def test_a_row_without_the_name_in_its_product_map_falls_back_to_its_product_codes_name_then_the_code(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path
) -> None:
    ec2, s3_transfer, new_service = cur2_rows([Item("usage", 3, TEAM_A, EC2, None, 1.0)] * 3)
    rows = [
        ec2 | {"product": {}},  # an empty map
        # S3 data transfer: the service code is AWSDataTransfer, the product (and its name) is S3's
        s3_transfer | {"product": {"servicename": "AWS Data Transfer"}, "line_item_product_code": "AmazonS3",
                       "product_servicecode": "AWSDataTransfer"},
        new_service | {"product": {}, "line_item_product_code": "AWSBrandNewService"},
    ]  # fmt: skip

    names = _service_names(s3, moto.endpoint_url, tmp_path, rows, "parquet")

    assert names == [EC2, S3, "AWSBrandNewService"]


def test_cur2_delivery_schema_is_the_data_exports_one() -> None:
    """The fixture is shaped like CUR 2.0: `product` is a map, and no column exists that AWS does not deliver."""
    schema = cur2_table(cur2_rows(ITEMS)).schema
    assert schema.field("product").type == pa.map_(pa.string(), pa.string())
    assert "product_product_name" not in schema.names


def test_legacy_cur_service_names_stay_its_product_name_column(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path
) -> None:
    """The real legacy sample: every row's ServiceName is its `product/ProductName` (counted here by DuckDB on the
    file itself), including S3 data transfer rows whose `product/servicecode` is AWSDataTransfer."""
    sample = pl.read_csv(LEGACY_SAMPLE, infer_schema=False).to_arrow()
    aws_rig.put_legacy_cur(s3, BUCKET, "exports", "legacy", date(2023, 11, 1), date(2023, 12, 1), [sample],
                           "create_new", assembly_id="a1", fmt="csv.gz")  # fmt: skip
    source = _source(moto.endpoint_url, "legacy", "cur_legacy")

    names = _mapped_service_names(aws_cur.s3_client(source), source, tmp_path)

    expected = duckdb.execute(
        'select "product/ProductName", count(*) from read_csv(?, all_varchar = true) group by 1',
        [str(LEGACY_SAMPLE)],
    ).fetchall()
    assert Counter(names) == dict(expected)
    assert Counter(names)["Amazon Simple Storage Service"] == 799  # by hand from the sample: 422 + 376 + 1
