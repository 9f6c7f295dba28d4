"""The nightly flow: land every changed input file (a task each, retried on I/O errors) and the ERP extract,
build the marts, publish atomically, and report. Runs with or without a Prefect server.

No `from __future__ import annotations` here: a served run gets the flow function pickled by value (cloudpickle),
with only the globals its body uses, so string annotations such as "date | None" could not be resolved when
Prefect validates the run's parameters (every run of `finrecon serve` failed that way)."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import Task, flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from finrecon.alerts import nightly as alerting
from finrecon.core import logs as run_logs
from finrecon.core import progress
from finrecon.core.failpoints import failpoint
from finrecon.core.permissions import restricted_umask
from finrecon.flows import artifacts as run_artifacts
from finrecon.models.config import (
    AwsCurSource,
    AzureExportSource,
    AzureQuerySource,
    Config,
    GcpBigQuerySource,
    RunnerConfig,
    load_config,
)
from finrecon.report.summary import Summary, read_summary, to_markdown
from finrecon.warehouse import erp_versions, publish
from finrecon.warehouse.aws_landing import land_aws_period
from finrecon.warehouse.azure_landing import land_azure_month, land_azure_query_month
from finrecon.warehouse.erp_landing import ErpData, land_erp
from finrecon.warehouse.gcp_landing import land_gcp_month
from finrecon.warehouse.landing import FileLanding, ReconciliationError, failed_landing, land_focus_file
from finrecon.warehouse.period import rerun_period
from finrecon.warehouse.run import PlannedFile, RunBook, inputs_signature, new_run_id, plan_inputs
from finrecon.warehouse.stages import StageClock
from finrecon.warehouse.state import State

P = ParamSpec("P")
R = TypeVar("R")


class FileErrorsFatal(RuntimeError):
    """validation.fail_on_file_error is set and at least one file failed."""


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    published_path: Path
    summary: Summary
    failed_files: list[dict[str, Any]] = field(default_factory=list)
    unchanged: bool = False
    # stage -> (wall seconds, peak RSS bytes); landing steps (read, validate, write) summed over tasks
    stages: dict[str, tuple[float, int]] = field(default_factory=dict)
    landing_seconds: dict[str, float] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)  # sources allowed to find nothing (allow_empty)


def _retry_on_io(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient I/O failures only; a bad file is a result, not something to retry."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:
        return False
    return False


def io_task(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task that touches files: retried on transient I/O errors only, never cached (the run checks inputs)."""
    return task(
        name=name,
        retries=2,
        retry_delay_seconds=[1, 5],
        retry_condition_fn=_retry_on_io,
        cache_policy=NO_CACHE,
    )


@dataclass(frozen=True)
class LandingLimits:
    """How strict and how large: the failure ratio that holds an input back, and the rows per chunk."""

    max_failure_ratio: float
    chunk_rows: int


def _land(
    planned: PlannedFile, download_root: Path, lake_root: Path, run_id: str, limits: LandingLimits
) -> FileLanding:
    source = planned.source
    if planned.problem is not None:  # known at planning, e.g. a source that found nothing: nothing to read
        return planned.failed(planned.problem)
    ratio, chunk_rows = limits.max_failure_ratio, limits.chunk_rows
    if isinstance(source, AwsCurSource):
        return land_aws_period(
            planned, download_root=download_root, lake_root=lake_root, run_id=run_id, max_failure_ratio=ratio,
            chunk_rows=chunk_rows,
        )  # fmt: skip
    if isinstance(source, AzureExportSource):
        return land_azure_month(
            planned, download_root=download_root, lake_root=lake_root, run_id=run_id, max_failure_ratio=ratio,
            chunk_rows=chunk_rows,
        )  # fmt: skip
    if isinstance(source, AzureQuerySource):
        return land_azure_query_month(planned, lake_root=lake_root, run_id=run_id, max_failure_ratio=ratio)
    if isinstance(source, GcpBigQuerySource):
        return land_gcp_month(
            planned, lake_root=lake_root, run_id=run_id, max_failure_ratio=ratio, today=date.today(),
            chunk_rows=chunk_rows,
        )  # fmt: skip
    return land_focus_file(
        planned.path,
        source=source.name,
        relative_path=planned.relative_path,
        null_values=source.null_values,
        lake_root=lake_root,
        run_id=run_id,
        max_failure_ratio=ratio,
        chunk_rows=chunk_rows,
    )


