"""`finrecon`: run the nightly reconciliation, validate inputs, query the published database."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import duckdb
import typer
from rich.console import Console
from rich.table import Table

from finrecon.core.permissions import restricted_umask
from finrecon.models.config import (
    AwsCurSource,
    AzureExportSource,
    AzureQuerySource,
    Config,
    ConfigError,
    FocusFilesSource,
    GcpBigQuerySource,
    load_config,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
# Wide enough for the summary tables when the output is a file or a pipe (Rich would assume 80 columns).
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML config (default: $FINRECON_CONFIG, else the bundled fixtures)."
    ),
]

# The sources whose listing can find nothing at all (`allow_empty`); the query API always has months to ask for.
EmptiableSource = FocusFilesSource | AwsCurSource | GcpBigQuerySource | AzureExportSource

EXIT_FILES_FAILED = 1
EXIT_BAD_CONFIG = 2
EXIT_RUN_FAILED = 3


def _config_or_exit(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as err:
        err_console.print(f"[red]config error:[/red] {err}; fix the config file, then `finrecon validate`")
        raise typer.Exit(EXIT_BAD_CONFIG) from None


def _state_free_or_exit(config: Config) -> None:
    """Refuse to start while another process holds the state file (a run in progress), in one line."""
    from finrecon.warehouse.state import State, StateLockedError

    try:
        State.open(config.resolve(config.warehouse.state_path)).close()
    except StateLockedError as err:
        _refuse_locked(err)


def _refuse_locked(err: Exception) -> NoReturn:
    err_console.print(
        f"[red]run not started:[/red] {err}; wait for that run to finish (or stop it), then rerun"
    )
    raise typer.Exit(EXIT_RUN_FAILED) from None


# Failures whose message says what and where but not what to do: the fix, by a phrase of the message.
_FIXES = {
    "required column": "the file lacks a column the pipeline needs: fix the export, or map the column "
    "(ERP files: `erp.column_map`)",
    "rows failed validation, above": "a changed column type or bad values: finops.quarantine names each "
    "row, column and value; fix the export (or raise validation.max_failure_ratio)",
}


def _where(source: str, config: Config) -> str:
    """A source by its config key and name (`sources[1] (aws)`), so the user knows which block to fix."""
    names = [s.name for s in config.sources]
    return f"sources[{names.index(source)}] ({source})" if source in names else source


def _failure_line(failed: dict[str, object], config: Config) -> str:
    """One line per failed input: which source (and its config key), the message, and a fix when it lacks one."""
    error = str(failed["error"])
    fix = next((text for phrase, text in _FIXES.items() if phrase in error), None)
    return f"{_where(str(failed['source']), config)}: {error}" + (f"; {fix}" if fix else "")


def _stale_lines(failed_files: list[dict[str, Any]], config: Config) -> list[str]:
    """One line per partition a failure left stale: it stays published at the version an earlier run landed
    (and that version's date, where known: an ERP extract's)."""
    lines = [
        f"{_where(str(failed['source']), config)}: {stale['file_path']} keeps its last good version"
        + (f" of {stale['last_good_at']}" if stale.get("last_good_at") else "")
        + f" (landed by run {stale['last_good_run']}) in the publication until a run refreshes it"
        for failed in failed_files
        for stale in failed.get("stale", [])
    ]
    return list(dict.fromkeys(lines))


class _InputsTable(Table):
    """The `validate` table, remembering each row's (source, problem) and each note to print them unwrapped
    after it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.problems: list[tuple[str, str]] = []
        self.notes: list[tuple[str, str]] = []

    def add_row(self, *cells: Any, **kwargs: Any) -> None:
        super().add_row(*cells, **kwargs)
        if cells and cells[-1]:
            fix = next((text for phrase, text in _FIXES.items() if phrase in str(cells[-1])), None)
            self.problems.append((str(cells[0]), str(cells[-1]) + (f"; {fix}" if fix else "")))

    def add_note(self, source: str, where: str, note: str) -> None:
        """A row that is not a problem (a source allowed to find nothing), repeated as a note after the table."""
        super().add_row(source, where, "", "", "", note)
        self.notes.append((source, note))


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        err_console.print(f"[red]--as-of:[/red] not a date (YYYY-MM-DD): {value!r}")
        raise typer.Exit(EXIT_BAD_CONFIG) from None


