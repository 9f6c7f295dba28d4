"""The Azure test rig itself: Azurite answers the real SDK, and exports are laid out and counted right.

Expected sizes and counts are written out by hand from the literal file contents, not recomputed by the rig.
"""

from __future__ import annotations

import gzip
import io
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import azure_rig
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from azure.core.pipeline import PipelineResponse
from azure.storage.blob import BlobServiceClient, ContainerClient

NOV = date(2024, 11, 1)
SUBMITTED = "2024-11-25T06:12:34.5234447Z"

# 12 bytes, 2 data rows / 8 bytes, 1 data row.
PART_0 = b"a,b\n1,2\n3,4\n"
PART_1 = b"a,b\n5,6\n"


def _put(container: ContainerClient, files: list[bytes], **overrides: Any) -> str:
    kwargs: dict[str, Any] = {
        "data_version": "1.0r2",
        "export_type": "FocusCost",
        "file_format": "Csv",
        "compression": "None",
        "run_id": "run-a",
        "submitted_time": SUBMITTED,
    }
    kwargs.update(overrides)
    return azure_rig.put_cost_export(container, "exports", "focus-daily", NOV, files, **kwargs)


def test_two_csv_files_and_their_manifest(blob_container: ContainerClient) -> None:
    manifest_name = _put(blob_container, [PART_0, PART_1])

    run = "exports/focus-daily/20241101-20241130/run-a"
    assert manifest_name == f"{run}/manifest.json"
    assert azure_rig.list_names(blob_container, "exports/") == [
        f"{run}/manifest.json",
        f"{run}/part_0_0001.csv",
        f"{run}/part_1_0001.csv",
    ]
    assert azure_rig.get_bytes(blob_container, f"{run}/part_0_0001.csv") == PART_0
    manifest = azure_rig.read_manifest(blob_container, manifest_name)
    assert manifest == {
        "manifestVersion": "2024-04-01",
        "byteCount": 20,
        "blobCount": 2,
        "dataRowCount": 3,
        "exportConfig": {
            "exportName": "focus-daily",
            "resourceId": "/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.CostManagement/exports/focus-daily",
            "dataVersion": "1.0r2",
            "apiVersion": "2023-07-01-preview",
            "type": "FocusCost",
            "timeFrame": "MonthToDate",
            "granularity": None,
        },
        "deliveryConfig": {
            "partitionData": True,
            "dataOverwriteBehavior": "OverwritePreviousReport",
            "fileFormat": "Csv",
            "compressionMode": "None",
            "containerUri": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/finrecon-test/providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
            "rootFolderPath": "exports",
        },
        "runInfo": {
            "executionType": "Scheduled",
            "submittedTime": SUBMITTED,
            "runId": "run-a",
            "startDate": "2024-11-01T00:00:00",
            "endDate": "2024-11-30T00:00:00Z",
        },
        "blobs": [
            {"blobName": f"{run}/part_0_0001.csv", "byteCount": 12, "dataRowCount": 2},
            {"blobName": f"{run}/part_1_0001.csv", "byteCount": 8, "dataRowCount": 1},
        ],
    }
    # Same key order as Microsoft's example (a reader should not care, but the fixture should look real).
    assert list(manifest) == [
        "manifestVersion",
        "byteCount",
        "blobCount",
        "dataRowCount",
        "exportConfig",
        "deliveryConfig",
        "runInfo",
        "blobs",
    ]


def test_manifest_is_written_last(azurite: azure_rig.Azurite, blob_container: ContainerClient) -> None:
    # Last-Modified has 1 s resolution and Azurite's ETags are random, so record the PUTs on the wire instead.
    puts: list[str] = []

    def record(response: PipelineResponse[Any, Any]) -> None:
        request = response.http_request
        if request.method == "PUT" and response.http_response.status_code == 201:
            puts.append(request.url.split("?")[0].rsplit("/", 1)[-1])

    service = azure_rig.blob_service_client(azurite.connection_string, raw_response_hook=record)
    container = service.get_container_client(blob_container.container_name)
    _put(container, [PART_0, PART_1, PART_1])

    assert puts == ["part_0_0001.csv", "part_1_0001.csv", "part_2_0001.csv", "manifest.json"]
    blobs = {b.name.rsplit("/", 1)[-1]: b for b in blob_container.list_blobs()}
    assert all(blobs["manifest.json"].last_modified >= b.last_modified for b in blobs.values())


