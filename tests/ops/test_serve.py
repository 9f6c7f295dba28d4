"""`finrecon serve` registers the nightly deployment on a real Prefect server with the cron and timezone asked for,
and runs what the server schedules.

The server is the test harness's temporary Prefect API server; `finrecon serve` runs as a real subprocess pointed
at it (it blocks, as in production), and the deployment is read back through the Prefect client.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from support import charge, make_project, po, query
from typer.testing import CliRunner

from finrecon.cli import app
from finrecon.models.config import ConfigError, load_config

SCHEDULE = '[schedule]\ncron = "0 1 * * *"\ntimezone = "Europe/Berlin"\ndeployment = "finrecon-test"\n'


def _project(tmp_path: Path, schedule: str = SCHEDULE) -> Path:
    return make_project(tmp_path, {"a.csv": [charge()]}, [po("PO-1")], extra_toml=schedule)


def _deployment(name: str, deadline: float) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        while True:
            try:
                return client.read_deployment_by_name(f"nightly/{name}")
            except ObjectNotFound:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def _run_now(deployment_id: Any, deadline: float) -> Any:
    """Start a run of the deployment and wait for its final state (the serving process executes it)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(deployment_id)
        while True:
            state = client.read_flow_run(flow_run.id).state
            if (state is not None and state.is_final()) or time.monotonic() > deadline:
                return state
            time.sleep(1)


@pytest.mark.usefixtures("prefect_harness")
def test_serve_registers_the_nightly_deployment_with_cron_and_timezone(tmp_path: Path) -> None:
    from prefect.settings import get_current_settings

    config = _project(tmp_path)
    env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url)}
    env.pop("FINRECON_CONFIG", None)
    log = (tmp_path / "serve.log").open("w")
    # --cron from the command line; the timezone and the deployment's name from [schedule]
    command = [sys.executable, "-m", "finrecon", "serve", "--config", str(config), "--cron", "15 3 * * 1-5"]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deployment = _deployment("finrecon-test", time.monotonic() + 120)
        assert server.poll() is None, "finrecon serve should keep serving"
        # "Run" in the UI: the served process picks the run up and publishes, as a scheduled night would
        state = _run_now(deployment.id, time.monotonic() + 180)
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert "'15 3 * * 1-5' in Europe/Berlin" in output, output
    assert len(deployment.schedules) == 1
    schedule = deployment.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("15 3 * * 1-5", "Europe/Berlin")
    assert deployment.parameters == {"config_path": str(config.resolve())}
    assert state.is_completed(), f"{state.type}: {state.message}\n{output}"
    # the project's one charge (support.charge: BilledCost 1.00), published by the served run
    assert query(tmp_path / "out" / "finops.duckdb", "select count(*), sum(BilledCost) from charges") == [
        (1, 1.0)
    ]


def test_schedule_keys_are_checked_when_the_config_loads(tmp_path: Path) -> None:
    assert load_config(_project(tmp_path, "")).schedule.model_dump() == {
        "cron": "30 2 * * *",
        "timezone": "UTC",
        "deployment": "finrecon-nightly",
    }
    bad_cron = _project(tmp_path / "cron", '[schedule]\ncron = "30 25 * * *"\n')
    with pytest.raises(ConfigError, match=r"schedule\.cron: .*field 2 \(25\): 25 is outside 0-23"):
        load_config(bad_cron)
    bad_zone = _project(tmp_path / "zone", '[schedule]\ntimezone = "Europe/Berln"\n')
    with pytest.raises(ConfigError, match=r"schedule\.timezone: .*'Europe/Berln' is not an IANA timezone"):
        load_config(bad_zone)


def test_serve_refuses_a_bad_cron_or_timezone_on_the_command_line(tmp_path: Path) -> None:
    config = _project(tmp_path)
    result = CliRunner().invoke(app, ["serve", "--config", str(config), "--cron", "30 2 * *"])
    assert result.exit_code == 2
    assert "schedule:" in result.output and "a cron needs 5 fields" in result.output
    result = CliRunner().invoke(app, ["serve", "--config", str(config), "--timezone", "Mars/Olympus"])
    assert result.exit_code == 2
    assert "'Mars/Olympus' is not an IANA timezone" in result.output


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_says_how_to_start_a_server_when_there_is_none(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    config = _project(tmp_path)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = CliRunner().invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 2
    assert "PREFECT_API_URL is not set" in result.output and "prefect server start" in result.output
    url = f"http://127.0.0.1:{_closed_port()}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}):
        result = CliRunner().invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 2
    assert f"the Prefect server at {url} does not answer" in result.output