@app.command()
def run(
    config: ConfigOption = None,
    as_of: Annotated[
        str | None, typer.Option(help="Reconciliation date YYYY-MM-DD (default: last charge date).")
    ] = None,
    period: Annotated[
        str | None,
        typer.Option(
            help="Rerun one billing period YYYY-MM: re-land all its inputs, changed or not; republish."
        ),
    ] = None,
) -> None:
    """Run the nightly flow: land, validate, model, publish; then print the summary."""
    loaded = _config_or_exit(config)
    as_of_date = _parse_date(as_of)
    period = _parse_period(period)
    # No phoning home from the temporary Prefect server (the network may be closed; it only logs errors).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    startup_seconds = _allow_prefect_startup(loaded)
    # Imported late: Prefect is slow to import and not needed to report a bad config. It reads its settings
    # from the environment as it is imported, hence after the lines above.
    from finrecon.core import progress
    from finrecon.flows.nightly import configured_nightly
    from finrecon.report.summary import render
    from finrecon.warehouse.state import StateLockedError

    with restricted_umask(loaded.warehouse.umask_bits):  # the state file may be created here
        _state_free_or_exit(loaded)
    flow = configured_nightly(loaded)
    config_path = str(config) if config else os.environ.get("FINRECON_CONFIG")
    try:
        with progress.terminal(console):  # bars only when stdout is a terminal
            outcome = flow(config_path=config_path, as_of=as_of_date, period=period)
    except StateLockedError as err:  # another run took the state file since the check above
        _refuse_locked(err)
    except Exception as err:
        err_console.print(f"[red]run failed:[/red] {_run_failure(err, startup_seconds)}", soft_wrap=True)
        raise typer.Exit(EXIT_RUN_FAILED) from None
    if outcome.unchanged:
        console.print(
            f"[bold]Nothing new[/bold] since run {outcome.summary.run['run_id']}: no data work, its publication stands."
        )
    render(outcome.summary, console)
    for note in outcome.notes:  # sources allowed to find nothing (allow_empty): said, not failed
        console.print(
            f"[cyan]note:[/cyan] {_where(str(note['source']), loaded)}: {note['note']}", soft_wrap=True
        )
    if outcome.failed_files:
        lines = dict.fromkeys(_failure_line(failed, loaded) for failed in outcome.failed_files)  # once each
        for line in lines:
            err_console.print(f"[yellow]file failed:[/yellow] {line}", soft_wrap=True)
        for line in _stale_lines(outcome.failed_files, loaded):
            err_console.print(f"[yellow]stale:[/yellow] {line}", soft_wrap=True)
        err_console.print("see finops.run_files and finops.quarantine; the rest was published")
        raise typer.Exit(EXIT_FILES_FAILED)


_PREFECT_STARTUP_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


def _allow_prefect_startup(loaded: Config) -> int:
    """Give a run without PREFECT_API_URL `runner.prefect_startup_seconds` for Prefect's temporary server to
    answer (Prefect's own 20 s fails the night on two loaded cores); the environment variable, if set, wins."""
    os.environ.setdefault(_PREFECT_STARTUP_ENV, str(loaded.runner.prefect_startup_seconds))
    return int(os.environ[_PREFECT_STARTUP_ENV])


def _run_failure(err: Exception, startup_seconds: int) -> str:
    """One line for a failed run; Prefect's start-up time-out says what to do instead of dumping the server's
    output."""
    text = str(err)
    if isinstance(err, RuntimeError) and text.startswith(
        "Timed out while attempting to connect to ephemeral"
    ):
        exited = re.search(r"exited with code (-?\d+)", text)
        why = f"; its process exited with code {exited.group(1)}" if exited else ""
        return (
            f"Prefect's temporary API server did not answer within {startup_seconds} s{why}. On a busy machine "
            f"raise runner.prefect_startup_seconds (or {_PREFECT_STARTUP_ENV}), or start a server "
            "(`prefect server start`) and set PREFECT_API_URL"
        )
    return f"{type(err).__name__}: {text}"


