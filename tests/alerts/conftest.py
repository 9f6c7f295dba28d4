"""Loopback receivers for the alert delivery tests (tests/alert_receivers.py), started and stopped per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alert_receivers import HttpReceiver, SmtpReceiver


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver
