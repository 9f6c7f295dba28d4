"""`finrecon bench matrix`: the file-size axis of issue 16, each case against a lower bound measured beside it.

A case is a number of rows, a format and a number of files; the rows are the generator's (the same rows for
every layout of the same row count), cut into files in provider order (`mixed` layout: one file may hold several
providers, so "10M rows as one file" is one file). Per case, each in its own process: the bare-DuckDB lower
bound over the same files (coverage, PO consumption, commitment utilisation in one statement), then the flow as
`finrecon run` runs it from an empty lake. Reported: land/model/publish seconds, the flow process's peak RSS,
data work ÷ lower bound, and the whole run (the flow process's wall time from spawn to exit: interpreter,
imports, Prefect's start-up and shutdown, the summary) ÷ lower bound.

`scale` multiplies every case's rows (file counts stay), so the matrix can be smoke-tested small.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from finrecon.bench.runner import CONFIG, BenchSettings, _measure, ensure_data


@dataclass(frozen=True)
class Case:
    name: str
    rows: int
    fmt: str
    files: int

    def scaled_rows(self, scale: float) -> int:
        return max(round(self.rows * scale), self.files)

    def rows_per_file(self, scale: float) -> int:
        return math.ceil(self.scaled_rows(scale) / self.files)


# Issue 16's list: Parquet and CSV.GZ × 10M rows as 10 files of 1M, 3 of 3.33M, 1 of 10M; one 30M-row Parquet
# file; 100M rows in files of 5M.
CASES: tuple[Case, ...] = (
    Case("parquet-10x1M", 10_000_000, "parquet", 10),
    Case("parquet-3x3.33M", 10_000_000, "parquet", 3),
    Case("parquet-1x10M", 10_000_000, "parquet", 1),
    Case("csvgz-10x1M", 10_000_000, "csv.gz", 10),
    Case("csvgz-3x3.33M", 10_000_000, "csv.gz", 3),
    Case("csvgz-1x10M", 10_000_000, "csv.gz", 1),
    Case("parquet-1x30M", 30_000_000, "parquet", 1),
    Case("parquet-20x5M", 100_000_000, "parquet", 20),
)
CASE_NAMES = tuple(case.name for case in CASES)
MATRIX_HEADING = "## File-size matrix (issue 16)"


def select_cases(names: str | None) -> list[Case]:
    """Cases by comma-separated names (all when None), in the matrix's order."""
    if not names:
        return list(CASES)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in CASE_NAMES]
    if unknown:
        raise ValueError(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASE_NAMES)}")
    return [case for case in CASES if case.name in wanted]


def settings_for(
    case: Case, scale: float, workdir: Path, workers: int, memory_limit: str | None
) -> BenchSettings:
    return BenchSettings(
        case.scaled_rows(scale), case.fmt, workdir, case.rows_per_file(scale), workers, memory_limit, "mixed"
    )


def run_case(
    case: Case,
    scale: float,
    workdir: Path,
    workers: int,
    memory_limit: str | None,
    console: Console,
) -> dict[str, Any]:
    """Generate (or reuse) the case's files, then the lower bound and the full flow, each in its own process."""
    settings = settings_for(case, scale, workdir, workers, memory_limit)
    folder = ensure_data(settings, console)
    generated = json.loads((folder / "generated.json").read_text())
    memory = f'memory_limit = "{memory_limit}"' if memory_limit else ""
    config = folder / "bench.toml"
    config.write_text(CONFIG.format(memory=memory, workers=workers))
    shutil.rmtree(folder / "out", ignore_errors=True)  # a full run, from an empty lake
    console.print(f"[bold]{case.name}[/bold]: lower bound …")
    lower = _measure(["lower-bound", str(folder), settings.fmt], folder)
    console.print(f"[bold]{case.name}[/bold]: flow (finrecon run) …")
    flow = _measure(["flow", str(config)], folder)
    stages = {name: (values[0], values[1]) for name, values in flow["stages"].items()}
    data_work = sum(seconds for seconds, _ in stages.values())
    return {
        "case": case.name,
        "fmt": settings.fmt,
        "rows": settings.rows,
        "files": len(generated["files"]),
        "rows_per_file": settings.rows_per_file,
        "scale": scale,
        "data_dir": str(folder),
        "land_s": stages.get("land", (float("nan"), 0))[0],
        "model_s": stages.get("model", (float("nan"), 0))[0],
        "publish_s": stages.get("publish", (float("nan"), 0))[0],
        "data_work_s": data_work,
        "peak_rss": flow["peak_rss"],
        "stage_peak_rss": {name: rss for name, (_, rss) in stages.items()},
        "published_rows": flow["rows"],
        "failed_files": flow.get("failed_files", 0),
        "whole_run_s": flow["wall"],
        "lower_s": lower["seconds"],
        "lower_wall_s": lower["wall"],
        "lower_peak_rss": lower["peak_rss"],
        "lower_result": lower["result"],
        "data_work_ratio": data_work / lower["seconds"],
        "whole_run_ratio": flow["wall"] / lower["seconds"],
    }