def _parse_period(value: str | None) -> str | None:
    from finrecon.warehouse.period import check_period

    try:
        return None if value is None else check_period(value)
    except ValueError as err:
        err_console.print(f"[red]{err}[/red]")
        raise typer.Exit(EXIT_BAD_CONFIG) from None


@app.command()
def serve(
    config: ConfigOption = None,
    cron: Annotated[
        str | None, typer.Option(help='Crontab line, e.g. "30 2 * * *" (default: [schedule] cron).')
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(help="IANA timezone of the cron, e.g. Europe/Berlin (default: [schedule] timezone)."),
    ] = None,
) -> None:
    """Schedule the nightly flow on the Prefect server (PREFECT_API_URL) and run it here when due; blocks."""
    loaded = _config_or_exit(config)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from finrecon.ops import serve as serving

    try:
        settings = serving.settings_for(loaded, config, cron, timezone)
    except ValueError as err:
        err_console.print(f"[red]schedule:[/red] {err}")
        raise typer.Exit(EXIT_BAD_CONFIG) from None
    try:
        url = serving.api_url()
    except serving.ServerUnavailable as err:
        err_console.print(f"[red]no Prefect server:[/red] {err}")
        raise typer.Exit(EXIT_BAD_CONFIG) from None
    console.print(
        f"serving deployment nightly/{settings.name} on {url}: {settings.cron!r} in {settings.timezone}; "
        "Ctrl-C stops (the schedule is paused)",
        soft_wrap=True,
    )
    serving.serve_nightly(loaded, settings)


def _found_nothing(source: EmptiableSource, table: _InputsTable, where: str, diagnostic: str) -> int:
    """A source that holds nothing: a problem naming where it looked, or a note when it may be empty (as a run
    treats it); returns the failures to count."""
    from finrecon.warehouse.run import ALLOW_EMPTY_FIX, found_nothing_note

    if source.allow_empty:
        table.add_note(source.name, where, found_nothing_note(where, 0))
        return 0
    table.add_row(source.name, where, "", "", "", f"{diagnostic}; {ALLOW_EMPTY_FIX}")
    return 1


def _check_aws_listing(source: AwsCurSource, table: _InputsTable) -> int:
    """List an S3 export's periods (no downloads: their files are checked when a run lands them)."""
    from finrecon.connectors import aws_cur

    try:
        client = aws_cur.s3_client(source)
        listing = aws_cur.list_deliveries(client, source)
    except aws_cur.DeliveryError as err:
        table.add_row(source.name, source.location, "", "", "", str(err))
        return 1
    if listing.empty:
        return _found_nothing(source, table, source.location, aws_cur.nothing_found(client, source, listing))
    for ref in listing.manifests:
        table.add_row(source.name, f"s3://{source.bucket}/{ref.key}", "", "", "", "")
    for period, message in listing.problems.items():
        table.add_row(source.name, f"BILLING_PERIOD={period}", "", "", "", message)
    return len(listing.problems)


def _check_gcp_listing(source: GcpBigQuerySource, table: _InputsTable) -> int:
    """List a BigQuery export's invoice months (one small query; rows are checked when a run lands them)."""
    from finrecon.connectors import gcp_bigquery

    where = f"bq://{source.table_id}"
    try:
        months = gcp_bigquery.list_months(gcp_bigquery.bigquery_client(source), source, date.today())
    except gcp_bigquery.TableNotFound as err:  # as a run treats it: nothing found
        return _found_nothing(source, table, where, str(err))
    except gcp_bigquery.BigQueryError as err:
        table.add_row(source.name, where, "", "", "", str(err))
        return 1
    if not months:
        return _found_nothing(source, table, where, gcp_bigquery.nothing_found(source, date.today()))
    for month in months:
        label = f"bq://{source.table_id}?invoice.month={month.invoice_month}"
        table.add_row(source.name, label, str(month.line_items), "", "", "")
    return 0


