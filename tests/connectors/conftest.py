"""Fixtures for the connector tests: one moto S3 server per session, a clean bucket state per test.

The server takes about a second to start, so it is shared; ``s3`` wipes it before each test instead.
``s3`` also points the AWS SDK's environment at fake credentials and at config files that do not exist, so
no test can read (or use) real AWS credentials from the machine it runs on.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import aws_rig
import azure_rig
import gcp_rig
import pytest
from azure.storage.blob import ContainerClient
from botocore.client import BaseClient
from google.cloud import bigquery


@pytest.fixture(scope="session")
def moto() -> Iterator[aws_rig.MotoServer]:
    """A real ``moto_server`` subprocess on 127.0.0.1, started once and stopped after the session."""
    server = aws_rig.start_moto_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(moto: aws_rig.MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> BaseClient:
    """A path-style S3 client on an empty moto, with a hermetic AWS environment for code that builds its own."""
    moto.reset()
    missing = tmp_path / "no-aws-config"  # never created
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", aws_rig.ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws_rig.SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", aws_rig.REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(missing / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(missing / "credentials"))
    # Anything else that could pick another identity or endpoint for an SDK call made by the code under test.
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ):
        monkeypatch.delenv(name, raising=False)
    return aws_rig.s3_client(moto.endpoint_url)


@pytest.fixture
def counting_proxy(moto: aws_rig.MotoServer, s3: BaseClient) -> Iterator[aws_rig.CountingProxy]:
    """A CountingProxy in front of moto (after the ``s3`` fixture has wiped it); point clients at its URL."""
    proxy = aws_rig.CountingProxy(moto.endpoint_url)
    try:
        yield proxy
    finally:
        proxy.stop()


# -- GCP: one bqemulator per session, a fresh dataset per test ------------------------------------------------
#
# bqemulator takes about 2 s to start and has no reset endpoint, so it is shared and each test gets a dataset of
# its own (dropped afterwards). The `bq` client uses AnonymousCredentials. For code under test that builds its
# own client through Application Default Credentials, `bq` points GOOGLE_APPLICATION_CREDENTIALS at a fake
# service-account key whose token_uri is a loopback token server, and CLOUDSDK_CONFIG at an empty folder: ADC
# then resolves to that key (never to a developer's real credentials, never to the GCE metadata server).


@pytest.fixture(scope="session")
def bq_emulator() -> Iterator[gcp_rig.BigQueryEmulator]:
    """A real ``bqemulator`` subprocess on 127.0.0.1 (its own venv: `make bqemulator`), for the whole session."""
    emulator = gcp_rig.start_bq_emulator()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def gcp_token_server() -> Iterator[gcp_rig.FakeTokenServer]:
    """A loopback OAuth2 token endpoint for the fake service-account key (see ``gcp_service_account_key``)."""
    server = gcp_rig.FakeTokenServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcp_service_account_key(
    gcp_token_server: gcp_rig.FakeTokenServer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A service-account key file shaped like a real one; its tokens come from ``gcp_token_server``."""
    path = tmp_path_factory.mktemp("gcp") / "service-account.json"
    return gcp_rig.write_service_account_key(path, gcp_token_server.token_uri)


@pytest.fixture
def bq(
    bq_emulator: gcp_rig.BigQueryEmulator,
    gcp_service_account_key: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[bigquery.Client, str]]:
    """``(client, dataset)``: an anonymous client on the emulator and a new, empty dataset for this test only."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gcp_service_account_key))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud-config"))  # never created
    for name in (
        "GOOGLE_CLOUD_PROJECT",
        "GCLOUD_PROJECT",
        "BIGQUERY_EMULATOR_HOST",
        "GOOGLE_CLOUD_QUOTA_PROJECT",
    ):
        monkeypatch.delenv(name, raising=False)
    client = gcp_rig.bq_client(bq_emulator.endpoint_url, bq_emulator.project)
    # Readable in the emulator's log, unique across the session: <test name>_<random>.
    stem = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]
    dataset = f"{stem}_{uuid.uuid4().hex[:8]}"
    client.create_dataset(f"{client.project}.{dataset}")
    try:
        yield client, dataset
    finally:
        client.delete_dataset(f"{client.project}.{dataset}", delete_contents=True, not_found_ok=True)
        client.close()


@pytest.fixture
def bq_fault_proxy(bq_emulator: gcp_rig.BigQueryEmulator) -> Iterator[gcp_rig.FaultProxy]:
    """A FaultProxy in front of the emulator; point a client at its ``endpoint_url`` to inject errors."""
    proxy = gcp_rig.FaultProxy(bq_emulator.endpoint_url)
    try:
        yield proxy
    finally:
        proxy.stop()


# -- Azure: one Azurite per session, a fresh container per test -------------------------------------------------
#
# Azurite (npm, `make azurite`) takes about 1.5 s to start, so it is shared; each test gets a container of its own
# (deleted afterwards). Code under test that builds its own client reads the connection string from the
# environment variable its config names (default AZURE_STORAGE_CONNECTION_STRING): `blob_container` sets that to
# Azurite's, adds 127.0.0.1 to NO_PROXY (azure-core would otherwise honour an HTTP(S)_PROXY even for loopback),
# and removes the variables through which azure-identity or the storage SDK could pick up a real identity.

_AZURE_IDENTITY_ENV = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
)


@pytest.fixture(scope="session")
def azurite() -> Iterator[azure_rig.Azurite]:
    """A real Azurite blob service on 127.0.0.1 (installed by `make azurite`), for the whole session."""
    server = azure_rig.start_azurite()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def blob_container(
    azurite: azure_rig.Azurite, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[ContainerClient]:
    """A new, empty container on Azurite for this test only; AZURE_STORAGE_CONNECTION_STRING points at Azurite."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    for name in _AZURE_IDENTITY_ENV:
        monkeypatch.delenv(name, raising=False)
    for name in ("NO_PROXY", "no_proxy"):
        current = [h for h in os.environ.get(name, "").split(",") if h]
        monkeypatch.setenv(name, ",".join([*current, "127.0.0.1", "localhost"]))
    service = azurite.service_client()
    # Readable in Azurite's data, unique across the session: <test name>-<random>.
    container = azure_rig.ensure_container(
        service, azure_rig.container_name_for(request.node.name, uuid.uuid4().hex[:8])
    )
    try:
        yield container
    finally:
        container.delete_container()
        service.close()
