"""`finrecon bench run`: the real nightly flow on generated data against a bare-DuckDB lower bound.

Each measurement runs in its own process so its peak RSS is its own. Printed per stage: wall time, rows/s and
peak RSS; then the lower bound, the ratio flow / lower bound, and a no-change re-run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from finrecon.bench.generate import Layout, describe, generate

CONFIG = """
[warehouse]
published_path = "out/finops.duckdb"
lake_path = "out/lake"
state_path = "out/state.duckdb"
{memory}

[[sources]]
kind = "focus_files"
name = "bench"
path = "focus"

[erp]
po_headers = "erp/po_headers.csv"
po_lines = "erp/po_lines.csv"
fx_rates = "erp/fx_rates.csv"

[tags]
po_default_prefix = "PO"

[runner]
max_workers = {workers}
"""


@dataclass(frozen=True)
class BenchSettings:
    rows: int
    fmt: str
    workdir: Path
    rows_per_file: int
    workers: int
    memory_limit: str | None
    layout: Layout = "per_provider"


def data_dir(settings: BenchSettings) -> Path:
    """Absolute: the measurements run in their own processes, in that folder. Named by everything that makes a
    data set (rows, format, rows per file, layout), so different shapes never overwrite each other."""
    name = f"{settings.fmt.replace('.', '')}-{settings.rows}-rpf{settings.rows_per_file}"
    if settings.layout != "per_provider":
        name += f"-{settings.layout}"
    return settings.workdir.resolve() / name


def ensure_data(settings: BenchSettings, console: Console) -> Path:
    """Generate the data set unless an identical one (rows, format, rows per file, layout, seed) is there."""
    folder = data_dir(settings)
    marker = folder / "generated.json"
    wanted = (settings.rows, settings.fmt, settings.rows_per_file, settings.layout, 7)
    if marker.exists() and describe(json.loads(marker.read_text())) == wanted:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    console.print(
        f"generating {settings.rows:,} rows ({settings.fmt}, ≤ {settings.rows_per_file:,} per file, "
        f"{settings.layout}) into {folder} …"
    )
    generate(folder, settings.rows, settings.fmt, settings.rows_per_file, layout=settings.layout)
    return folder


def _measure(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """One `finrecon.bench.measure` process; its result, plus `wall`: this process's wall time from spawn to exit
    (interpreter start-up, imports and, for the flow, Prefect's start-up and shutdown included)."""
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
           **(env or {})}  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "finrecon.bench.measure", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
            result["wall"] = wall
            return result
    raise RuntimeError(f"measurement {args} failed:\n{done.stderr[-4000:]}")


def run_bench(settings: BenchSettings, console: Console) -> dict[str, Any]:
    folder = ensure_data(settings, console)
    memory = f'memory_limit = "{settings.memory_limit}"' if settings.memory_limit else ""
    config = folder / "bench.toml"
    config.write_text(CONFIG.format(memory=memory, workers=settings.workers))
    shutil.rmtree(folder / "out", ignore_errors=True)  # a full run, from an empty lake
    console.print("lower bound: one DuckDB statement …")
    lower = _measure(["lower-bound", str(folder), settings.fmt], folder)
    console.print("flow: full run …")
    full = _measure(["flow", str(config)], folder)
    console.print("flow: re-run with nothing new …")
    again = _measure(["flow", str(config)], folder)
    results = {"settings": settings, "lower": lower, "full": full, "again": again}
    print_results(results, console)
    return results


def _gb(value: float) -> str:
    return f"{value / 2**30:.2f} GB"


def print_results(results: dict[str, Any], console: Console) -> None:
    settings: BenchSettings = results["settings"]
    rows = settings.rows
    full, lower, again = results["full"], results["lower"], results["again"]
    table = Table(title=f"{rows:,} rows, {settings.fmt}, {os.cpu_count()} cores")
    for name in ("stage", "wall s", "rows/s", "peak RSS"):
        table.add_column(name, justify="left" if name == "stage" else "right")
    for stage, (seconds, rss) in full["stages"].items():
        table.add_row(stage, f"{seconds:.1f}", f"{rows / seconds:,.0f}", _gb(rss))
    for step, seconds in full["landing_seconds"].items():
        table.add_row(f"  land: {step} (Σ over tasks)", f"{seconds:.1f}", "", "")
    data_work = sum(s for s, _ in full["stages"].values())
    table.add_row("flow: data work (Σ stages)", f"{data_work:.1f}", f"{rows / data_work:,.0f}", "")
    table.add_row(
        "flow: total incl. Prefect",
        f"{full['seconds']:.1f}",
        f"{rows / full['seconds']:,.0f}",
        _gb(full["peak_rss"]),
    )
    table.add_row(
        "lower bound (bare DuckDB)",
        f"{lower['seconds']:.1f}",
        f"{rows / lower['seconds']:,.0f}",
        _gb(lower["peak_rss"]),
    )
    table.add_row("ratio flow data work / lower bound", f"{data_work / lower['seconds']:.2f}×", "", "")
    table.add_row("ratio flow total / lower bound", f"{full['seconds'] / lower['seconds']:.2f}×", "", "")
    again_work = sum(s for s, _ in again["stages"].values())
    table.add_row(
        f"no-change re-run: data work ({'unchanged' if again['unchanged'] else 'REBUILT'})",
        f"{again_work:.1f}",
        "",
        _gb(again["peak_rss"]),
    )
    table.add_row("no-change re-run: total incl. Prefect", f"{again['seconds']:.1f}", "", "")
    console.print(table)


def markdown_row(results: dict[str, Any]) -> str:
    """One line for BENCHMARKS.md."""
    settings: BenchSettings = results["settings"]
    full, lower, again = results["full"], results["lower"], results["again"]
    stages = full["stages"]
    data_work = sum(s for s, _ in stages.values())
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cells = [
        date.today().isoformat(),
        f"{os.cpu_count()} cores, {memory:.0f} GB, {platform.machine()}",
        f"{settings.rows:,}",
        settings.fmt,
        *(f"{stages[s][0]:.1f}" if s in stages else "–" for s in ("land", "model", "publish")),
        f"{data_work:.1f}",
        f"{settings.rows / stages['land'][0]:,.0f}",
        _gb(full["peak_rss"]),
        f"{lower['seconds']:.1f}",
        f"{data_work / lower['seconds']:.2f}×",
        f"{sum(s for s, _ in again['stages'].values()):.1f} ({again['seconds']:.1f} total)",
    ]
    return "| " + " | ".join(cells) + " |"
