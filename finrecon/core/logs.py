"""Structured logs: every log record of a run carries its `run_id`; `FINRECON_LOG_FORMAT=json` writes JSON lines.

The engineer on call greps one night out of a week of logs by run id, or ships the JSON lines to a log store. The
run id is held in a context variable, which Prefect copies into every task it runs in a thread, so task logs and
library logs (connectors, alerts) carry it too. Prefect's own handlers stay in place for plain text; in JSON mode
its console handler on the root logger is swapped for a handler writing one JSON object per line to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

LOG_FORMAT_ENV = "FINRECON_LOG_FORMAT"
_run_id: ContextVar[str | None] = ContextVar("finrecon_run_id", default=None)
_swapped: list[logging.Handler] = []  # Prefect console handlers set aside in JSON mode
# Prefect's run-logger fields worth keeping in a JSON line (its adapter adds them as record attributes).
_PREFECT_FIELDS = ("flow_run_id", "flow_run_name", "flow_name", "task_run_id", "task_run_name")


class RunIdFilter(logging.Filter):
    """Adds `run_id` (None outside a run) to every record a handler sees; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "run_id", None) is None:
            record.run_id = _run_id.get()
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, run_id and the Prefect run fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "run_id": getattr(record, "run_id", None) or _run_id.get(),
        }
        for name in _PREFECT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class JsonLinesHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (so a redirected or captured stderr gets the lines)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonLinesFormatter())
        self.addFilter(RunIdFilter())

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def json_requested() -> bool:
    return os.environ.get(LOG_FORMAT_ENV, "").strip().lower() == "json"


def bind_run(run_id: str) -> None:
    """This run's id goes on every record from here on (in this context and the tasks it starts)."""
    _run_id.set(run_id)
    install()


def install() -> None:
    """Idempotent: the run-id filter on every handler; in JSON mode, JSON lines in place of the root console."""
    root = logging.getLogger()
    loggers = [
        root,
        *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RunIdFilter) for f in handler.filters):
                handler.addFilter(RunIdFilter())
    if not json_requested() or any(isinstance(h, JsonLinesHandler) for h in root.handlers):
        return
    for handler in list(root.handlers):
        if type(handler).__name__ == "PrefectConsoleHandler":
            root.removeHandler(handler)
            _swapped.append(handler)
    root.addHandler(JsonLinesHandler())


def uninstall_json() -> None:
    """Back to Prefect's console handler (tests; a long-lived process switching formats)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, JsonLinesHandler)]:
        root.removeHandler(handler)
    while _swapped:
        root.addHandler(_swapped.pop())
