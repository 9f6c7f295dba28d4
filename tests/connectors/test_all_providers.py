"""One night with every kind of source at once: FOCUS files, AWS CUR 2.0 in S3, the GCP export in BigQuery and an
Azure FOCUS export in Blob Storage land into the same published marts, each provider's figures intact."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aws_rig
import azure_rig
import gcp_rig
import pytest
from aws_billing import BUCKET, EC2, TEAM_A, Item, aws_source_toml, cur2_rows, cur2_table
from azure.storage.blob import ContainerClient
from botocore.client import BaseClient
from google.cloud import bigquery
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _gcp_line(cost: float) -> dict[str, Any]:
    start = datetime(2024, 11, 5, tzinfo=UTC)
    return {
        "billing_account_id": "01-02-03", "service": {"id": "s", "description": "Compute Engine"},
        "sku": {"id": "k", "description": "CPU"}, "usage_start_time": start, "usage_end_time": start,
        "project": {"id": "proj", "name": "Project", "labels": []}, "labels": [{"key": "po", "value": "PO-1001"}],
        "export_time": start, "cost": cost, "currency": "USD", "invoice": {"month": "202411"}, "cost_type": "regular",
    }  # fmt: skip


def test_every_provider_lands_into_one_set_of_marts(
    s3: BaseClient,
    moto: aws_rig.MotoServer,
    bq: tuple[bigquery.Client, str],
    bq_emulator: gcp_rig.BigQueryEmulator,
    blob_container: ContainerClient,
    tmp_path: Path,
) -> None:
    aws_rig.put_data_export(s3, BUCKET, "exports", "cur2", "2024-11",
                            [cur2_table(cur2_rows([Item("usage", 3, TEAM_A, EC2, "PO-1001", 10.0)]))],
                            "parquet", execution_id="e1")  # fmt: skip
    client, dataset = bq
    table = gcp_rig.create_export_table(client, dataset, "gcp_billing_export_v1_01_02_03",
                                        gcp_rig.standard_export_schema())  # fmt: skip
    gcp_rig.insert_rows(client, table, [_gcp_line(4.0)])
    azure_row = {"BilledCost": 2.5, "EffectiveCost": 2.5, "BillingAccountId": "ba", "BillingCurrency": "USD",
                 "BillingPeriodStart": "2024-11-01T00:00:00Z", "ChargePeriodStart": "2024-11-06T00:00:00Z",
                 "ChargeCategory": "Usage", "ProviderName": "Microsoft", "SubAccountId": "sub",
                 "Tags": '{"po": "PO-1001"}'}  # fmt: skip
    azure_rig.put_cost_export(blob_container, "exports", "focus", date(2024, 11, 1), [azure_rig.csv_bytes([azure_row])],
                              data_version="1.0", export_type="FocusCost", file_format="Csv", compression="None",
                              run_id="r", submitted_time="2024-11-07T00:00:00Z")  # fmt: skip
    sources = "\n".join([
        '[[sources]]\nkind = "focus_files"\nname = "files"\npath = "focus"',
        aws_source_toml(moto.endpoint_url, "cur2", "cur2"),
        f'[[sources]]\nkind = "gcp_bigquery"\nname = "gcp"\nproject = "{client.project}"\ndataset = "{dataset}"\n'
        f'billing_account_id = "01-02-03"\nendpoint_url = "{bq_emulator.endpoint_url}"\nstorage_read_api = false',
        f'[[sources]]\nkind = "azure_export"\nname = "azure"\ncontainer = "{blob_container.container_name}"\n'
        'root_folder_path = "exports"\nexport_name = "focus"',
    ])  # fmt: skip
    files = {"oracle.csv": [charge("2024-11-07", ProviderName="Oracle", BilledCost="1.25", EffectiveCost="1.25",
                                   Tags='{"po": "PO-1001"}')]}  # fmt: skip
    config = make_project(tmp_path, files, [po("PO-1001", total_amount="100.00")], sources_toml=sources)
    outcome = run_flow(config, as_of=date(2024, 11, 30))

    assert outcome.failed_files == []
    by_provider = query(
        outcome.published_path,
        "select provider_name, sum(total_cost), sum(valid_po_cost) from finops.tag_coverage group by 1 order by 1",
    )
    assert by_provider == [("AWS", 10.0, 10.0), ("Google Cloud", 4.0, 4.0), ("Microsoft", 2.5, 2.5),
                           ("Oracle", 1.25, 1.25)]  # fmt: skip
    # PO-1001 is paid from all four clouds: 10 + 4 + 2.5 + 1.25
    assert query(outcome.published_path, "select consumed_amount from finops.po_burn") == [(17.75,)]
