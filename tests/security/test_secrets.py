"""Secrets never leave their source: a night run with sentinel secrets everywhere a secret can be, then a grep.

Every secret below carries the marker `SENTINEL`: AWS keys and session token (landing for real from moto with
them), an Azure storage key the emulator refuses, a GCP key file whose private key is a sentinel, a webhook URL
token and Authorization header (the receiver answers 500, so the errors are logged), a Slack URL token at a
closed port, and an SMTP password the server refuses. After `run`, `alerts`, `report` and `export`, the marker
must be in no command output, no Prefect log or artifact, no row of the published or state database, no file
the pipeline wrote (lake, report, export) and no body an alert receiver got. Only the channel the Authorization
header is meant for receives it, in that header.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aws_rig
import azure_rig
import duckdb
import pytest
from alert_receivers import HttpReceiver, SmtpReceiver
from aws_billing import BUCKET, EC2, TEAM_A, Item, aws_source_toml, cur2_rows, cur2_table
from azure.storage.blob import ContainerClient
from botocore.client import BaseClient
from support import charge, make_project, po
from typer.testing import CliRunner

from finrecon.cli import app

pytest_plugins = ["connectors.conftest"]
pytestmark = pytest.mark.usefixtures("prefect_harness")

MARKER = "SENTINEL"
AWS_KEY_ID = "AKIASENTINEL00000001"
AWS_SECRET = "aws-secret-SENTINEL-7f3a9c"
AWS_TOKEN = "aws-session-token-SENTINEL-51d0"
AZURE_KEY = "QXp1cmVTRU5USU5FTEtleVNFTlRJTkVMLTAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=" + "SENTINEL"
GCP_PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\\nSENTINEL-gcp-key\\n-----END PRIVATE KEY-----\\n"
HOOK_TOKEN = "hook-token-SENTINEL-9e21"
HOOK_AUTH = "Bearer auth-SENTINEL-c0de"
SLACK_TOKEN = "T000/B000/slack-SENTINEL-aa11"
SMTP_PASSWORD = "smtp-password-SENTINEL-42"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sources(moto_endpoint: str, container: str, closed: int) -> str:
    """FOCUS files, an AWS export (lands), Azure (refused key), GCP (unusable key file)."""
    return (
        '[[sources]]\nkind = "focus_files"\nname = "files"\npath = "focus"\n'
        + aws_source_toml(moto_endpoint, "cur2", "cur2")
        + f'[[sources]]\nkind = "azure_export"\nname = "azure"\ncontainer = "{container}"\n'
        'root_folder_path = "exports"\nexport_name = "focus"\n'
        '[[sources]]\nkind = "gcp_bigquery"\nname = "gcp"\nproject = "p"\ndataset = "d"\n'
        f'billing_account_id = "01-02-03"\nendpoint_url = "http://127.0.0.1:{closed}"\n'
        'storage_read_api = false\ncredentials_file = "keys/gcp.json"\n'
    )


def alerts_toml(smtp_port: int) -> str:
    return f"""
[alerts]
default_channels = ["log", "ops", "platform", "mail"]

[[alerts.channels]]
kind = "webhook"
name = "ops"
url_env = "FINRECON_TEST_HOOK_URL"
header_envs = {{ Authorization = "FINRECON_TEST_HOOK_AUTH" }}
max_attempts = 2
backoff_seconds = 0.01

[[alerts.channels]]
kind = "slack"
name = "platform"
url_env = "FINRECON_TEST_SLACK_URL"
max_attempts = 1

[[alerts.channels]]
kind = "email"
name = "mail"
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
username = "finrecon"
password_env = "FINRECON_TEST_SMTP_PASSWORD"
from = "finrecon@example.org"
to = ["finops@example.org"]
max_attempts = 1
"""


def strings_in_database(path: Path) -> list[str]:
    """Every text value (and column and table name) of every table and view in a DuckDB file."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        found: list[str] = []
        relations = con.execute(
            "select table_name, column_name from information_schema.columns "
            "where data_type in ('VARCHAR', 'JSON') or data_type like '%[]' or data_type like 'STRUCT%' "
            "or data_type like 'MAP%'"
        ).fetchall()
        for table, column in relations:
            found.append(f"{table}.{column}")
            quoted_table = str(duckdb.ColumnExpression(table))
            quoted_column = str(duckdb.ColumnExpression(column))
            rows = con.execute(
                f"select distinct cast({quoted_column} as varchar) from {quoted_table} "
                f"where cast({quoted_column} as varchar) like ?",
                [f"%{MARKER}%"],
            ).fetchall()
            found += [f"{table}.{column}: {value}" for (value,) in rows]
        return [entry for entry in found if MARKER in entry]
    finally:
        con.close()


