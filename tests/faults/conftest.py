"""Fixtures for the fault suite: the connector tests' real local services, a faulty proxy in front of each, and a
tally of every fault injected (printed at the end of the session, the figure the suite reports)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fault_proxy import FaultProxy

_TALLY: dict[tuple[str, str], int] = {}  # (provider, fault kind) -> faults applied


@pytest.fixture
def fault_proxy() -> Iterator[Callable[[str, str], FaultProxy]]:
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
                _TALLY[key] = _TALLY.get(key, 0) + 1
            proxy.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _TALLY:
        return
    terminalreporter.section("faults injected")
    for (provider, kind), count in sorted(_TALLY.items()):
        terminalreporter.write_line(f"{provider:<14} {kind:<12} {count}")
    terminalreporter.write_line(f"total {sum(_TALLY.values())}")