def test_overwrite_replaces_the_month_folder(blob_container: ContainerClient) -> None:
    # Neighbours that an overwrite must not touch: another month of the export, another export.
    azure_rig.put_raw(blob_container, "exports/focus-daily/20241001-20241031/old/manifest.json", b"{}")
    azure_rig.put_raw(blob_container, "exports/actual-daily/20241101-20241130/x/manifest.json", b"{}")
    _put(blob_container, [PART_0, PART_1], run_id="run-a")
    azure_rig.put_raw(blob_container, "exports/focus-daily/20241101-20241130/stray.txt", b"left by someone")

    second = _put(blob_container, [PART_1], run_id="run-b", submitted_time="2024-11-26T06:00:00Z")

    assert azure_rig.list_names(blob_container) == [
        "exports/actual-daily/20241101-20241130/x/manifest.json",
        "exports/focus-daily/20241001-20241031/old/manifest.json",
        "exports/focus-daily/20241101-20241130/run-b/manifest.json",
        "exports/focus-daily/20241101-20241130/run-b/part_0_0001.csv",
    ]
    manifest = azure_rig.read_manifest(blob_container, second)
    assert (manifest["byteCount"], manifest["blobCount"], manifest["dataRowCount"]) == (8, 1, 1)


def test_create_new_report_keeps_both_runs(blob_container: ContainerClient) -> None:
    first = _put(blob_container, [PART_0], run_id="run-a", overwrite=False)
    second = _put(
        blob_container, [PART_1], run_id="run-b", overwrite=False, submitted_time="2024-11-26T06:00:00Z"
    )

    month = "exports/focus-daily/20241101-20241130"
    assert azure_rig.list_names(blob_container, month + "/") == [
        f"{month}/run-a/manifest.json",
        f"{month}/run-a/part_0_0001.csv",
        f"{month}/run-b/manifest.json",
        f"{month}/run-b/part_0_0001.csv",
    ]
    for name, rows in ((first, 2), (second, 1)):
        manifest = azure_rig.read_manifest(blob_container, name)
        assert manifest["deliveryConfig"]["dataOverwriteBehavior"] == "CreateNewReport"
        assert manifest["dataRowCount"] == rows


def test_parquet_row_counts(blob_container: ContainerClient) -> None:
    rows = [{"BilledCost": float(i), "SubAccountId": f"sub-{i}"} for i in range(5)]
    schema = pa.schema([("BilledCost", pa.float64()), ("SubAccountId", pa.string())])
    files = [azure_rig.parquet_bytes(rows), azure_rig.parquet_bytes([], schema=schema)]
    assert azure_rig.parquet_bytes(rows) == files[0]  # deterministic

    name = _put(blob_container, files, file_format="Parquet", compression="Snappy")

    manifest = azure_rig.read_manifest(blob_container, name)
    assert [b["dataRowCount"] for b in manifest["blobs"]] == [5, 0]
    assert manifest["dataRowCount"] == 5
    assert manifest["blobs"][0]["blobName"].endswith("/part_0_0001.snappy.parquet")
    assert manifest["byteCount"] == len(files[0]) + len(files[1])
    table = pq.read_table(io.BytesIO(azure_rig.get_bytes(blob_container, manifest["blobs"][0]["blobName"])))
    assert table.column("SubAccountId").to_pylist() == ["sub-0", "sub-1", "sub-2", "sub-3", "sub-4"]
    assert table.schema.metadata is None or b"ARROW:schema" not in table.schema.metadata


