"""A run killed with SIGKILL (while landing, while building the marts) leaves the last publication intact and
readable, and the next run finishes the job without duplicates or leftovers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from finrecon.bench.generate import generate

CONFIG = """
[warehouse]
published_path = "out/finops.duckdb"
lake_path = "out/lake"
state_path = "out/state.duckdb"
[[sources]]
kind = "focus_files"
name = "generated"
path = "focus"
[erp]
po_headers = "erp/po_headers.csv"
fx_rates = "erp/fx_rates.csv"
[tags]
po_default_prefix = "PO"
[runner]
max_workers = 1
"""


def start_run(root: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return subprocess.Popen(
        [sys.executable, "-m", "finrecon", "run", "--config", str(root / "finrecon.toml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_when(run: subprocess.Popen[bytes], ready: object, what: str) -> None:
    deadline = time.monotonic() + 180
    while not ready():  # type: ignore[operator]
        if run.poll() is not None:
            pytest.fail(f"the run finished before it was {what}")
        if time.monotonic() > deadline:
            run.kill()
            pytest.fail(f"the run was never {what}")
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)


def published_rows(path: Path) -> tuple[int, float]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows, cost = con.execute("select count(*), sum(BilledCost) from charges").fetchall()[0]
        return int(rows), float(cost)
    finally:
        con.close()


def parquet_parts(root: Path) -> set[str]:
    lake = root / "out" / "lake"
    return {p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet")}


def test_killed_runs_leave_the_publication_intact(tmp_path: Path) -> None:
    generate(tmp_path / "all", 900_000, "parquet", rows_per_file=150_000)
    (tmp_path / "finrecon.toml").write_text(CONFIG)
    shutil.copytree(tmp_path / "all" / "erp", tmp_path / "erp")
    files = sorted((tmp_path / "all" / "focus").glob("*.parquet"))
    (tmp_path / "focus").mkdir()
    shutil.copy(files[0], tmp_path / "focus")

    baseline = start_run(tmp_path)
    assert baseline.wait(timeout=300) == 0
    published = tmp_path / "out" / "finops.duckdb"
    before_bytes, before = published.read_bytes(), published_rows(published)
    assert before[0] == 150_000

    for path in files[1:]:
        shutil.copy(path, tmp_path / "focus")
    parts_before = parquet_parts(tmp_path)

    # killed while landing: a new part is on disk, nothing recorded or published yet
    run = start_run(tmp_path)
    kill_when(run, lambda: len(parquet_parts(tmp_path) - parts_before) >= 1, "landing")
    assert published.read_bytes() == before_bytes
    assert published_rows(published) == before

    # killed while building the new database beside the published one
    run = start_run(tmp_path)
    kill_when(run, lambda: any(published.parent.glob(".finops.duckdb.*.building")), "building")
    assert published.read_bytes() == before_bytes
    assert published_rows(published) == before

    # the next run completes: every row once, no leftovers
    assert start_run(tmp_path).wait(timeout=300) == 0
    expected = (
        duckdb.connect()
        .execute(
            f"select count(*), sum(BilledCost) from read_parquet('{(tmp_path / 'focus').as_posix()}/*.parquet')"
        )
        .fetchall()[0]
    )
    rows, cost = published_rows(published)
    assert rows == expected[0] == 900_000
    assert cost == pytest.approx(expected[1], rel=1e-12)
    assert not list(published.parent.glob(".finops.duckdb.*"))
    state = duckdb.connect(str(tmp_path / "out" / "state.duckdb"), read_only=True)
    listed = {r[0] for r in state.execute("select part_path from lake_parts").fetchall()}
    kept = {r[0] for r in state.execute("select part_path from superseded_parts").fetchall()}
    state.close()
    assert parquet_parts(tmp_path) == listed | kept  # orphans of the killed runs are gone
    assert len(listed) == 6
