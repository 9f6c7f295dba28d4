"""Progress of a run's long stages and downloads, shown as Rich bars only when the CLI writes to a terminal.

The flow and the connectors report into this module (`track`, `transferred`); nothing is shown unless the CLI
opened a display with `terminal(console)`. Logs, tests, served runs and pipes therefore never see a bar, and the
reporting code needs no knowledge of whether anyone is watching. Tasks on a Dask cluster report nowhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

T = TypeVar("T")

_lock = threading.Lock()
_display: Progress | None = None
_tasks: dict[str, TaskID] = {}


@contextmanager
def terminal(console: Console) -> Iterator[bool]:
    """Show bars on `console` while the block runs, if it is a terminal; yields whether bars are shown."""
    global _display
    if not console.is_terminal or _display is not None:
        yield False
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), _Amount(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, redirect_stderr=True) as display:
        _display = display
        try:
            yield True
        finally:
            _display = None
            _tasks.clear()


class _Amount(ProgressColumn):
    """Items done of total for a stage; bytes for a download."""

    def __init__(self) -> None:
        super().__init__()
        self.items, self.bytes = MofNCompleteColumn(), DownloadColumn()

    def render(self, task: Task) -> RenderableType:
        return (self.bytes if task.fields.get("bytes") else self.items).render(task)


def track(stage: str, items: Iterable[T], total: int | None = None) -> Iterator[T]:
    """Yield `items`, advancing the stage's bar by one per item (a plain pass-through when nothing is shown)."""
    listed = list(items)
    task = _add(stage, len(listed) if total is None else total)
    try:
        for item in listed:
            yield item
            _advance(task, 1)
    finally:
        _finish(stage, task)


def transferred(label: str, bytes_done: int, bytes_total: int | None) -> None:
    """A download moved on by `bytes_done` bytes (boto3/Azure callbacks); its bar closes when complete."""
    display = _display
    if display is None:
        return
    with _lock:
        task = _tasks.get(label)
        if task is None:
            task = display.add_task(f"download {label}", total=bytes_total, bytes=True)
            _tasks[label] = task
    display.advance(task, bytes_done)
    if bytes_total is not None and display.tasks[_index(display, task)].completed >= bytes_total:
        _finish(label, task)


def _index(display: Progress, task: TaskID) -> int:
    return next(i for i, t in enumerate(display.tasks) if t.id == task)


def _add(stage: str, total: int) -> TaskID | None:
    display = _display
    if display is None:
        return None
    with _lock:
        task = display.add_task(stage, total=total)
        _tasks[stage] = task
        return task


def _advance(task: TaskID | None, amount: int) -> None:
    display = _display
    if display is not None and task is not None:
        display.advance(task, amount)


def _finish(name: str, task: TaskID | None) -> None:
    display = _display
    if display is None or task is None:
        return
    with _lock:
        _tasks.pop(name, None)
        display.remove_task(task)


def cumulative(label: str) -> Callable[[int, int | None], None]:
    """A callback for clients that report bytes so far (Azure's `progress_hook(current, total)`)."""
    seen = 0

    def hook(current: int, total: int | None) -> None:
        nonlocal seen
        transferred(label, current - seen, total)
        seen = current

    return hook
