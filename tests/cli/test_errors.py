"""Errors people can act on: every user-facing failure prints one line saying what failed, where, and what to do.

Each test drives the real `finrecon` command (Typer's CliRunner) into one failure kind — against the real local
services where one is involved (moto S3, the BigQuery emulator, Azurite, the Cost Management fake) or a closed
loopback port for "unreachable" — and checks the exit code the README documents ("When something goes wrong"),
the three parts of the message, that no traceback is printed and that no secret is echoed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import aws_rig
import azure_rig
import gcp_rig
import pytest
from aws_billing import BUCKET, aws_source_toml
from azure.storage.blob import ContainerClient
from botocore.client import BaseClient
from google.cloud import bigquery
from support import charge, make_project, po, write_csv
from typer.testing import CliRunner

from finrecon.cli import app

if TYPE_CHECKING:  # the module is a fixture plugin below: imported by pytest, not here
    from azure_query_server import FakeManagedIdentityEndpoint

# The connector tests' service fixtures: one server per session, a clean bucket, dataset or container per test.
pytest_plugins = ["connectors.conftest", "azure_query_server"]
runner = CliRunner()

EXIT_FILES_FAILED, EXIT_BAD_CONFIG, EXIT_RUN_FAILED = 1, 2, 3


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def project(tmp_path: Path, sources_toml: str | None = None) -> Path:
    """A small project: one tagged charge, PO-1, and the given sources (default: the FOCUS folder)."""
    files = {"a.csv": [charge(Tags={"po": "PO-1"}, BilledCost="6.00")]}
    return make_project(tmp_path, files, [po("PO-1", total_amount="10.00")], sources_toml=sources_toml)


def cli(*args: str) -> tuple[int, str]:
    """Exit code and output (stdout and stderr) with the whitespace of Rich's wrapping collapsed."""
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def assert_actionable(output: str, *parts: str, secrets: tuple[str, ...] = ()) -> None:
    """Every part (what, where, what to do) is in the output; no traceback; no secret."""
    for part in parts:
        assert part in output, f"{part!r} not in: {output}"
    assert "Traceback" not in output, output
    for secret in secrets:
        assert secret not in output, f"secret echoed: {output}"


# -- Bad config and missing input paths: exit 2 before anything runs ---------------------------------------------


def test_bad_config_names_the_file_the_key_and_the_fix(tmp_path: Path) -> None:
    config = project(tmp_path)
    config.write_text(config.read_text() + "\n[report]\ncolour = 'blue'\n")
    code, output = cli("run", "--config", str(config))
    assert code == EXIT_BAD_CONFIG
    assert_actionable(
        output, "config error:", str(config), "report.colour: unknown key", "fix the config file"
    )


def test_a_missing_input_path_names_the_key_and_the_path(tmp_path: Path) -> None:
    config = project(tmp_path)
    config.write_text(config.read_text().replace('path = "focus"', 'path = "exports/focus"'))
    code, output = cli("validate", "--config", str(config))
    assert code == EXIT_BAD_CONFIG
    assert_actionable(output, "sources[0].path: path does not exist: exports/focus", "fix the config file")


# -- AWS (moto S3): missing profile, no credentials, access denied, unreachable endpoint ------------------------


def aws_sources(endpoint: str, extra: str = "") -> str:
    return aws_source_toml(endpoint, "cur2", "cur2", extra=extra)


def test_aws_profile_that_does_not_exist(s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path) -> None:
    config = project(tmp_path, aws_sources(moto.endpoint_url, 'profile = "finops-prod"'))
    code, output = cli("validate", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, "s3://billing-bucket/exports/cur2", "AWS profile 'finops-prod' is not in the AWS config files",
        "`aws configure sso`",
    )  # fmt: skip


