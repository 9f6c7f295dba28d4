"""`finrecon bench azure`'s export month in Azurite: laid out as tests/azure_rig.py lays one out, the manifest lists
blobs holding the rows it says, and the connector's own listing, manifest reader and download find and read them
(the flow and the focus-converter peer are not run here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import azure_rig
import duckdb
import pytest

from finrecon.bench import azure
from finrecon.connectors import azure_exports
from finrecon.models.config import AzureExportSource

ROWS, PER_PART = 2_500, 1_000


@pytest.fixture(scope="module")
def conn_str(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with azure.azurite_server(tmp_path_factory.mktemp("azurite") / "data") as value:
        yield value


def _count(path: Path) -> int:
    reader = "read_parquet" if path.name.endswith(".parquet") else "read_csv"
    return int(duckdb.sql(f"select count(*) from {reader}(?)", params=[path.as_posix()]).fetchall()[0][0])


@pytest.mark.parametrize(
    ("export_type", "fmt"), [("FocusCost", "csv.gz"), ("FocusCost", "parquet"), ("ActualCost", "csv.gz")]
)
def test_manifest_lists_blobs_holding_the_rows(
    tmp_path: Path, conn_str: str, monkeypatch: pytest.MonkeyPatch, export_type: azure.ExportType, fmt: Any
) -> None:
    data = azure.write_azure_files(tmp_path / "gen", ROWS, export_type, fmt, PER_PART, peer_csv=False)
    container = azure.container_client(conn_str, f"layout-{export_type.lower()}-{fmt.replace('.', '')}")
    manifest_name = azure.upload_export(container, data, tmp_path / "gen")

    manifest = json.loads(container.download_blob(manifest_name).readall())
    assert manifest_name == f"exports/bench-azure/20261001-20261031/{azure.RUN_ID}/manifest.json"
    ext = "csv.gz" if fmt == "csv.gz" else "snappy.parquet"
    names = [b["blobName"] for b in manifest["blobs"]]
    assert names == [
        f"exports/bench-azure/20261001-20261031/{azure.RUN_ID}/part_{i}_0001.{ext}" for i in range(3)
    ]
    total = 0
    for blob in manifest["blobs"]:
        body = container.download_blob(blob["blobName"]).readall()
        assert len(body) == blob["byteCount"]
        local = tmp_path / Path(blob["blobName"]).name
        local.write_bytes(body)
        rows = _count(local)
        assert rows == blob["dataRowCount"]
        total += rows
    assert total == ROWS == manifest["dataRowCount"] and manifest["blobCount"] == 3
    assert manifest["exportConfig"]["type"] == export_type

    # the same keys, in the same order, as tests/azure_rig.py's export run
    rig = azure_rig.put_cost_export(
        container, "rig", "rig", date(2026, 10, 1), [b"a,b\n1,2\n"], data_version="1.0r2",
        export_type="FocusCost", file_format="Csv", compression="None", run_id="r", submitted_time=azure.SUBMITTED_TIME,
    )  # fmt: skip
    rig_manifest = json.loads(container.download_blob(rig).readall())
    assert list(manifest) == list(rig_manifest)
    for key in ("exportConfig", "deliveryConfig", "runInfo"):
        assert list(manifest[key]) == list(rig_manifest[key])
    assert list(manifest["blobs"][0]) == list(rig_manifest["blobs"][0])

    # the connector finds the month, accepts its version and reads every row
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", conn_str)
    source = AzureExportSource(kind="azure_export", container=container.container_name, root_folder_path="exports",
                               export_name=azure.EXPORT_NAME)  # fmt: skip
    listing = azure_exports.list_months(container, source)
    assert [m.period for m in listing.months] == ["2026-10"] and not listing.problems
    found = azure_exports.latest_manifest(container, source, listing.months[0])
    azure_exports.check_supported(found, source)
    files = azure_exports.download_month(container, source, found, tmp_path / "fetched")
    read = sum(chunk.height for chunk in azure_exports.iter_month(source, found, files, chunk_rows=700))
    assert read == ROWS