def prefect_records() -> list[str]:
    """Every log message and artifact the Prefect server holds for this session's runs."""
    from prefect.client.orchestration import get_client

    async def read() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(limit=200)
            texts = [log.message for log in logs]
            offset = 200
            while len(logs) == 200:
                logs = await client.read_logs(limit=200, offset=offset)
                texts += [log.message for log in logs]
                offset += 200
            artifacts = await client.read_artifacts()
            texts += [f"{a.key} {a.description} {a.data}" for a in artifacts]
            return texts

    return asyncio.run(read())


def test_sentinel_secrets_appear_in_no_output(
    s3: BaseClient,
    moto: aws_rig.MotoServer,
    blob_container: ContainerClient,
    azurite: azure_rig.Azurite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3.create_bucket(Bucket=BUCKET)
    period = [Item("usage", 3, TEAM_A, EC2, None, 7.25)]
    aws_rig.put_data_export(
        s3, BUCKET, "exports", "cur2", "2024-09", [cur2_table(cur2_rows(period))], "parquet", "e1"
    )
    with HttpReceiver() as hooks, SmtpReceiver(users={"finrecon": "the-real-password"}) as smtp:
        closed = closed_port()
        hooks.behave("/hook/" + HOOK_TOKEN, "500")
        for name, value in {
            "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "AWS_SESSION_TOKEN": AWS_TOKEN,
            "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string.replace(
                azure_rig.DEV_KEY, AZURE_KEY
            ),
            "FINRECON_TEST_HOOK_URL": hooks.url("/hook/" + HOOK_TOKEN),
            "FINRECON_TEST_HOOK_AUTH": HOOK_AUTH,
            "FINRECON_TEST_SLACK_URL": f"http://127.0.0.1:{closed}/services/{SLACK_TOKEN}",
            "FINRECON_TEST_SMTP_PASSWORD": SMTP_PASSWORD,
        }.items():
            monkeypatch.setenv(name, value)
        (tmp_path / "keys").mkdir()
        (tmp_path / "keys" / "gcp.json").write_text(
            '{"type": "service_account", "project_id": "p", "private_key_id": "SENTINEL-kid", '
            f'"private_key": "{GCP_PRIVATE_KEY}", "client_email": "x@p.iam.gserviceaccount.com", '
            '"token_uri": "http://127.0.0.1:%d/token"}' % closed
        )
        files = {"a.csv": [charge(BilledCost="9.00", EffectiveCost="9.00")]}  # untagged: alerts fire
        config = make_project(
            tmp_path,
            files,
            [po("PO-1", total_amount="10.00")],
            sources_toml=sources(moto.endpoint_url, blob_container.container_name, closed),
            extra_toml=alerts_toml(smtp.port),
        )
        runner = CliRunner()
        outputs = {}
        for command in (["run"], ["alerts"], ["report"], ["export", "--parquet", str(tmp_path / "export")]):
            result = runner.invoke(app, [*command, "--config", str(config)])
            outputs[command[0]] = result.output + repr(result.exception or "")
        received = [(post.path, post.headers, post.body) for post in hooks.requests]
        logins = list(smtp.logins)

    # The night really ran into every failure the secrets could leak through.
    assert "sources[1] (aws)" not in outputs["run"]  # AWS landed with the sentinel keys
    assert "sources[2] (azure)" in outputs["run"] and "sources[3] (gcp)" in outputs["run"]
    published = tmp_path / "out" / "finops.duckdb"
    assert duckdb.connect(str(published), read_only=True).execute(
        "select round(sum(BilledCost), 2) from charges"
    ).fetchall() == [(16.25,)]  # 9.00 from the file + 7.25 landed from S3
    assert len(received) == 2 and all(post[0] == "/hook/" + HOOK_TOKEN for post in received)  # 500, retried
    assert all(
        {k.lower(): v for k, v in headers.items()}.get("authorization") == HOOK_AUTH
        for _, headers, _ in received
    )  # meant for it
    assert logins == []  # the SMTP server refused the sentinel password

    leaks = [f"output of `{name}`" for name, text in outputs.items() if MARKER in text]
    leaks += [f"alert body to {path}" for path, _, body in received if MARKER.encode() in body]
    leaks += [f"Prefect: {text[:200]}" for text in prefect_records() if MARKER in text]
    for database in (published, tmp_path / "out" / "state.duckdb"):
        leaks += [f"{database.name}: {entry[:200]}" for entry in strings_in_database(database)]
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] + list(
        (tmp_path / "export").rglob("*")
    )
    written += list((tmp_path / "data").rglob("*")) if (tmp_path / "data").exists() else []
    assert any(p.suffix == ".parquet" for p in written) and any(p.suffix == ".html" for p in written)
    leaks += [f"file {p}" for p in written if p.is_file() and MARKER.encode() in p.read_bytes()]
    assert leaks == []