def test_aws_without_credentials(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to find either
    config = project(tmp_path, aws_sources(moto.endpoint_url))
    code, output = cli("validate", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, "s3://billing-bucket/exports/cur2/", "no usable AWS credentials (NoCredentialsError)",
        "set AWS_PROFILE", "run `aws sso login`",
    )  # fmt: skip


def test_aws_access_denied_names_the_permission_and_never_the_key(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3.create_bucket(Bucket=BUCKET)
    key_id, secret = aws_rig.restricted_credentials(moto, ["s3:GetObject"])  # may read, may not list
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        config = project(tmp_path, aws_sources(moto.endpoint_url))
        code, output = cli("validate", "--config", str(config))
    finally:
        moto.set_iam_auth(float("inf"))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, "s3://billing-bucket/exports/cur2/", "access denied (HTTP 403 AccessDenied", "grant the identity s3:ListBucket",
        secrets=(secret,),
    )  # fmt: skip


def test_aws_unreachable_endpoint(s3: BaseClient, tmp_path: Path) -> None:
    config = project(tmp_path, aws_sources(f"http://127.0.0.1:{closed_port()}"))  # max_attempts = 2
    code, output = cli("validate", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, "s3://billing-bucket/exports/cur2/", "cannot reach S3 (EndpointConnectionError)",
        "check the source's `endpoint_url` and `region`", secrets=(aws_rig.SECRET_ACCESS_KEY + "\n",),
    )  # fmt: skip


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_a_run_records_an_unusable_source_and_publishes_the_rest(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path
) -> None:
    """The run path: the source's failure is one line naming its config key; the FOCUS files still publish."""
    focus = '[[sources]]\nkind = "focus_files"\nname = "files"\npath = "focus"\n'
    config = project(tmp_path, focus + aws_sources(moto.endpoint_url, 'profile = "finops-prod"'))
    code, output = cli("run", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, "file failed: sources[1] (aws): s3://billing-bucket/exports/cur2",
        "AWS profile 'finops-prod' is not in the AWS config files", "the rest was published",
    )  # fmt: skip
    assert output.count("file failed: sources[") == 1
    assert (tmp_path / "out" / "finops.duckdb").exists()


# -- GCP (BigQuery emulator): no ADC, a bad key file, unreachable endpoint --------------------------------------


def gcp_sources(project_id: str, dataset: str, endpoint: str, extra: str = "") -> str:
    return (
        f'[[sources]]\nkind = "gcp_bigquery"\nname = "gcp"\nproject = "{project_id}"\ndataset = "{dataset}"\n'
        f'billing_account_id = "01-02-03"\nendpoint_url = "{endpoint}"\nstorage_read_api = false\n{extra}\n'
    )


def test_gcp_without_application_default_credentials(
    bq: tuple[bigquery.Client, str],
    bq_emulator: gcp_rig.BigQueryEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    # No gcloud login (CLOUDSDK_CONFIG is an empty folder) and no metadata server to ask.
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("GCE_METADATA_HOST", f"127.0.0.1:{closed_port()}")
    monkeypatch.setenv("GCE_METADATA_IP", f"127.0.0.1:{closed_port()}")
    client, dataset = bq
    config = project(tmp_path, gcp_sources(client.project, dataset, bq_emulator.endpoint_url))
    code, output = cli("validate", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, f"bq://{client.project}.{dataset}.gcp_billing_export_v1_01_02_03", "no Google credentials found",
        "`gcloud auth application-default login`", "GOOGLE_APPLICATION_CREDENTIALS",
    )  # fmt: skip


def test_gcp_key_file_that_is_not_a_service_account_key(
    bq: tuple[bigquery.Client, str], bq_emulator: gcp_rig.BigQueryEmulator, tmp_path: Path
) -> None:
    """The key file is found relative to the config file (not the working folder), and its content never shown."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "billing.json").write_text('{"type": "service_account", "private_key_id": "k-123"}')
    client, dataset = bq
    extra = 'credentials_file = "keys/billing.json"'
    config = project(tmp_path, gcp_sources(client.project, dataset, bq_emulator.endpoint_url, extra))
    code, output = cli("validate", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, f"credentials_file {tmp_path / 'keys' / 'billing.json'} is not a usable service-account key",
        "download a new JSON key", secrets=("k-123",),
    )  # fmt: skip


def test_gcp_unreachable_endpoint(bq: tuple[bigquery.Client, str], tmp_path: Path) -> None:
    client, dataset = bq
    endpoint = f"http://127.0.0.1:{closed_port()}"
    extra = "retry_initial_seconds = 0.1\nretry_deadline_seconds = 1"
    config = project(tmp_path, gcp_sources(client.project, dataset, endpoint, extra))
    code, output = cli("validate", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, f"{client.project}.{dataset}.gcp_billing_export_v1_01_02_03", f"cannot reach BigQuery at {endpoint} (ConnectionError",
        "retry_deadline_seconds = 1", "check the source's `endpoint_url`",
    )  # fmt: skip


# -- Azure (Azurite, the Cost Management fake): no credential, refused key, unreachable endpoint ---------------


def azure_sources(container: str, extra: str = "") -> str:
    return (
        f'[[sources]]\nkind = "azure_export"\nname = "azure"\ncontainer = "{container}"\n'
        f'root_folder_path = "exports"\nexport_name = "focus"\n{extra}\n'
    )


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_azure_without_a_connection_string(
    blob_container: ContainerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    config = project(tmp_path, azure_sources(blob_container.container_name))
    code, output = cli("run", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, f"sources[0] (azure): azure://{blob_container.container_name}/exports/focus",
        "set `account_url` or the environment variable AZURE_STORAGE_CONNECTION_STRING",
    )  # fmt: skip


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_azure_account_url_without_any_credential(
    blob_container: ContainerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DefaultAzureCredential limited to the environment credential, which finds nothing (no network, no real login).
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "environmentcredential")
    account_url = f'account_url = "https://127.0.0.1:{closed_port()}/{azure_rig.DEV_ACCOUNT}"'
    config = project(tmp_path, azure_sources(blob_container.container_name, account_url))
    code, output = cli("run", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, f"azure://{blob_container.container_name}/exports/focus/", "no Azure credential worked",
        "run `az login`", "managed identity",
    )  # fmt: skip


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_azure_storage_refusing_the_account_key_never_echoes_it(
    blob_container: ContainerClient,
    azurite: azure_rig.Azurite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrong_key = "V3Jvbmcta2V5LWZvci10aGUtdGVzdHMtb25seS0wMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA="
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string.replace(azure_rig.DEV_KEY, wrong_key)
    )
    config = project(tmp_path, azure_sources(blob_container.container_name))
    code, output = cli("run", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, f"azure://{blob_container.container_name}/exports/focus/",
        "the storage account refused the credentials (HTTP 403 AuthorizationFailure: Server failed to authenticate",
        "check the account key or SAS",
        secrets=(wrong_key, azure_rig.DEV_KEY),
    )  # fmt: skip


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_cost_management_unreachable(managed_identity: FakeManagedIdentityEndpoint, tmp_path: Path) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"
    scope = "subscriptions/00000000-0000-0000-0000-0000000000aa"
    source = (
        f'[[sources]]\nkind = "azure_query"\nname = "azure-query"\nscope = "{scope}"\nbase_url = "{base_url}"\n'
        "max_retries = 0\nmonths = 2\n"
    )
    config = project(tmp_path, source)
    code, output = cli("run", "--config", str(config), "--as-of", "2024-09-30")
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, f"sources[0] (azure-query): azure-query {scope}", f"cannot reach Cost Management at {base_url}",
        "check the source's `base_url`", secrets=(managed_identity.header_secret,),
    )  # fmt: skip
    assert output.count("file failed: sources[") == 1  # two months failed alike: said once


# -- Schema drift in a source file -----------------------------------------------------------------------------


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_a_renamed_column_names_the_file_the_column_and_the_fix(tmp_path: Path) -> None:
    config = project(tmp_path)
    renamed = {("Billed_Cost" if k == "BilledCost" else k): v for k, v in charge(BilledCost="2.00").items()}
    write_csv(tmp_path / "focus" / "drifted.csv", [renamed])
    code, output = cli("run", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, "sources[0] (test): drifted.csv: required column 'BilledCost' is missing",
        "fix the export, or map the column",
    )  # fmt: skip


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_a_column_that_changed_type_holds_the_file_back(tmp_path: Path) -> None:
    config = project(tmp_path)
    write_csv(tmp_path / "focus" / "typed.csv", [charge(BilledCost="six"), charge(BilledCost="two")])
    code, output = cli("run", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(
        output, "sources[0] (test): typed.csv: 2 of 2 rows failed validation",
        "a changed column type or bad values", "finops.quarantine",
    )  # fmt: skip


# -- A run already in progress; nothing published yet ------------------------------------------------------------


@pytest.fixture
def state_held_elsewhere(tmp_path: Path) -> Iterator[Path]:
    """The state file opened for writing by another process (as a running night holds it)."""
    state = tmp_path / "out" / "state.duckdb"
    state.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(120)",
         str(state)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield state
    finally:
        holder.kill()
        holder.wait()


def test_a_run_in_progress_refuses_a_second_run(tmp_path: Path, state_held_elsewhere: Path) -> None:
    config = project(tmp_path)
    text = config.read_text()
    assert 'state_path = "out/state.duckdb"' in text  # the file the fixture holds
    code, output = cli("run", "--config", str(config))
    assert code == EXIT_RUN_FAILED
    assert_actionable(
        output, "run not started:", f"state file {state_held_elsewhere}", "is in use by another process",
        "wait for that run to finish (or stop it), then rerun",
    )  # fmt: skip


@pytest.mark.parametrize("command", [["sql", "select 1"], ["report"], ["alerts", "--dry-run"]])
def test_nothing_published_yet(tmp_path: Path, command: list[str]) -> None:
    config = project(tmp_path)
    code, output = cli(*command, "--config", str(config))
    assert code == EXIT_BAD_CONFIG
    assert_actionable(
        output, f"no published database at {tmp_path / 'out' / 'finops.duckdb'}", "run `finrecon run` first"
    )


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_an_erp_extract_that_fails_is_reported_and_fails_the_exit_code(tmp_path: Path) -> None:
    files = {"a.csv": [charge(Tags={"po": "PO-1"}, BilledCost="6.00")]}
    renamed = {("po_num" if k == "po_number" else k): v for k, v in po("PO-1", total_amount="10.00").items()}
    config = make_project(tmp_path, files, [renamed])
    code, output = cli("run", "--config", str(config))
    assert code == EXIT_FILES_FAILED
    assert_actionable(output, "file failed:", "po_headers", "'po_number'")


# -- Prefect's temporary server: a start-up allowance of our own, and what to do when even that is exceeded ------


def test_a_temporary_prefect_server_that_does_not_answer_in_time_says_what_to_do(tmp_path: Path) -> None:
    """Prefect's default 20 s fails the night on two loaded cores; the project's allowance
    (runner.prefect_startup_seconds) is what the run waits, and exceeding it says how to fix it. The server is
    kept from ever answering (its database cannot be opened), so the 1 s allowance is what ends the wait."""
    config = make_project(
        tmp_path,
        {"a.csv": [charge(Tags={"po": "PO-1"}, BilledCost="6.00")]},
        [po("PO-1", total_amount="10.00")],
        extra_toml="[runner]\nprefect_startup_seconds = 1\n",
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PREFECT_API_URL", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")
    }
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = (
        f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'prefect.db'}"
    )
    result = subprocess.run(
        [sys.executable, "-m", "finrecon", "run", "--config", str(config)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == EXIT_RUN_FAILED, output
    assert_actionable(
        output,
        "did not answer within 1 s",
        "raise runner.prefect_startup_seconds",
        "set PREFECT_API_URL",
    )
    assert not (tmp_path / "out" / "finops.duckdb").exists()  # nothing published
