"""Fixtures for the connector tests: one moto S3 server per session, a clean bucket state per test.

The server takes about a second to start, so it is shared; ``s3`` wipes it before each test instead.
``s3`` also points the AWS SDK's environment at fake credentials and at config files that do not exist, so
no test can read (or use) real AWS credentials from the machine it runs on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aws_rig
import pytest
from botocore.client import BaseClient


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
