"""Shared fixtures: one Prefect test harness for the whole session (its server takes ~15 s to start), Prefect
logs routed into a CliRunner invocation's output, and the tally of faults the fault suite injects (summed over
pytest-xdist's workers and printed at the end)."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


class _CurrentStderr(io.TextIOBase):
    """Whatever `sys.stderr` is at the moment of writing (CliRunner swaps it for each invocation)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@pytest.fixture
def prefect_logs_in_output(prefect_harness: None) -> Iterator[None]:
    """Prefect's console log handlers write into this invocation's output, as they would to a terminal.

    They keep the stream they were created with, which is a closed CliRunner stream by the second test: every log
    line would then be a "Logging error" traceback of the test rig's own, hiding what the command really prints.
    """
    handlers = {
        handler
        for logger in [logging.getLogger(), *logging.root.manager.loggerDict.values()]
        if isinstance(logger, logging.Logger)
        for handler in logger.handlers
        if isinstance(handler, logging.StreamHandler) and type(handler).__module__.startswith("prefect")
    }
    saved = [(h, h.stream, getattr(h, "console", None) and h.console.file) for h in handlers]
    for handler in handlers:
        handler.stream = _CurrentStderr()  # not setStream: it flushes the old, closed stream
        if getattr(handler, "console", None) is not None:
            handler.console.file = handler.stream
    try:
        yield
    finally:
        for handler, stream, file in saved:
            handler.stream = stream
            if file is not None:
                handler.console.file = file


FaultTally = dict[tuple[str, str], int]  # (provider, fault kind) -> faults applied
_FAULT_TALLY = pytest.StashKey[FaultTally]()


@pytest.fixture(scope="session")
def fault_tally(pytestconfig: pytest.Config) -> FaultTally:
    """This process's tally of injected faults (tests/faults/conftest.py adds to it)."""
    return pytestconfig.stash.setdefault(_FAULT_TALLY, {})


def _add(tally: FaultTally, rows: list[tuple[str, str, int]]) -> None:
    for provider, kind, count in rows:
        tally[(provider, kind)] = tally.get((provider, kind), 0) + count


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its tally to the controller (execnet carries lists of plain values)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        tally = session.config.stash.get(_FAULT_TALLY, {})
        workeroutput["fault_tally"] = [(provider, kind, count) for (provider, kind), count in tally.items()]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    _add(node.config.stash.setdefault(_FAULT_TALLY, {}), node.workeroutput.get("fault_tally", []))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    tally = terminalreporter.config.stash.get(_FAULT_TALLY, {})
    if not tally:
        return
    terminalreporter.section("faults injected")
    for (provider, kind), count in sorted(tally.items()):
        terminalreporter.write_line(f"{provider:<14} {kind:<12} {count}")
    terminalreporter.write_line(f"total {sum(tally.values())}")