def _check_azure_listing(source: AzureExportSource, table: _InputsTable) -> int:
    """List an Azure export's months with the rows their current manifests announce (manifests only: the data
    blobs are checked when a run lands them)."""
    from finrecon.connectors import azure_exports

    try:
        container = azure_exports.container_client(source)
        listing = azure_exports.list_months(container, source)
    except azure_exports.ExportError as err:
        table.add_row(source.name, source.location, "", "", "", str(err))
        return 1
    if listing.empty:
        return _found_nothing(
            source, table, source.location, azure_exports.nothing_found(container, source, listing)
        )
    failures = 0
    for month in listing.months:
        where = f"{source.location}/{month.period}"
        try:
            manifest = azure_exports.latest_manifest(container, source, month)
            azure_exports.check_supported(manifest, source)
        except azure_exports.ExportError as err:
            table.add_row(source.name, where, "", "", "", str(err))
            failures += 1
            continue
        announced = [rows for _, _, rows in manifest.blobs]
        rows = "" if None in announced else str(sum(r for r in announced if r is not None))
        table.add_row(source.name, where, rows, "", "", "")
    for period, message in listing.problems.items():
        table.add_row(source.name, f"{source.location}/{period}", "", "", "", message)
    return failures + len(listing.problems)


def _check_azure_query(source: AzureQuerySource, table: _InputsTable, as_of: date) -> int:
    """List the months a run would query, after one query of the latest (the API is throttled per tenant, so
    one call checks access and scope; the rows of the others are read when a run lands them)."""
    from finrecon.connectors import azure_query

    months = azure_query.recent_months(as_of, source.months)
    try:
        rows = azure_query.query_month(azure_query.cost_client(source), source, months[-1])
    except azure_query.QueryError as err:
        table.add_row(source.name, f"azure-query://{source.scope}", "", "", "", str(err))
        return 1
    for first in months:
        count = str(len(rows)) if first == months[-1] else ""
        table.add_row(source.name, f"azure-query://{source.scope}?month={first:%Y-%m}", count, "", "", "")
    return 0


@app.command()
def validate(config: ConfigOption = None) -> None:
    """Check the config, every input file and every remote source's listing (what a run would land); publish
    nothing."""
    from finrecon.connectors.focus_files import discover, nothing_found
    from finrecon.warehouse.erp_landing import load_erp
    from finrecon.warehouse.landing import FileLanding, validate_focus_file

    loaded = _config_or_exit(config)
    table = _InputsTable(title="Inputs")
    for name in ("source", "file", "rows", "valid", "quarantined", "problem"):
        table.add_column(name)
    failures = 0
    for source in loaded.sources:
        if isinstance(source, AwsCurSource):
            failures += _check_aws_listing(source, table)
            continue
        if isinstance(source, GcpBigQuerySource):
            failures += _check_gcp_listing(source, table)
            continue
        if isinstance(source, AzureExportSource):
            failures += _check_azure_listing(source, table)
            continue
        if isinstance(source, AzureQuerySource):
            failures += _check_azure_query(source, table, loaded.as_of or date.today())
            continue
        folder = loaded.resolve(source.path)
        found = discover(folder)
        if not found:
            failures += _found_nothing(
                source, table, str(source.path), nothing_found(folder, str(source.path))
            )
        for path in found:
            relative = path.relative_to(folder).as_posix()
            checked = validate_focus_file(
                path,
                source=source.name,
                relative_path=relative,
                null_values=source.null_values,
                max_failure_ratio=loaded.validation.max_failure_ratio,
                chunk_rows=loaded.runner.chunk_rows,
            )
            problem = checked.error if isinstance(checked, FileLanding) else None
            failures += problem is not None
            b = checked.books
            table.add_row(
                source.name,
                relative,
                str(b.rows_read),
                str(b.rows_loaded),
                str(b.rows_quarantined),
                problem or "",
            )
    for landing in load_erp(loaded).landings:
        b = landing.books
        failures += landing.error is not None
        table.add_row(
            "erp",
            landing.file_path,
            str(b.rows_read),
            str(b.rows_loaded),
            str(b.rows_quarantined),
            landing.error or "",
        )
    console.print(table)
    for name, note in table.notes:
        console.print(f"[cyan]note:[/cyan] {_where(name, loaded)}: {note}", soft_wrap=True)
    for line in dict.fromkeys(table.problems):  # the table wraps them: each again on one line
        err_console.print(f"[yellow]problem:[/yellow] {_where(line[0], loaded)}: {line[1]}", soft_wrap=True)
    if failures:
        raise typer.Exit(EXIT_FILES_FAILED)