def run_matrix(
    cases: list[Case],
    scale: float,
    workdir: Path,
    workers: int,
    memory_limit: str | None,
    console: Console,
) -> list[dict[str, Any]]:
    results = []
    for case in cases:
        results.append(run_case(case, scale, workdir, workers, memory_limit, console))
        print_matrix(results, console)  # so far, after each case: a long matrix shows progress
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = workdir / f"matrix-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    console.print(f"results: {out}")
    return results


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GB, {platform.machine()}"


def _gb(value: float) -> str:
    return f"{value / 2**30:.2f} GB"


def print_matrix(results: list[dict[str, Any]], console: Console) -> None:
    table = Table(title=f"file-size matrix, {machine()}")
    columns = ("case", "rows", "files", "land s", "model s", "publish s", "data work s", "land rows/s",
               "peak RSS", "lower bound s", "LB peak", "data work / LB", "whole run s", "whole run / LB")  # fmt: skip
    for name in columns:
        table.add_column(name, justify="left" if name == "case" else "right", no_wrap=name == "case")
    for r in results:
        table.add_row(
            r["case"],
            f"{r['rows']:,}",
            str(r["files"]),
            f"{r['land_s']:.1f}",
            f"{r['model_s']:.1f}",
            f"{r['publish_s']:.1f}",
            f"{r['data_work_s']:.1f}",
            f"{r['rows'] / r['land_s']:,.0f}",
            _gb(r["peak_rss"]),
            f"{r['lower_s']:.1f}",
            _gb(r["lower_peak_rss"]),
            f"{r['data_work_ratio']:.2f}×",
            f"{r['whole_run_s']:.1f}",
            f"{r['whole_run_ratio']:.2f}×",
        )
    console.print(table)


TABLE_HEADER = (
    "| date | machine | case | rows | files | format | land s | model s | publish s | data work s | land rows/s "
    "| peak RSS | lower bound s | data work / lower bound | whole run s | whole run / lower bound |"
)


def markdown_rows(results: list[dict[str, Any]]) -> list[str]:
    rows = []
    for r in results:
        cells = [
            date.today().isoformat(),
            machine(),
            r["case"],
            f"{r['rows']:,}",
            str(r["files"]),
            r["fmt"],
            f"{r['land_s']:.1f}",
            f"{r['model_s']:.1f}",
            f"{r['publish_s']:.1f}",
            f"{r['data_work_s']:.1f}",
            f"{r['rows'] / r['land_s']:,.0f}",
            _gb(r["peak_rss"]),
            f"{r['lower_s']:.1f}",
            f"{r['data_work_ratio']:.2f}×",
            f"{r['whole_run_s']:.1f}",
            f"{r['whole_run_ratio']:.2f}×",
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def record(path: Path, lines: list[str]) -> None:
    """Add rows at the end of the matrix table under MATRIX_HEADING (the section and table made if missing);
    nothing else in the file changes."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    existing = text.splitlines()
    if MATRIX_HEADING not in existing:
        block = ["", MATRIX_HEADING, "", TABLE_HEADER, "|" + "---|" * TABLE_HEADER.count(" | ") + "---|"]
        path.write_text(text.rstrip("\n") + "\n" + "\n".join(block + lines) + "\n", encoding="utf-8")
        return
    at = existing.index(MATRIX_HEADING) + 1
    while at < len(existing) and not existing[at].startswith("|"):
        at += 1
    if at == len(existing):  # heading without its table
        existing[at:at] = [TABLE_HEADER, "|" + "---|" * (TABLE_HEADER.count(" | ") + 1)]
    while at < len(existing) and existing[at].startswith("|"):
        at += 1
    existing[at:at] = lines
    path.write_text("\n".join(existing) + "\n", encoding="utf-8")
