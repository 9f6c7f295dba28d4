"""Crash safety: a run killed with SIGKILL at any stage leaves the last publication whole and readable, and the
next run publishes exactly what an uninterrupted run of the same inputs publishes — no partial files, no
duplicate lake partitions, no night skipped as "nothing new". Two runs never overlap.

Every kill is deterministic: the run is started as `python -m finrecon run` with FINRECON_FAILPOINT naming one of
the crash points in the code (finrecon/core/failpoints.py), where it sends itself SIGKILL. The reruns, and the
uninterrupted runs they are compared with, run the same flow in this process (it saves Prefect's import). The
project has a FOCUS folder and an AWS FOCUS export in S3 (moto), so the kills cover a download, a landing, the
build, alert delivery and both sides of the publishing rename.

One baseline is built once (night 1), then copied back to the same path before each scenario, so the published
database's `charges` view (absolute lake paths) reads that scenario's own lake. Night 2's inputs restate August,
add September and re-deliver November; the reference is an uninterrupted night 2 on that same baseline.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aws_rig
import pyarrow as pa
import pytest
from aws_billing import BUCKET, aws_source_toml
from support import FOCUS_SOURCE_TOML, charge, make_project, po, query, run_flow, write_csv

from finrecon.core.failpoints import ENV, POINTS

pytest_plugins = ["connectors.conftest"]

EXPORT = "focus-export"
# Night 1: August from a FOCUS file, November from the S3 export. Night 2 restates August (a1 10.00 → 12.00),
# adds September and re-delivers November with one more charge.
AUGUST_1 = [
    charge("2024-08-05", ResourceId="a1", BilledCost="10.00", EffectiveCost="10.00", Tags={"po": "PO-1"}),
    charge("2024-08-06", ResourceId="a2", BilledCost="5.00", EffectiveCost="5.00"),
]
AUGUST_2 = [
    charge("2024-08-05", ResourceId="a1", BilledCost="12.00", EffectiveCost="12.00", Tags={"po": "PO-1"}),
    charge("2024-08-06", ResourceId="a2", BilledCost="5.00", EffectiveCost="5.00"),
]
SEPTEMBER = [
    charge("2024-09-05", ResourceId="s1", BilledCost="30.00", EffectiveCost="30.00", Tags={"po": "PO-1"}),
    charge("2024-09-06", ResourceId="s2", BilledCost="20.00", EffectiveCost="20.00", Tags={"po": "PO-2"}),
    charge("2024-09-07", ResourceId="s3", BilledCost="1.00", EffectiveCost="1.00"),
]
NOVEMBER_1 = [
    charge("2024-11-03", ResourceId="n1", BilledCost="40.00", EffectiveCost="40.00", Tags={"po": "PO-2"}),
]
NOVEMBER_2 = [
    *NOVEMBER_1,
    charge("2024-11-04", ResourceId="n2", BilledCost="8.00", EffectiveCost="8.00", Tags={"po": "PO-1"}),
]
POS = [po("PO-1", total_amount="100.00"), po("PO-2", total_amount="50.00")]

# Worked by hand from the rows above: (charges, Σ BilledCost) and PO consumption as of the last charge day.
NIGHT_1 = (3, 55.0)  # 10 + 5 + 40
NIGHT_2 = (7, 116.0)  # 12 + 5 + 30 + 20 + 1 + 40 + 8
NIGHT_1_PO = [("PO-1", 10.0), ("PO-2", 40.0)]
NIGHT_2_PO = [("PO-1", 50.0), ("PO-2", 60.0)]  # PO-1: 12 + 30 + 8; PO-2: 20 + 40 (120 % of 50: alerts fire)

# Run ids and wall-clock moments differ between any two runs by design: left out of the comparison.
RUN_LOG = {"runs", "run_files"}

# Each crash point, and which publication must stand right after the kill.
CRASHES = [
    ("download.partial", "previous"),
    ("landing.chunk-written", "previous"),
    ("landing.part-written", "previous"),
    ("land.done", "previous"),
    ("erp.version-written", "previous"),
    ("model.partial", "previous"),
    ("alerts.delivered", "previous"),
    ("publish.before-rename", "previous"),
    ("publish.after-rename", "new"),
]


@dataclass
class Project:
    root: Path  # where every run happens
    night_2: Path  # night 1's result with night 2's local inputs: copied to `root` before each test
    env: dict[str, str]  # for the killed runs: this process's, with the session's Prefect server
    s3: object
    baseline_bytes: bytes = b""
    reference: dict[str, list[tuple[object, ...]]] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "finrecon.toml"

    @property
    def published(self) -> Path:
        return self.root / "out" / "finops.duckdb"

    @property
    def state(self) -> Path:
        return self.root / "out" / "state.duckdb"


def put_november(s3: object, rows: list[dict[str, object]], execution: str) -> None:
    table = pa.Table.from_pylist(rows)
    aws_rig.put_data_export(s3, BUCKET, "exports", EXPORT, "2024-11", [table], "csv.gz", execution)


def finrecon_run(project: Project, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(project.env)
    if failpoint:
        env[ENV] = failpoint
    command = [sys.executable, "-m", "finrecon", "run", "--config", str(project.config)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)


def start_run(project: Project, failpoint: str, output: Path) -> subprocess.Popen[str]:
    """A run in the background, its output in a file (a frozen process must not block on a full pipe)."""
    command = [sys.executable, "-m", "finrecon", "run", "--config", str(project.config)]
    env = {**project.env, ENV: failpoint}
    with output.open("w") as sink:
        return subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True)


def wait_frozen(run: subprocess.Popen[str], deadline_seconds: float = 180) -> None:
    """Until the run stops itself at its `:stop` failpoint (SIGSTOP); fails if it ends instead."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        pid, status = os.waitpid(run.pid, os.WUNTRACED | os.WNOHANG)
        if pid:
            assert os.WIFSTOPPED(status), f"the run ended (status {status}) before its failpoint"
            return
        time.sleep(0.05)
    pytest.fail("the run never reached its failpoint")


