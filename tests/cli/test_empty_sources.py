"""Sources that find nothing say so: a misspelt Azure export name, a wrong S3 prefix or export name, a wrong
BigQuery table, a FOCUS folder without data files.

Each drives the real `finrecon` command against the real local services (Azurite, moto S3, the BigQuery emulator,
the Cost Management fake) and checks: exit 1 with one line naming the source, the place looked at and what to
check; no traceback; exit 0 and a `note:` line when the source sets `allow_empty = true`; and, after a good night,
that the charges the source landed before stay published (nothing found is never read as everything removed).
Expected sums are the hand-written costs of the rows each test delivers.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import aws_rig
import azure_rig
import gcp_rig
import pytest
from aws_billing import BUCKET, aws_source_toml, cur2_table, usage_in_period
from azure.storage.blob import ContainerClient
from azure_query_server import CostQueryServer, FakeManagedIdentityEndpoint
from botocore.client import BaseClient
from cli.test_errors import assert_actionable, cli
from google.cloud import bigquery
from support import charge, make_project, po, query, write_csv

# Prefect creates its log handlers when `prefect.main` is first imported (the CLI's first run would): imported here,
# before `prefect_logs_in_output` points them at each invocation's output, so a test may run the CLI twice.
import finrecon.flows.nightly  # noqa: F401

pytest_plugins = ["connectors.conftest", "azure_query_server"]

EXIT_FILES_FAILED = 1
ALLOW_EMPTY = "set `allow_empty = true` on it"


def charges(config: Path) -> list[tuple[Any, ...]]:
    """Σ BilledCost and the number of charges in the publication."""
    return query(
        config.parent / "out" / "finops.duckdb", "select sum(BilledCost), count(*) from finops.charges"
    )


def run_files(config: Path, status: str) -> list[tuple[Any, ...]]:
    """The published last run's billing inputs (ERP extracts aside) with this status: (source, file_path)."""
    return query(
        config.parent / "out" / "finops.duckdb",
        "select source, file_path from finops.run_files where status = ? and source <> 'erp' "
        "and run_id = (select max(run_id) from finops.runs) order by all",
        [status],
    )


def after_a_good_night(config: Path, published: list[tuple[Any, ...]], old: str, new: str) -> str:
    """Run a good night (its charges as `published`), change one config line, run again: that run's output, which
    must exit 1 and leave the charges published."""
    code, output = cli("run", "--config", str(config), "--as-of", "2024-11-30")
    assert code == 0, output
    assert charges(config) == published
    set_key(config, old, new)
    code, output = cli("run", "--config", str(config), "--as-of", "2024-11-30")
    assert code == EXIT_FILES_FAILED
    assert charges(config) == published  # nothing found is not everything removed
    assert run_files(config, "removed") == []
    return output


def table_text(output: str) -> str:
    """The output with the table's rules dropped: a row reads `cell cell cell`."""
    return " ".join(output.replace("│", " ").split())


def set_key(config: Path, old: str, new: str) -> None:
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))


# -- Azure exports (Azurite) ------------------------------------------------------------------------------------


def azure_project(root: Path, container: str, export_name: str) -> Path:
    source = (
        f'[[sources]]\nkind = "azure_export"\nname = "azure"\ncontainer = "{container}"\n'
        f'root_folder_path = "exports"\nexport_name = "{export_name}"\n'
    )
    return make_project(root, {}, [po("PO-1001")], sources_toml=source)


