"""Fan-out: the nightly flow on a local two-worker Dask cluster (prefect-dask) against a real Prefect server on
loopback publishes the same marts as the threaded run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import charge, make_project, po, query

MARTS = ["charges", "tag_coverage", "po_burn", "commitment_utilization", "untagged_top", "charges_daily"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`prefect server start` on loopback with its own home (database), stopped after the module."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("prefect server did not start within 120 s")
        time.sleep(1)
    yield api
    server.terminate()
    server.wait(timeout=30)


def project(root: Path, runner_toml: str) -> Path:
    files = {
        f"part{i}.csv": [
            charge(f"2024-09-{day:02d}", ResourceId=f"r{i}-{day}", BilledCost=f"{i + day}.25", Tags=tags)
            for day, tags in ((1, {"po": "PO-1"}), (2, {"PO-Number": "2"}), (3, None), (4, {"po": "PO-404"}))
        ]
        for i in range(4)
    }
    return make_project(root, files, [po("PO-1"), po("PO-2", total_amount="30")], extra_toml=runner_toml)


def run_cli(config: Path, api: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return subprocess.run(
        [sys.executable, "-m", "finrecon", "run", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dask_fan_out_gives_the_threaded_marts(tmp_path: Path, prefect_server: str) -> None:
    from distributed import LocalCluster

    os.environ["PREFECT_API_URL"] = prefect_server  # the workers report their task runs to the same server
    try:
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            dask_config = project(
                tmp_path / "dask",
                f'[runner]\ntask_runner = "dask"\ndask_address = "{cluster.scheduler_address}"\n',
            )
            done = run_cli(dask_config, prefect_server)
            assert done.returncode == 0, done.stderr[-3000:]
            # the four landing tasks ran on the cluster's workers
            assert cluster.scheduler.transition_counter > 0
            processed = sum(
                prefix.state_counts["memory"]
                + prefix.state_counts["released"]
                + prefix.state_counts["forgotten"]
                for name, prefix in cluster.scheduler.task_prefixes.items()
                if "land" in name
            )
            assert processed >= 4
    finally:
        os.environ.pop("PREFECT_API_URL", None)

    threads_config = project(tmp_path / "threads", "")
    done = run_cli(threads_config, prefect_server)
    assert done.returncode == 0, done.stderr[-3000:]

    dask_db, threads_db = (
        tmp_path / "dask" / "out" / "finops.duckdb",
        tmp_path / "threads" / "out" / "finops.duckdb",
    )
    for table in MARTS:
        columns = "* exclude (x_run_id)" if table == "charges" else "*"
        sql = f"select {columns} from {table} order by all"
        assert query(dask_db, sql) == query(threads_db, sql), table
    # 16 charges; PO-1 gets parts 0..3 on day 1: (0+1.25) + (1+1.25) + (2+1.25) + (3+1.25) = 11.00
    assert query(dask_db, "select count(*) from charges") == [(16,)]
    assert query(dask_db, "select consumed_amount from po_burn where po_number = 'PO-1'") == [(11.0,)]