def test_gzip_csv_counts_rows_after_gunzip_and_quoted_newlines(blob_container: ContainerClient) -> None:
    data = azure_rig.csv_bytes(
        [{"a": 1, "b": "two\nlines"}, {"a": None, "b": True}, {"a": 3, "c": "x,y"}], gzip=True
    )
    assert gzip.decompress(data) == b'a,b,c\n1,"two\nlines",\n,true,\n3,,"x,y"\n'
    assert azure_rig.csv_bytes([{"a": 1}], gzip=True) == azure_rig.csv_bytes([{"a": 1}], gzip=True)
    assert azure_rig.csv_bytes([], columns=["a", "b"]) == b"a,b\n"

    name = _put(blob_container, [data], compression="Gzip")

    manifest = azure_rig.read_manifest(blob_container, name)
    assert manifest["blobs"][0]["blobName"].endswith("/part_0_0001.csv.gz")
    assert manifest["dataRowCount"] == 3
    assert manifest["deliveryConfig"]["compressionMode"] == "Gzip"


def test_timestamp_folder_leap_february_and_given_row_counts(blob_container: ContainerClient) -> None:
    name = azure_rig.put_cost_export(
        blob_container,
        "",
        "actual",
        date(2024, 2, 1),
        [PART_0],
        data_version="2023-05-01",
        export_type="ActualCost",
        file_format="Csv",
        compression="None",
        run_id="5d1c7f",
        submitted_time="2024-02-10T15:30:59Z",
        timestamp_folder=True,
        data_row_counts=[99],
    )

    assert name == "actual/20240201-20240229/202402101530/5d1c7f/manifest.json"
    manifest = azure_rig.read_manifest(blob_container, name)
    assert manifest["dataRowCount"] == 99  # taken as given: for tests of a lying manifest
    assert manifest["deliveryConfig"]["rootFolderPath"] == ""
    assert manifest["runInfo"]["endDate"] == "2024-02-29T00:00:00Z"


def test_raw_helpers_and_listing_order(blob_container: ContainerClient) -> None:
    for name in ("p/part_2_0001.csv", "p/part_10_0001.csv", "p/Z.csv", "q/other.csv"):
        azure_rig.put_raw(blob_container, name, name.encode())
    azure_rig.put_raw(blob_container, "p/Z.csv", b"replaced")
    azure_rig.delete_blob(blob_container, "q/other.csv")

    # Ordinal order by name, as Azure lists: upper case first, and part_10 before part_2.
    assert azure_rig.list_names(blob_container, "p/") == [
        "p/Z.csv",
        "p/part_10_0001.csv",
        "p/part_2_0001.csv",
    ]
    assert azure_rig.get_bytes(blob_container, "p/Z.csv") == b"replaced"
    assert azure_rig.list_names(blob_container, "q/") == []


def test_environment_points_production_style_clients_at_azurite(blob_container: ContainerClient) -> None:
    # As the connector does it: the connection string from the environment, default client settings.
    service = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
    azure_rig.put_raw(blob_container, "hello.txt", b"hi")
    assert (
        service.get_container_client(blob_container.container_name).download_blob("hello.txt").readall()
        == b"hi"
    )
    assert "AZURE_CLIENT_SECRET" not in os.environ


def test_bad_arguments_are_refused(blob_container: ContainerClient) -> None:
    with pytest.raises(ValueError, match="first day"):
        azure_rig.put_cost_export(
            blob_container, "r", "e", date(2024, 11, 2), [PART_0],
            data_version="1.0", export_type="FocusCost", file_format="Csv", compression="None",
            run_id="x", submitted_time=SUBMITTED,
        )  # fmt: skip
    with pytest.raises(ValueError, match="do not combine"):
        _put(blob_container, [PART_0], compression="Snappy")
    with pytest.raises(ValueError, match="data_row_counts"):
        _put(blob_container, [PART_0], data_row_counts=[1, 2])
    assert azure_rig.list_names(blob_container) == []


@pytest.mark.parametrize(
    "test_name",
    ["test_x", "test_p[Parquet-Snappy]", "T" * 200, "---", "test__a--b"],
)
def test_container_names_are_valid(test_name: str) -> None:
    name = azure_rig.container_name_for(test_name, "0a1b2c3d")
    assert re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}", name), name


def test_missing_install_says_run_make_azurite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(azure_rig, "AZURITE_DIR", tmp_path / "missing")
    with pytest.raises(RuntimeError, match="make azurite"):
        azure_rig.start_azurite()