@app.command()
def sql(
    query: Annotated[
        str | None, typer.Argument(help="One query to run; without it, an interactive prompt.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Open the published database read-only: run one query, or read queries from a prompt."""
    loaded = _config_or_exit(config)
    path = loaded.resolve(loaded.warehouse.published_path)
    if not path.exists():
        err_console.print(f"[red]no published database at {path}[/red]: run `finrecon run` first")
        raise typer.Exit(EXIT_BAD_CONFIG)
    con = duckdb.connect(str(path), read_only=True)
    try:
        if query is not None:
            _print_query(con, query)
            return
        console.print(f"{path} (read-only). End statements with ';', quit with .quit or Ctrl-D.")
        _prompt(con)
    finally:
        con.close()


def _print_query(con: duckdb.DuckDBPyConnection, query: str) -> None:
    try:
        cursor = con.execute(query)
    except duckdb.Error as err:
        err_console.print(f"[red]{err}[/red]")
        raise typer.Exit(EXIT_RUN_FAILED) from None
    names = [d[0] for d in cursor.description or []]
    table = Table(*names)
    for row in cursor.fetchall():
        table.add_row(*["NULL" if v is None else str(v) for v in row])
    console.print(table)


def _prompt(con: duckdb.DuckDBPyConnection) -> None:
    buffer = ""
    while True:
        try:
            line = input("finops> " if not buffer else "   ...> ")
        except EOFError:
            return
        if not buffer and line.strip() in (".quit", ".exit"):
            return
        buffer += line + "\n"
        if buffer.rstrip().endswith(";"):
            with contextlib.suppress(typer.Exit):  # the error is printed; keep the prompt
                _print_query(con, buffer)
            buffer = ""


@app.command()
def alerts(
    config: ConfigOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Evaluate the rules on the published database; print, send and record nothing."
        ),
    ] = False,
) -> None:
    """List open alerts and pending deliveries; with --dry-run, what the rules would fire and resolve."""
    from finrecon.alerts import cli_views

    loaded = _config_or_exit(config)
    if not dry_run:
        state = cli_views.read_alert_state(loaded)
        console.print(cli_views.open_table(state))
        console.print(cli_views.pending_table(state))
        return
    try:
        changes, state, as_of = cli_views.dry_run(loaded)
    except cli_views.NoPublication as err:
        err_console.print(f"[red]{err}[/red]")
        raise typer.Exit(EXIT_BAD_CONFIG) from None
    console.print(
        f"[bold]Dry run[/bold] on the publication of {as_of} against the {state.origin}: "
        f"{len(changes.fire)} would fire, {len(changes.resolve)} would resolve, {len(changes.keep)} stay open; "
        "nothing sent or recorded."
    )
    for table in cli_views.dry_run_tables(changes, state, loaded):
        console.print(table)


@app.command()
def report(
    config: ConfigOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="HTML file to write (default: report.html beside the published database)."
        ),
    ] = None,
) -> None:
    """Write the published database as one self-contained HTML page (charts inlined; opens offline)."""
    from finrecon.report.html import write_report

    loaded = _config_or_exit(config)
    published = loaded.resolve(loaded.warehouse.published_path)
    if not published.exists():
        err_console.print(f"[red]no published database at {published}[/red]: run `finrecon run` first")
        raise typer.Exit(EXIT_BAD_CONFIG)
    target = out if out is not None else published.with_name("report.html")
    with restricted_umask(loaded.warehouse.umask_bits):
        written = write_report(published, target, loaded.alerts.burn_thresholds)
    console.print(str(written), soft_wrap=True)


bench_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Generate data and benchmark the flow."
)
app.add_typer(bench_app, name="bench")
BENCH_DIR = Path(".bench")