def put_focus_month(container: ContainerClient, month: date, costs: list[float]) -> None:
    """One FocusCost run of `month` under exports/focus, one charge per cost."""
    day = f"{month:%Y-%m}-05T00:00:00Z"
    rows = [
        {"BilledCost": cost, "EffectiveCost": cost, "BillingAccountId": "ba-1", "BillingCurrency": "EUR",
         "BillingPeriodStart": f"{month:%Y-%m}-01T00:00:00Z", "ChargePeriodStart": day, "ChargeCategory": "Usage",
         "ProviderName": "Microsoft", "SubAccountId": "sub-1", "Tags": '"po": "PO-1001"'}
        for cost in costs
    ]  # fmt: skip
    azure_rig.put_cost_export(
        container, "exports", "focus", month, [azure_rig.csv_bytes(rows)], data_version="1.0r2",
        export_type="FocusCost", file_format="Csv", compression="None", run_id=f"run-{month:%Y%m}",
        submitted_time=f"{month:%Y-%m}-06T01:00:00Z",
    )  # fmt: skip


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_a_misspelt_azure_export_name_fails_keeps_last_nights_charges_and_may_be_allowed(
    blob_container: ContainerClient, tmp_path: Path
) -> None:
    name = blob_container.container_name
    put_focus_month(blob_container, date(2024, 11, 1), [2.5, 1.25])
    config = azure_project(tmp_path, name, "focus")
    # 2.5 + 1.25 published, then the name misspelt
    output = after_a_good_night(config, [(3.75, 2)], 'export_name = "focus"', 'export_name = "focsu"')
    assert_actionable(
        output,
        f"file failed: sources[0] (azure): azure://{name}/exports/focsu: no export delivery found: no "
        "exports/focsu/<YYYYMMDD-YYYYMMDD>/[<timestamp>/]<runId>/manifest.json (nothing under exports/focsu/)",
        f"folders under azure://{name}/exports/: focus",  # the real export, beside the misspelt one
        "check the source's `container`, `root_folder_path` and `export_name`", ALLOW_EMPTY,
        # last night's month is not deleted: it stays published, and says so
        f"stale: sources[0] (azure): azure://{name}/exports/focus/2024-11 keeps its last good version",
    )  # fmt: skip
    assert output.count("file failed: sources[") == 1
    assert run_files(config, "failed") == [("azure", f"azure://{name}/exports/focsu")]

    set_key(config, 'export_name = "focsu"', 'export_name = "focsu"\nallow_empty = true')
    code, output = cli("run", "--config", str(config), "--as-of", "2024-11-30")
    assert code == 0, output
    assert_actionable(
        output,
        f"note: sources[0] (azure): azure://{name}/exports/focsu: nothing found, allowed by `allow_empty = true`; "
        "its 1 landed input(s) stay published as they were",
    )  # fmt: skip
    assert "file failed: sources[" not in output
    assert charges(config) == [(3.75, 2)]
    assert run_files(config, "empty") == [("azure", f"azure://{name}/exports/focsu")]


def test_validate_without_azure_credentials_fails_with_one_clear_line(
    blob_container: ContainerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    config = azure_project(tmp_path, blob_container.container_name, "focus")
    code, output = cli("validate", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, f"problem: sources[0] (azure): azure://{blob_container.container_name}/exports/focus: set "
        "`account_url` or the environment variable AZURE_STORAGE_CONNECTION_STRING",
    )  # fmt: skip


def test_validate_lists_the_months_of_an_azure_export_with_their_announced_rows(
    blob_container: ContainerClient, tmp_path: Path
) -> None:
    put_focus_month(blob_container, date(2024, 10, 1), [1.0, 2.0])
    put_focus_month(blob_container, date(2024, 11, 1), [1.0, 2.0, 3.0])
    config = azure_project(tmp_path, blob_container.container_name, "focus")
    code, output = cli("validate", "--config", str(config))
    assert code == 0, output
    location = f"azure://{blob_container.container_name}/exports/focus"
    # one row per month: its manifests' dataRowCount (2 and 3 charges delivered above)
    assert f"azure {location}/2024-10 2 " in table_text(output)
    assert f"azure {location}/2024-11 3 " in table_text(output)
    assert "problem:" not in output


# -- AWS exports (moto S3) --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_a_wrong_s3_prefix_fails_and_keeps_the_landed_periods_even_without_keep_missing_periods(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path
) -> None:
    """`keep_missing_periods = false` removes a period that left the bucket; a listing that finds no period at
    all is not that: a wrong prefix must not delete what landed."""
    table = cur2_table(usage_in_period("2024-11", 7.5))
    aws_rig.put_data_export(s3, BUCKET, "exports", "cur2", "2024-11", [table], "parquet", "exec-1")
    source = aws_source_toml(moto.endpoint_url, "cur2", "cur2", extra="keep_missing_periods = false")
    config = make_project(tmp_path, {}, [po("PO-1001")], sources_toml=source)
    output = after_a_good_night(config, [(7.5, 1)], 'prefix = "exports"', 'prefix = "export"')
    assert_actionable(
        output,
        f"file failed: sources[0] (aws): s3://{BUCKET}/export/cur2: no billing period found: no "
        "export/cur2/metadata/BILLING_PERIOD=YYYY-MM/cur2-Manifest.json (nothing under export/cur2/)",
        f"folders under s3://{BUCKET}/: exports",  # the prefix's real spelling
        "check the source's `bucket`, `prefix`, `export_name` and `export_type` (cur2)", ALLOW_EMPTY,
        "stale: sources[0] (aws):",
    )  # fmt: skip