def totals(database: Path) -> tuple[tuple[int, float], list[tuple[str, float]]]:
    """What an analyst would check first, read-only: charges and Σ BilledCost, PO consumption."""
    (rows, billed), *_ = query(database, "select count(*), sum(BilledCost) from charges")
    burn = query(database, "select po_number, consumed_amount from po_burn_latest order by po_number")
    return (int(rows), float(billed)), [(str(p), float(c)) for p, c in burn]


def snapshot(database: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every published table and view but the run log, without run ids and wall-clock time stamps (the
    `alert_notifications` id embeds the run id); rows sorted."""
    columns: dict[str, list[str]] = {}
    for table, column, type_ in query(
        database,
        "select table_name, column_name, data_type from information_schema.columns order by table_name, ordinal_position",
    ):
        varying = (
            type_ == "TIMESTAMP WITH TIME ZONE" or column.endswith("run_id") or column == "notification_id"
        )
        if table not in RUN_LOG and not varying:
            columns.setdefault(table, []).append(f'"{column}"')
    assert {
        "charges",
        "tag_coverage",
        "po_burn",
        "alerts",
        "alert_notifications",
        "billing_period_history",
    } <= set(columns)
    return {
        table: sorted(query(database, f"select {', '.join(names)} from {table}"), key=repr)
        for table, names in columns.items()
    }


def parquet_files(root: Path) -> set[str]:
    lake = root / "out" / "lake"
    return {p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet")}


def state_rows(project: Project, sql: str) -> list[tuple[object, ...]]:
    return query(project.state, sql)


def restore(project: Project) -> None:
    """Night 1's result and night 2's inputs, at the same path every time; S3 holds night 2's delivery."""
    shutil.rmtree(project.root, ignore_errors=True)
    shutil.copytree(project.night_2, project.root)
    put_november(project.s3, NOVEMBER_2, "execution-2")


def hermetic_aws(base: Path) -> dict[str, str]:
    """moto's fake keys, and AWS config files that do not exist: no real AWS identity can be picked up."""
    missing = base / "no-aws-config"  # never created
    return {
        "AWS_ACCESS_KEY_ID": aws_rig.ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": aws_rig.SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": aws_rig.REGION,
        "AWS_CONFIG_FILE": str(missing / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(missing / "credentials"),
    }


@pytest.fixture(scope="module")
def project(
    moto: aws_rig.MotoServer, prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """Night 1 published; the reference night 2 run uninterrupted and snapshotted."""
    import prefect.settings

    base = tmp_path_factory.mktemp("crash")
    aws = hermetic_aws(base)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FINRECON_"))}
    env |= aws | {
        "PREFECT_API_URL": str(prefect.settings.PREFECT_API_URL.value()),  # the session's test server
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    with pytest.MonkeyPatch.context() as patch:  # the in-process runs see the same AWS environment
        for name in [k for k in os.environ if k.startswith("AWS_")] + [ENV]:
            patch.delenv(name, raising=False)
        for name, value in aws.items():
            patch.setenv(name, value)
        moto.reset()
        s3 = aws_rig.s3_client(moto.endpoint_url)
        project = Project(base / "work", base / "night-2", env, s3)
        sources = FOCUS_SOURCE_TOML + aws_source_toml(moto.endpoint_url, "focus", EXPORT)
        make_project(project.root, {"aug.csv": AUGUST_1}, POS, sources_toml=sources,
                     extra_toml="[runner]\nmax_workers = 1")  # fmt: skip
        put_november(s3, NOVEMBER_1, "execution-1")
        run_flow(project.config)
        assert totals(project.published) == (NIGHT_1, NIGHT_1_PO)
        project.baseline_bytes = project.published.read_bytes()

        write_csv(project.root / "focus" / "aug.csv", AUGUST_2)
        write_csv(project.root / "focus" / "sep.csv", SEPTEMBER)
        shutil.copytree(project.root, project.night_2)
        put_november(s3, NOVEMBER_2, "execution-2")
        reference = run_flow(project.config)
        assert not reference.unchanged and reference.failed_files == []
        assert totals(project.published) == (NIGHT_2, NIGHT_2_PO)
        project.reference = snapshot(project.published)
        assert len(project.reference["alert_notifications"]) > 0  # night 2 delivers alerts (PO-2 over 100 %)
        yield project


def assert_previous_publication(project: Project) -> None:
    """The published file is night 1's, byte for byte, and reads as night 1 (its lake parts still there)."""
    assert project.published.read_bytes() == project.baseline_bytes
    assert totals(project.published) == (NIGHT_1, NIGHT_1_PO)


def assert_where_killed(project: Project, point: str, lake_before: set[str]) -> None:
    """Evidence that the kill landed where its name says."""
    state_parts = {str(p) for (p,) in state_rows(project, "select part_path from lake_parts")}
    building = list(project.published.parent.glob(".finops.duckdb.*.building"))
    if point == "download.partial":  # the delivery's folder made, its data file never completed
        folder = project.root / "data" / "downloads" / "aws" / "2024-11"
        assert folder.is_dir() and not (folder / f"00000-{EXPORT}-00001.csv.gz").exists()
        assert not building
    elif point == "landing.chunk-written":  # a temporary part being written, no new part in place
        temporary = [p for p in (project.root / "out" / "lake").rglob("*.tmp")]
        assert len(temporary) == 1 and parquet_files(project.root) == lake_before
    elif point == "landing.part-written":  # one new part on disk that the state file does not list
        new = parquet_files(project.root) - lake_before
        assert len(new) == 1 and not new & state_parts
    elif point == "land.done":  # every night-2 input recorded as current, nothing built
        assert len(state_parts) == 3 and not state_parts & lake_before and not building
    elif point in ("model.partial", "alerts.delivered", "publish.before-rename"):
        assert len(building) == 1  # the new database, beside the published one
    if point == "alerts.delivered":  # handed to the channel, still pending in the outbox
        pending = state_rows(project, "select count(*) from alert_notifications where status = 'pending'")
        assert pending[0][0] > 0


def assert_lake_clean(project: Project) -> None:
    """No partial download, temporary part or building database anywhere; one current part per input and
    partition; on disk exactly the current parts and the superseded ones kept for retention."""
    leftovers = [p for p in project.root.rglob("*") if ".partial" in p.name or p.name.endswith(".tmp")
                 or ".building" in p.name]  # fmt: skip
    assert leftovers == []
    current = state_rows(project, "select file_key, provider, billing_period, part_path from lake_parts")
    partitions = {(k, prov, period) for k, prov, period, _ in current}
    assert len(partitions) == len(current) == 3  # aug, sep, nov: one part each
    kept = {str(p) for (p,) in state_rows(project, "select part_path from superseded_parts")}
    assert len(kept) == 2  # night 1's August and November, superseded by night 2
    assert parquet_files(project.root) == {str(p) for *_, p in current} | kept


@pytest.mark.parametrize(("point", "standing"), CRASHES, ids=[c[0] for c in CRASHES])
def test_a_run_killed_at_each_crash_point(project: Project, point: str, standing: str) -> None:
    restore(project)
    lake_before = parquet_files(project.root)

    killed = finrecon_run(project, failpoint=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert_where_killed(project, point, lake_before)
    if standing == "previous":
        assert_previous_publication(project)
    else:  # killed right after the rename: the new publication is complete and is the one published
        assert totals(project.published) == (NIGHT_2, NIGHT_2_PO)
        assert snapshot(project.published) == project.reference

    rerun = run_flow(project.config)
    assert rerun.failed_files == []
    # published before the kill: nothing new to do; otherwise the rerun must do the work, not skip it
    assert rerun.unchanged == (standing == "new")
    assert totals(project.published) == (NIGHT_2, NIGHT_2_PO)
    assert snapshot(project.published) == project.reference
    assert_lake_clean(project)
    runs = state_rows(project, "select status, message from runs order by started_at")
    # night 1, the killed run (closed as failed by the rerun, unless it had published), the rerun
    if standing == "previous":
        assert [status for status, _ in runs] == ["succeeded", "failed", "succeeded"]
        assert str(runs[1][1]).startswith("interrupted")
    else:
        assert [status for status, _ in runs] == ["succeeded", "succeeded", "unchanged"]


def test_every_crash_point_is_exercised() -> None:
    frozen_in_the_race_test = ["run.before-lock", "publish.before-rename"]
    assert sorted({point for point, _ in CRASHES} | set(frozen_in_the_race_test)) == sorted(POINTS)


def test_runs_started_while_another_publishes_are_refused(project: Project, tmp_path: Path) -> None:
    """Two runs never overlap. A run frozen mid-publish (SIGSTOP just before its rename) holds the state file:
    a run started then is refused by the CLI's check, and a run that had passed that check a moment earlier
    (frozen inside the flow before opening the state file) is refused when it opens it. Both exit 3 with the
    reason and publish nothing; the frozen run, resumed, publishes night 2 complete."""
    restore(project)
    late = start_run(project, "run.before-lock:stop", tmp_path / "late.log")
    runs = [late]
    try:
        wait_frozen(late)  # past the CLI's check, not holding the state file
        first = start_run(project, "publish.before-rename:stop", tmp_path / "first.log")
        runs.append(first)
        wait_frozen(first)  # built, alerts delivered, holding the state file, not renamed yet

        second = finrecon_run(project)
        assert second.returncode == 3  # README: the run failed and nothing was published
        message = " ".join(second.stderr.split())
        for part in ("run not started:", f"state file {project.state}", "is in use by another process",
                     "wait for that run to finish (or stop it), then rerun"):  # fmt: skip
            assert part in message, message
        assert_previous_publication(project)

        late.send_signal(signal.SIGCONT)
        assert late.wait(timeout=180) == 3
        # it ends with the same one line as a run the CLI's check refused (above it, Prefect logs the flow's
        # exception with its traceback)
        output = " ".join((tmp_path / "late.log").read_text().split())
        assert f"run not started: state file {project.state} is in use by another process" in output[-300:]
        assert_previous_publication(project)

        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=180) == 0
    finally:
        for run in runs:  # never leave a frozen process behind
            if run.poll() is None:
                run.kill()
                run.wait()
    assert totals(project.published) == (NIGHT_2, NIGHT_2_PO)
    assert snapshot(project.published) == project.reference
    statuses = [s for (s,) in state_rows(project, "select status from runs order by started_at")]
    assert statuses == ["succeeded", "succeeded"]  # the refused runs left no trace in the state file
