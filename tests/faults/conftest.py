"""Fixtures for the fault suite: the connector tests' real local services and a faulty proxy in front of each,
whose faults go into the session's tally (`fault_tally` in tests/conftest.py, printed at the end of the run)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fault_proxy import FaultProxy


@pytest.fixture
def fault_proxy(fault_tally: dict[tuple[str, str], int]) -> Iterator[Callable[[str, str], FaultProxy]]:
    """`make(provider, upstream_url)`: a FaultProxy in front of `upstream_url`; its faults count for `provider`."""
    made: list[tuple[str, FaultProxy]] = []

    def make(provider: str, upstream_url: str) -> FaultProxy:
        proxy = FaultProxy(upstream_url)
        made.append((provider, proxy))
        return proxy

    try:
        yield make
    finally:
        for provider, proxy in made:
            for label in proxy.faults_applied():
                key = (provider, label.split()[0] if not label.startswith("status") else label)
                fault_tally[key] = fault_tally.get(key, 0) + 1
            proxy.stop()
