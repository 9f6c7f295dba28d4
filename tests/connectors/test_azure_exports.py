"""Azure Cost Management exports end to end: blobs laid out as Azure writes them, on a real Azurite, through the flow.

Expected figures come from tests/data/azure/README.md (exact sums of the public samples) or are worked by hand.
"""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path
from typing import Any

import azure_rig
import pytest
from azure.storage.blob import ContainerClient
from support import make_project, po, query, run_flow

from finrecon.connectors import azure_exports
from finrecon.models.config import AzureExportSource

pytestmark = pytest.mark.usefixtures("prefect_harness")

DATA = Path(__file__).parents[1] / "data" / "azure"
SEPTEMBER = date(2023, 9, 1)


def _csv_parts(path: Path, split: int) -> list[bytes]:
    """A sample CSV split into two partition files, each with the header (as Azure partitions a month)."""
    header, *lines = path.read_bytes().removeprefix(b"\xef\xbb\xbf").splitlines(keepends=True)
    return [header + b"".join(lines[:split]), header + b"".join(lines[split:])]


def azure_source_toml(container: str, export_name: str, name: str = "azure") -> str:
    return f"""
[[sources]]
kind = "azure_export"
name = "{name}"
container = "{container}"
root_folder_path = "exports"
export_name = "{export_name}"
"""


def _project(root: Path, sources: str) -> Path:
    return make_project(root, {}, [po("PO-1001")], sources_toml=sources)


def _put(container: ContainerClient, export: str, month: date, files: list[bytes], **options: Any) -> str:
    settings: dict[str, Any] = {"data_version": "2021-10-01", "export_type": "ActualCost", "file_format": "Csv",
                                "compression": "None", "run_id": "run-1", "submitted_time": "2023-10-02T03:00:00Z"}  # fmt: skip
    return azure_rig.put_cost_export(container, "exports", export, month, files, **(settings | options))


def test_actual_and_amortized_ea_exports_land_with_their_amortisation_rules(
    blob_container: ContainerClient, tmp_path: Path
) -> None:
    _put(blob_container, "actual", SEPTEMBER, _csv_parts(DATA / "EA_ActualCost_Small.csv", 6))
    gzipped = [gzip.compress(part, mtime=0) for part in _csv_parts(DATA / "EA_AmortizedCost_Small.csv", 20)]
    _put(blob_container, "amortized", SEPTEMBER, gzipped, export_type="AmortizedCost", compression="Gzip")
    sources = azure_source_toml(blob_container.container_name, "actual", "actual") + azure_source_toml(
        blob_container.container_name, "amortized", "amortized"
    )
    outcome = run_flow(_project(tmp_path, sources), as_of=date(2023, 9, 30))
    assert outcome.failed_files == []
    totals = query(
        outcome.published_path,
        "select x_azure_dataset, count(*), round(sum(BilledCost), 10), round(sum(EffectiveCost), 10) "
        "from finops.charges group by 1 order by 1",
    )
    # ActualCost: no amortisation, billed = effective = Σ Cost 8.5450077867 (README).
    # AmortizedCost: the RI- and SP-covered usage (0.493152 + 0.0060000005) were paid by their purchases: billed 0.
    expected = [
        ("ActualCost", 11, 8.5450077867, 8.5450077867),
        ("AmortizedCost", 28, 15.7977801361, 16.2969321366),
    ]
    assert [row[:2] for row in totals] == [row[:2] for row in expected]
    assert [row[2:] for row in totals] == [pytest.approx(row[2:], abs=1e-9) for row in expected]
    commitments = query(
        outcome.published_path,
        "select x_azure_dataset, ChargeCategory, CommitmentDiscountType, CommitmentDiscountStatus, "
        "CommitmentDiscountId like '%/reservations/%' from finops.charges "
        "where CommitmentDiscountId is not null order by all",
    )
    assert commitments == [
        (
            "ActualCost",
            "Purchase",
            "Reservation",
            None,
            True,
        ),  # the purchase's benefitId: the reservation order
        ("AmortizedCost", "Usage", "Reservation", "Used", True),
        ("AmortizedCost", "Usage", "Savings Plan", "Used", False),
    ]
    # dates as MM/DD/YYYY, Tags without braces, the subscription as the sub-account
    first = query(
        outcome.published_path,
        "select x_charge_date, SubAccountId, json_extract_string(Tags, '$.env') from finops.charges "
        "where x_azure_dataset = 'ActualCost' and x_source_row = 2 and x_source_file like '%part_0%'",
    )
    # the sample's second row: 09/04/2023, subscription ed570627-…, Tags `"CostCenter": "1234","env": "prod",…`
    assert first == [(date(2023, 9, 4), "ed570627-0265-4620-bb42-bae06bcfa914", "prod")]


def _focus_rows(subscriptions: list[str], costs: list[float]) -> list[dict[str, Any]]:
    return [
        {"BilledCost": cost, "EffectiveCost": cost, "BillingAccountId": "ba-1", "BillingCurrency": "EUR",
         "BillingPeriodStart": "2024-11-01T00:00:00Z", "ChargePeriodStart": "2024-11-05T00:00:00Z",
         "ChargeCategory": "Usage", "ProviderName": "Microsoft", "SubAccountId": sub,
         "x_ResourceGroupName": "rg-app", "Tags": '"po": "PO-1001"'}
        for sub, cost in zip(subscriptions, costs, strict=True)
    ]  # fmt: skip


def test_focus_export_takes_the_latest_run_of_a_month_and_normalises_empty_subscriptions(
    blob_container: ContainerClient, tmp_path: Path
) -> None:
    november = date(2024, 11, 1)
    focus = {"export_type": "FocusCost", "data_version": "1.0r2", "overwrite": False}
    old = azure_rig.csv_bytes(_focus_rows(["sub-1"], [100.0]))
    _put(
        blob_container,
        "focus",
        november,
        [old],
        run_id="run-old",
        submitted_time="2024-11-06T01:00:00Z",
        **focus,
    )
    subscriptions = ["sub-1", "00000000-0000-0000-0000-000000000000", ""]
    new = [azure_rig.csv_bytes(_focus_rows(subscriptions, [2.5, 1.25, 0.5]))]
    _put(
        blob_container,
        "focus",
        november,
        new[:1],
        run_id="run-new",
        submitted_time="2024-11-07T01:00:00Z",
        **focus,
    )
    outcome = run_flow(_project(tmp_path, azure_source_toml(blob_container.container_name, "focus")),
                       as_of=date(2024, 11, 30))  # fmt: skip
    assert outcome.failed_files == []
    rows = query(
        outcome.published_path,
        "select SubAccountId, BilledCost, x_resource_group, x_po_number from finops.charges order by all",
    )
    # run-new (submitted later) is the month; the empty GUID and the empty string are no subscription
    assert rows == [
        ("sub-1", 2.5, "rg-app", "PO-1001"),
        (None, 0.5, "rg-app", "PO-1001"),
        (None, 1.25, "rg-app", "PO-1001"),
    ]


def test_each_bad_month_fails_alone_with_a_clear_message(
    blob_container: ContainerClient, tmp_path: Path
) -> None:
    good = [azure_rig.csv_bytes(_focus_rows(["sub-1"], [1.0]))]
    focus = {"export_type": "FocusCost", "data_version": "1.0"}
    _put(blob_container, "focus", date(2024, 6, 1), good, **focus)
    missing = _put(blob_container, "focus", date(2024, 7, 1), good, **focus)
    listed = azure_rig.read_manifest(blob_container, missing)["blobs"][0]["blobName"]
    azure_rig.delete_blob(blob_container, listed)
    _put(blob_container, "focus", date(2024, 8, 1), good, data_row_counts=[5], **focus)
    _put(blob_container, "focus", date(2024, 9, 1), good, export_type="FocusCost", data_version="9.9")
    no_manifest = _put(blob_container, "focus", date(2024, 10, 1), good, **focus)
    azure_rig.delete_blob(blob_container, no_manifest)

    outcome = run_flow(_project(tmp_path, azure_source_toml(blob_container.container_name, "focus")),
                       as_of=date(2024, 11, 30))  # fmt: skip
    failed = {str(f["file_path"]).rsplit("/", 1)[1]: str(f["error"]) for f in outcome.failed_files}
    assert sorted(failed) == ["2024-07", "2024-08", "2024-09", "2024-10"]
    assert (
        f"azure://{blob_container.container_name}/{listed}: no such blob in storage account {azure_rig.DEV_ACCOUNT} "
        "(HTTP 404 BlobNotFound: The specified blob does not exist.)" in failed["2024-07"]
    )
    assert "1 rows, the manifest says 5" in failed["2024-08"]
    assert "dataVersion '9.9' is not supported" in failed["2024-09"]
    assert "has data blobs but no manifest.json" in failed["2024-10"]
    # only June's one row landed
    assert query(outcome.published_path, "select sum(BilledCost), count(*) from finops.charges") == [(1.0, 1)]


def test_a_month_rewritten_while_it_is_read_is_refused(
    blob_container: ContainerClient, tmp_path: Path
) -> None:
    focus = {"export_type": "FocusCost", "data_version": "1.0"}
    _put(blob_container, "focus", date(2024, 6, 1), [azure_rig.csv_bytes(_focus_rows(["s"], [1.0]))], **focus)
    source = AzureExportSource(kind="azure_export", container=blob_container.container_name,
                               root_folder_path="exports", export_name="focus")  # fmt: skip
    container = azure_exports.container_client(source)
    [month] = azure_exports.list_months(container, source).months
    manifest = azure_exports.latest_manifest(container, source, month)
    # Azure's daily run rewrites the month between our reading the manifest and its blobs
    _put(blob_container, "focus", date(2024, 6, 1), [azure_rig.csv_bytes(_focus_rows(["s"], [2.0]))], **focus)
    with pytest.raises(azure_exports.ExportError, match="rewrote this month while it was read"):
        azure_exports.download_month(container, source, manifest, tmp_path / "downloads")


def test_a_rejected_key_fails_the_listing_and_landed_months_stand(
    blob_container: ContainerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    azurite: azure_rig.Azurite,
) -> None:
    _put(blob_container, "focus", date(2024, 6, 1), [azure_rig.csv_bytes(_focus_rows(["s"], [1.0]))],
         export_type="FocusCost", data_version="1.0")  # fmt: skip
    config = _project(tmp_path, azure_source_toml(blob_container.container_name, "focus"))
    run_flow(config, as_of=date(2024, 6, 30))
    wrong_key = azure_rig.DEV_KEY[:-8] + "AAAAAAA="  # a rotated (expired) account key
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string.replace(azure_rig.DEV_KEY, wrong_key)
    )
    outcome = run_flow(config, as_of=date(2024, 6, 30))
    [failure] = outcome.failed_files
    message = str(failure["error"])
    assert message.startswith(f"azure://{blob_container.container_name}/exports/focus/: ")
    assert "denied" in message or "refused" in message
    assert wrong_key not in message
    assert query(outcome.published_path, "select sum(BilledCost) from finops.charges") == [(1.0,)]
