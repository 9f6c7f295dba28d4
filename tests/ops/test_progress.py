"""Progress bars appear only in a terminal: a stage's bar counts its items, a download's bar its bytes; without a
terminal the same calls show nothing and change nothing."""

from __future__ import annotations

import io

from rich.console import Console

from finrecon.core import progress


def _terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=100)


def test_stage_bar_counts_items_in_a_terminal() -> None:
    with progress.terminal(_terminal()) as shown:
        assert shown
        display = progress._display
        assert display is not None
        seen = []
        for item in progress.track("land", ["a.csv", "b.csv", "c.csv"]):
            seen.append(item)
            (task,) = display.tasks
            assert (task.description, task.total) == ("land", 3)
            assert task.completed == len(seen) - 1  # advanced once the item is done
        assert seen == ["a.csv", "b.csv", "c.csv"]
        assert display.tasks == []  # a finished stage leaves the display
    assert progress._display is None


def test_download_bar_counts_bytes_and_closes_when_complete() -> None:
    with progress.terminal(_terminal()):
        display = progress._display
        assert display is not None
        hook = progress.cumulative("azure://exports/part-0.csv")
        hook(600, 1000)
        (task,) = display.tasks
        assert (task.description, task.total, task.completed) == (
            "download azure://exports/part-0.csv",
            1000,
            600,
        )
        hook(1000, 1000)  # 400 more bytes: 600 + 400 = 1000 of 1000
        assert display.tasks == []


def test_no_terminal_no_bars() -> None:
    plain = Console(file=io.StringIO(), force_terminal=False)
    with progress.terminal(plain) as shown:
        assert not shown
        assert list(progress.track("model", [1, 2])) == [1, 2]
        progress.transferred("s3://bucket/key", 10, 20)
        assert progress._display is None
    assert plain.file.getvalue() == ""  # type: ignore[attr-defined]