@io_task("land-file")
def land_file(
    planned: PlannedFile, download_root: Path, lake_root: Path, run_id: str, limits: LandingLimits
) -> FileLanding:
    """Land one input: a FOCUS file, or one billing period of a remote export (downloaded first)."""
    logger = get_run_logger()
    try:
        landing = _land(planned, download_root, lake_root, run_id, limits)
    except (OSError, ReconciliationError):
        raise  # retried, or a broken identity that must stop the run
    except Exception as err:
        # One input the code cannot handle must not take the night down: it fails alone, loudly.
        logger.exception("%s: unexpected error", planned.relative_path)
        message = f"{type(err).__name__}: {err}"
        landing = failed_landing(planned.source.name, planned.relative_path, message, planned.file_key)
    b = landing.books
    if landing.status == "failed":
        logger.warning("%s failed: %s", planned.relative_path, landing.error)
    else:
        logger.info(
            "%s: read %d, loaded %d, quarantined %d rows",
            planned.relative_path,
            b.rows_read,
            b.rows_loaded,
            b.rows_quarantined,
        )
    return landing


@io_task("load-erp")
def load_erp_extract(config: Config, state: State, run_id: str) -> ErpData:
    """Every ERP extract; one that fails stands in at its last good version (reported stale)."""
    return land_erp(config, state, run_id)


@task(name="build-marts", cache_policy=NO_CACHE)
def build_marts(
    state: State, config: Config, book: RunBook, erp: ErpData, run_id: str, as_of: date | None
) -> publish.BuildResult:
    return publish.build(state, config, book.current_parts(), erp, run_id, as_of)


@task(name="alerts", cache_policy=NO_CACHE)
def raise_alerts(state: State, config: Config, run_id: str, as_of: date | None) -> bool:
    """Alert on the new build (as_of given) or deliver what is pending (an unchanged night, as_of None).

    Alerts never fail the night: a broken rule or channel is logged, and the publication goes ahead. Returns
    whether the alert tables changed (on an unchanged night the publication then gets the fresh copies).
    """
    logger = get_run_logger()
    try:
        if as_of is None:
            outcome = alerting.unchanged_night(state, config, run_id)
        else:
            outcome = alerting.after_build(state, config, run_id, as_of)
    except Exception:
        logger.exception("alerts failed; the publication goes ahead without them")
        return False
    c = outcome.changes
    evaluated = "nothing new to evaluate" if as_of is None else f"{outcome.findings} conditions hold"
    logger.info(
        "alerts: %s; %d fired, %d reminders, %d resolved; %d notifications sent, %d still pending",
        evaluated, c.fired, c.reminded, c.resolved, outcome.sent, outcome.pending,
    )  # fmt: skip
    return outcome.outbox_changed


@task(name="publish", cache_policy=NO_CACHE)  # not retried: the attached database is detached once
def publish_database(state: State, config: Config, result: publish.BuildResult) -> Path:
    return publish.swap_in(state, config, result)


def _record_inputs(
    book: RunBook, config: Config, state: State, run_id: str, as_of: date | None, period: str | None = None
) -> dict[str, float]:
    """Land what changed (in parallel), record every file's outcome, and drop what is gone.

    Returns the landing tasks' summed seconds per step (read, validate, write).
    """
    planned, removed = plan_inputs(state, config, as_of)
    if period is not None:  # a rerun: every input of the period is landed again, changed or not
        planned, count = rerun_period(state, planned, period)
        get_run_logger().info("rerun of billing period %s: %d inputs re-landed", period, count)
    lake_root = config.resolve(config.warehouse.lake_path)
    download_root = config.resolve(config.warehouse.download_path)
    limits = LandingLimits(config.validation.max_failure_ratio, config.runner.chunk_rows)
    futures = {
        p.file_key: land_file.submit(p, download_root, lake_root, run_id, limits)
        for p in planned
        if p.needs_landing
    }
    task_seconds: dict[str, float] = {}
    for item in progress.track("land", planned):
        if item.needs_landing:
            landing = futures[item.file_key].result()
            for step, seconds in landing.seconds.items():
                task_seconds[step] = task_seconds.get(step, 0.0) + seconds
            book.record_landing(landing, item)
        else:
            book.record_unchanged(item)
    for gone in removed:
        book.record_removed(gone)
    book.collect_garbage(lake_root, config.warehouse.lake_retention_hours)
    return task_seconds


def _erp_files(config: Config) -> list[Path]:
    return [config.resolve(path) for path in config.erp.extract_paths().values()]


def _publish_artifacts(summary: Summary) -> None:
    create_markdown_artifact(
        markdown=to_markdown(summary), key="finrecon-nightly-summary", description="Nightly run"
    )
    create_table_artifact(
        table=[{k: None if v is None else str(v) for k, v in row.items()} for row in summary.coverage],
        key="finrecon-coverage-by-provider",
        description="PO coverage by provider (sums of EffectiveCost)",
    )


