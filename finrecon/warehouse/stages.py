"""Wall time and peak resident memory per pipeline stage, for the run log and the benchmark."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


def current_rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


@dataclass
class StageClock:
    """Times named stages; a sampler thread keeps each stage's peak RSS (every `interval` seconds)."""

    interval: float = 0.05
    stages: dict[str, tuple[float, int]] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        peak = [current_rss_bytes()]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(self.interval):
                peak[0] = max(peak[0], current_rss_bytes())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            done.set()
            sampler.join()
            peak[0] = max(peak[0], current_rss_bytes())
            self.stages[name] = (elapsed, peak[0])