@bench_app.command("generate")
def bench_generate(
    rows: Annotated[int, typer.Option(help="Charge rows (split over three providers).")] = 1_000_000,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.gz")] = "parquet",
    out: Annotated[Path, typer.Option(help="Folder to write focus/ and erp/ into.")] = BENCH_DIR / "data",
    rows_per_file: Annotated[int, typer.Option(help="Rows per file (one file = one task).")] = 1_000_000,
) -> None:
    """Write deterministic FOCUS-shaped charges and a matching ERP extract (never commit them)."""
    from finrecon.bench.generate import generate

    result = generate(out, rows, fmt, rows_per_file)
    console.print(
        f"{result.rows:,} rows in {len(result.files)} files under {out}/focus, ERP under {result.erp_dir}"
    )


@bench_app.command("run")
def bench_run(
    rows: Annotated[int, typer.Option(help="Charge rows to generate and run.")] = 1_000_000,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.gz")] = "parquet",
    workdir: Annotated[
        Path, typer.Option(help="Where data and outputs go (reused between runs).")
    ] = BENCH_DIR,
    rows_per_file: Annotated[int, typer.Option(help="Rows per file.")] = 1_000_000,
    workers: Annotated[int, typer.Option(help="Parallel landing tasks.")] = 2,
    memory_limit: Annotated[str | None, typer.Option(help="DuckDB memory_limit, e.g. 4GB.")] = None,
    record: Annotated[bool, typer.Option(help="Append the result row to BENCHMARKS.md.")] = False,
) -> None:
    """Run the real nightly flow on generated data against a bare-DuckDB lower bound; print the figures."""
    from finrecon.bench.runner import BenchSettings, markdown_row, run_bench

    settings = BenchSettings(rows, fmt, workdir, rows_per_file, workers, memory_limit)
    results = run_bench(settings, console)
    row = markdown_row(results)
    console.print(row, soft_wrap=True)
    if record:
        with Path("BENCHMARKS.md").open("a", encoding="utf-8") as handle:
            handle.write(row + "\n")


@bench_app.command("matrix")
def bench_matrix(
    cases: Annotated[
        str | None,
        typer.Option(help="Comma-separated case names (default: all; --list shows them)."),
    ] = None,
    scale: Annotated[
        float, typer.Option(help="Multiply every case's rows (file counts stay), e.g. 0.01 to smoke-test.")
    ] = 1.0,
    workdir: Annotated[
        Path, typer.Option(help="Where data and outputs go (data sets are reused when identical).")
    ] = BENCH_DIR,
    workers: Annotated[int, typer.Option(help="Parallel landing tasks.")] = 2,
    memory_limit: Annotated[str | None, typer.Option(help="DuckDB memory_limit, e.g. 4GB.")] = None,
    record: Annotated[
        bool, typer.Option(help="Append the rows to BENCHMARKS.md's file-size matrix table.")
    ] = False,
    list_cases: Annotated[bool, typer.Option("--list", help="List the cases and exit.")] = False,
) -> None:
    """Issue 16's file-size matrix: per case land/model/publish s, peak RSS, ratios to a lower bound run beside it."""
    from finrecon.bench import matrix

    if list_cases:
        for case in matrix.CASES:
            console.print(
                f"{case.name}: {case.rows:,} rows, {case.fmt}, {case.files} file(s) of "
                f"{case.rows_per_file(scale):,} (at --scale {scale:g}: {case.scaled_rows(scale):,} rows)"
            )
        return
    try:
        chosen = matrix.select_cases(cases)
    except ValueError as err:
        err_console.print(f"[red]{err}[/red]")
        raise typer.Exit(EXIT_BAD_CONFIG) from None
    if scale <= 0:
        err_console.print("[red]--scale must be positive[/red]")
        raise typer.Exit(EXIT_BAD_CONFIG)
    results = matrix.run_matrix(chosen, scale, workdir, workers, memory_limit, console)
    rows = matrix.markdown_rows(results)
    for row in rows:
        console.print(row, soft_wrap=True)
    if record:
        matrix.record(Path("BENCHMARKS.md"), rows)