def _run_night(config: Config, as_of: date | None, period: str | None) -> RunOutcome:
    """The night's work (see `nightly`)."""
    warehouse = config.warehouse
    published = config.resolve(warehouse.published_path)
    clock = StageClock()
    failpoint("run.before-lock")  # concurrency tests: past the CLI's check, not holding the state file
    state = State.open(config.resolve(warehouse.state_path), warehouse.memory_limit, warehouse.temp_directory)
    run_id = new_run_id()
    run_logs.bind_run(run_id)  # every log record from here on carries the run id
    logger = get_run_logger()
    logger.info("run %s starting", run_id)
    unchanged = False
    try:
        book = RunBook(state, run_id, config.resolve(warehouse.lake_path))
        book.close_interrupted(published)  # runs a crash ended: failed, never trusted as published
        try:
            with clock.stage("land"):
                landing_seconds = _record_inputs(book, config, state, run_id, as_of, period)
            failpoint("land.done")  # crash tests: every input landed and recorded, nothing built
            failed, notes = book.failed_files(), book.notes()
            signature = inputs_signature(config, book.current_parts(), _erp_files(config), as_of)
            unchanged = not failed and published.exists() and signature == book.last_published_signature()
            unchanged = unchanged and not erp_versions.failed_when_last_published(state)  # read it again
            if unchanged:
                book.finish("unchanged", None, {"inputs_signature": signature}, message="nothing new")
                path = published
                if raise_alerts(state, config, run_id, None):
                    path = publish.refresh_state_tables(state, config, run_id, alerting.ALERT_TABLES)
            else:
                with clock.stage("model"):
                    erp = load_erp_extract(config, state, run_id)
                    for landing in erp.landings:
                        book.record_landing(landing, None)
                    failed = book.failed_files()  # the ERP extracts' failures count too
                    if failed and config.validation.fail_on_file_error:
                        names = ", ".join(str(f["file_path"]) for f in failed)
                        raise FileErrorsFatal(
                            f"validation.fail_on_file_error is set and these files failed: {names}"
                        )
                    result = build_marts(state, config, book, erp, run_id, as_of)
                slowest = sorted(result.model_seconds.items(), key=lambda item: -item[1])[:5]
                logger.info("slowest models: %s", ", ".join(f"{name} {sec:.1f}s" for name, sec in slowest))
                books = {
                    "published_charge_rows": result.charge_rows,
                    "published_billed_cost": result.billed_cost,
                    "published_effective_cost": result.effective_cost,
                    "inputs_signature": signature,
                    "invariants_checked": result.invariants_checked,
                    "stage_seconds": json.dumps({k: round(v[0], 3) for k, v in clock.stages.items()}),
                }
                book.finish("succeeded", result.as_of, books)
                try:
                    with clock.stage("alerts"):  # before the swap: the publication shows what was delivered
                        raise_alerts(state, config, run_id, result.as_of)
                    with clock.stage("publish"):
                        path = publish_database(state, config, result)
                except BaseException:
                    result.path.unlink(missing_ok=True)
                    raise
        except BaseException as err:
            book.finish("failed", as_of, message=f"{type(err).__name__}: {err}")
            raise
    finally:
        state.close()
    summary = read_summary(path)
    if not unchanged:
        _publish_artifacts(summary)
        run_artifacts.publish_run_artifacts(path)  # untagged top list, open alerts
    logger.info("run %s %s %s", run_id, "left unchanged" if unchanged else "published", path)
    return RunOutcome(run_id, path, summary, failed, unchanged, clock.stages, landing_seconds, notes)


@flow(name="nightly", task_runner=ThreadPoolTaskRunner(max_workers=4))  # type: ignore[arg-type]
def nightly(
    config_path: str | None = None, as_of: date | None = None, period: str | None = None
) -> RunOutcome:
    """Reconcile cloud spend against POs for one night and publish the database analysts open.

    A night with nothing new (no changed input, same ERP bytes, config, SQL and as_of) does no data work: the
    last publication stands and the run is recorded as `unchanged` in the state file. `period` (YYYY-MM) re-lands
    every input of that billing period first (a backfill or rerun; see finrecon/warehouse/period.py).
    """
    config = load_config(Path(config_path) if config_path else None)
    with restricted_umask(config.warehouse.umask_bits):  # nothing the run writes is readable by others
        return _run_night(config, as_of or config.as_of, period)


def task_runner_for(runner: RunnerConfig) -> Any:
    """The configured task runner: threads by default, prefect-dask's DaskTaskRunner to fan out."""
    if runner.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if runner.dask_address:
            return DaskTaskRunner(address=runner.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": runner.dask_workers, "threads_per_worker": 1})
    return ThreadPoolTaskRunner(max_workers=runner.max_workers)


def configured_nightly(config: Config) -> Any:
    """The nightly flow with the config's task runner."""
    return nightly.with_options(task_runner=task_runner_for(config.runner))