def test_validate_names_the_export_beside_a_wrong_export_name_and_allow_empty_makes_it_a_note(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path
) -> None:
    table = cur2_table(usage_in_period("2024-11", 7.5))
    aws_rig.put_data_export(s3, BUCKET, "exports", "cur2", "2024-11", [table], "parquet", "exec-1")
    source = aws_source_toml(moto.endpoint_url, "cur2", "cur-2")
    config = make_project(tmp_path, {}, [po("PO-1001")], sources_toml=source)
    code, output = cli("validate", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, f"problem: sources[0] (aws): s3://{BUCKET}/exports/cur-2: no billing period found",
        f"folders under s3://{BUCKET}/exports/: cur2", ALLOW_EMPTY,
    )  # fmt: skip
    set_key(config, 'export_name = "cur-2"', 'export_name = "cur-2"\nallow_empty = true')
    code, output = cli("validate", "--config", str(config))
    assert code == 0, output
    assert_actionable(output, f"note: sources[0] (aws): s3://{BUCKET}/exports/cur-2: nothing found, allowed")
    assert "problem:" not in output


# -- GCP export (BigQuery emulator) -----------------------------------------------------------------------------

TABLE = "gcp_billing_export_v1_010101_ABCDEF_123456"


def gcp_project(root: Path, client: bigquery.Client, dataset: str, endpoint: str, table: str) -> Path:
    source = (
        f'[[sources]]\nkind = "gcp_bigquery"\nname = "gcp"\nproject = "{client.project}"\ndataset = "{dataset}"\n'
        f'table = "{table}"\nendpoint_url = "{endpoint}"\nstorage_read_api = false\n'
        "retry_initial_seconds = 0.05\nretry_deadline_seconds = 20\n"
    )
    return make_project(root, {}, [po("PO-1001")], sources_toml=source)


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_a_wrong_bigquery_table_fails_naming_the_table_and_what_to_check(
    bq: tuple[bigquery.Client, str], bq_emulator: gcp_rig.BigQueryEmulator, tmp_path: Path
) -> None:
    client, dataset = bq
    gcp_rig.create_export_table(client, dataset, TABLE, gcp_rig.standard_export_schema())  # the real one
    wrong = "gcp_billing_export_v1_010101_ABCDEF_654321"
    config = gcp_project(tmp_path, client, dataset, bq_emulator.endpoint_url, wrong)
    code, output = cli("run", "--config", str(config), "--as-of", "2024-11-30")
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, f"file failed: sources[0] (gcp): {client.project}.{dataset}.{wrong}: not found",
        "check the source's `project`, `dataset` and `table` (or `billing_account_id` and `export_type`",
        ALLOW_EMPTY,
    )  # fmt: skip
    assert output.count("file failed: sources[") == 1