@bench_app.command("cur")
def bench_cur(
    rows: Annotated[int, typer.Option(help="AWS line items to generate, deliver and land.")] = 1_000_000,
    export_type: Annotated[str, typer.Option(help="cur_legacy (csv.gz parts) or cur2 (Parquet parts).")] = (
        "cur_legacy"
    ),
    rows_per_part: Annotated[
        int | None, typer.Option(help="Rows per delivered part (default: one part).")
    ] = None,
    workdir: Annotated[Path, typer.Option(help="Where data, outputs and the peer's venv go.")] = BENCH_DIR,
    workers: Annotated[int, typer.Option(help="Parallel landing tasks.")] = 2,
    peer: Annotated[
        bool, typer.Option(help="Time focus-converter 1.0.0 beside it (own venv under --workdir).")
    ] = True,
) -> None:
    """AWS CUR landing from a local S3 (moto) against focus-converter and a bare DuckDB on the same rows."""
    from finrecon.bench.cur import run_cur_bench

    if export_type not in ("cur_legacy", "cur2"):
        err_console.print("[red]--export-type must be cur_legacy or cur2[/red]")
        raise typer.Exit(EXIT_BAD_CONFIG)
    run_cur_bench(rows, export_type, workdir, rows_per_part, workers, peer, console)  # type: ignore[arg-type]


@bench_app.command("azure")
def bench_azure(
    rows: Annotated[int, typer.Option(help="Azure rows to generate, export and land.")] = 1_000_000,
    export_type: Annotated[str, typer.Option(help="FocusCost or ActualCost (cost details).")] = "FocusCost",
    file_format: Annotated[
        str, typer.Option("--format", help="csv.gz (Csv, Gzip) or parquet (Parquet, Snappy) parts.")
    ] = "csv.gz",
    rows_per_part: Annotated[
        int | None, typer.Option(help="Rows per exported part (default: one part).")
    ] = None,
    workdir: Annotated[Path, typer.Option(help="Where data, outputs and the peer's venv go.")] = BENCH_DIR,
    workers: Annotated[int, typer.Option(help="Parallel landing tasks.")] = 2,
    peer: Annotated[
        bool,
        typer.Option(help="Time focus-converter 1.0.0 beside it (ActualCost; own venv under --workdir)."),
    ] = True,
) -> None:
    """Azure Cost Management export landing from a local Azurite against focus-converter on the same rows."""
    from finrecon.bench.azure import run_azure_bench

    if export_type not in ("FocusCost", "ActualCost"):
        err_console.print("[red]--export-type must be FocusCost or ActualCost[/red]")
        raise typer.Exit(EXIT_BAD_CONFIG)
    if file_format not in ("csv.gz", "parquet"):
        err_console.print("[red]--format must be csv.gz or parquet[/red]")
        raise typer.Exit(EXIT_BAD_CONFIG)
    run_azure_bench(rows, export_type, file_format, workdir, rows_per_part, workers, peer, console)  # type: ignore[arg-type]


@app.command()
def docs(
    database: Annotated[
        Path | None,
        typer.Option(help="A published database to describe (default: a run of the bundled fixtures)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Where to write (default: docs/data-dictionary.md).")
    ] = None,
) -> None:
    """Regenerate the data dictionary from finrecon/sql/dictionary/, the models' SQL and a published database."""
    from finrecon.flows.bundled import write_dictionary
    from finrecon.warehouse import dictionary

    target = output or dictionary.OUTPUT
    issues = dictionary.write(database, target) if database is not None else write_dictionary(target)
    console.print(f"wrote {target}")
    for issue in issues:
        err_console.print(f"[yellow]undocumented:[/yellow] {issue} (finrecon/sql/dictionary/tables.toml)")
    if issues:
        raise typer.Exit(EXIT_FILES_FAILED)


@app.command()
def export(
    parquet: Annotated[Path, typer.Option("--parquet", help="Folder to write <table>.parquet files into.")],
    config: ConfigOption = None,
) -> None:
    """Write every published table and view (charges included) as Parquet, one file each."""
    from finrecon.export import export_parquet

    loaded = _config_or_exit(config)
    path = loaded.resolve(loaded.warehouse.published_path)
    if not path.exists():
        err_console.print(f"[red]no published database at {path}[/red]: run `finrecon run` first")
        raise typer.Exit(EXIT_BAD_CONFIG)
    with restricted_umask(loaded.warehouse.umask_bits):
        written = export_parquet(path, parquet)
    console.print(f"{len(written)} Parquet files in {parquet}")


if __name__ == "__main__":
    app()