def test_an_empty_bigquery_table_fails_validate_unless_allowed(
    bq: tuple[bigquery.Client, str], bq_emulator: gcp_rig.BigQueryEmulator, tmp_path: Path
) -> None:
    """The export's table with no row in the scanned partitions (an export just enabled, or the wrong table)."""
    client, dataset = bq
    gcp_rig.create_export_table(client, dataset, TABLE, gcp_rig.standard_export_schema())
    config = gcp_project(tmp_path, client, dataset, bq_emulator.endpoint_url, TABLE)
    code, output = cli("validate", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, f"problem: sources[0] (gcp): bq://{client.project}.{dataset}.{TABLE}: no billing rows with "
        "_PARTITIONTIME since", "(lookback_months = 3)", "raise `lookback_months`", ALLOW_EMPTY,
    )  # fmt: skip
    set_key(config, "storage_read_api = false", "storage_read_api = false\nallow_empty = true")
    code, output = cli("validate", "--config", str(config))
    assert code == 0, output
    assert_actionable(
        output, f"note: sources[0] (gcp): bq://{client.project}.{dataset}.{TABLE}: nothing found"
    )


# -- A FOCUS folder ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_an_emptied_focus_folder_fails_keeps_its_charges_and_may_be_allowed(tmp_path: Path) -> None:
    files = {"a.csv": [charge(Tags={"po": "PO-1"}, BilledCost="6.00"), charge(BilledCost="2.00")]}
    config = make_project(tmp_path, files, [po("PO-1", total_amount="10.00")])
    code, output = cli("run", "--config", str(config))
    assert code == 0, output
    assert charges(config) == [(8.0, 2)]  # 6 + 2

    shutil.move(tmp_path / "focus" / "a.csv", tmp_path / "a.csv")  # the folder keeps only a note for people
    (tmp_path / "focus" / "README.txt").write_text("exports land here nightly\n")
    code, output = cli("run", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output,
        "file failed: sources[0] (test): folder focus: no data files (.csv, .csv.gz, .parquet, hidden files "
        "skipped) in it or below it, it holds 1 other file(s); check the source's `path`", ALLOW_EMPTY,
        "stale: sources[0] (test): a.csv keeps its last good version",
    )  # fmt: skip
    assert charges(config) == [(8.0, 2)]
    assert run_files(config, "removed") == []

    set_key(config, 'path = "focus"', 'path = "focus"\nallow_empty = true')
    code, output = cli("run", "--config", str(config))
    assert code == 0, output
    assert_actionable(
        output, "note: sources[0] (test): focus: nothing found, allowed by `allow_empty = true`"
    )
    assert charges(config) == [(8.0, 2)]

    # the folder holds data again: a.csv back as it was (not read again), b.csv new
    shutil.move(tmp_path / "a.csv", tmp_path / "focus" / "a.csv")
    write_csv(tmp_path / "focus" / "b.csv", [charge(BilledCost="1.00")])
    code, output = cli("run", "--config", str(config))
    assert code == 0, output
    assert charges(config) == [(9.0, 3)]  # 6 + 2 + 1
    assert run_files(config, "unchanged") == [("test", "a.csv")]
    assert run_files(config, "landed") == [("test", "b.csv")]


# -- The query API (Cost Management fake): which months a run would query ---------------------------------------


def test_validate_checks_the_query_api_and_lists_the_months_a_run_would_query(
    cost_query_server: CostQueryServer, managed_identity: FakeManagedIdentityEndpoint, tmp_path: Path
) -> None:
    scope = "subscriptions/00000000-0000-0000-0000-0000000000aa"
    records = [
        {"date": f"2024-09-{day:02d}", "cost": 1.5, "currency": "USD", "ResourceGroupName": "rg"}
        for day in (1, 2, 3)
    ]
    cost_query_server.set_records(scope, records)
    source = (
        f'[[sources]]\nkind = "azure_query"\nname = "azure-api"\nscope = "{scope}"\n'
        f'group_by = ["ResourceGroupName"]\nmonths = 2\nbase_url = "{cost_query_server.base_url}"\n'
    )
    config = make_project(tmp_path, {}, [po("PO-1001")], sources_toml=source)
    config.write_text("as_of = 2024-09-30\n" + config.read_text())
    code, output = cli("validate", "--config", str(config))
    assert code == 0, output
    flat = table_text(output)
    assert f"azure-query://{scope}?month=2024-08" in flat
    assert f"azure-query://{scope}?month=2024-09 3 " in flat  # one query, of the latest month: 3 daily rows
    assert len(cost_query_server.query_requests()) == 1
