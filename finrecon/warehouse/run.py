"""One nightly run's bookkeeping: plan which inputs need landing, record what landing did, keep the books.

This is where "nothing lost" and "idempotent" are enforced: a file whose bytes and landing rules have not
changed is not read again; a changed file replaces exactly its own parts; a removed file takes its parts with
it; and every read row and unit of cost is accounted for as loaded or quarantined. A source that finds nothing
at all (a misspelt export name, an emptied folder) removes nothing: it is a failed input saying where it looked,
unless its config allows it to be empty, and what it landed before stands.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from finrecon.connectors import aws_cur, azure_exports, azure_query, gcp_bigquery
from finrecon.connectors.focus_files import discover, nothing_found
from finrecon.models.config import (
    AwsCurSource,
    AzureExportSource,
    AzureQuerySource,
    Config,
    FocusFilesSource,
    GcpBigQuerySource,
    Source,
)
from finrecon.warehouse import erp_versions, lake
from finrecon.warehouse.landing import Books, FileLanding, Fingerprint, failed_landing, file_key, fingerprint
from finrecon.warehouse.models_runner import SQL_DIR
from finrecon.warehouse.state import State

# Bump when landing would produce different rows from the same bytes (parsing, typing, lake layout).
LANDING_VERSION = "2"  # 2: every charge carries x_resource_group


@dataclass(frozen=True)
class PlannedFile:
    """One input of a source: a local file, or a remote export's billing period (its current manifest)."""

    source: Source
    path: Path  # the local file; for a remote export, where its delivery is downloaded
    relative_path: str  # as shown in run_files and quarantine
    file_key: str
    fingerprint: Fingerprint
    signature: str
    needs_landing: bool
    manifest: aws_cur.ManifestRef | None = None
    invoice_month: str | None = None  # YYYYMM, for a BigQuery export's month
    azure_month: azure_exports.MonthRef | None = None
    query_month: date | None = None  # first day, for a query API's month
    problem: str | None = None  # known before landing: the input fails with this message
    note: str | None = (
        None  # a source allowed to find nothing: recorded as `empty` with this note, not landed
    )

    def failed(self, message: str) -> FileLanding:
        """This input failed as a whole; `message` names where (remote connectors' errors always do)."""
        return failed_landing(self.source.name, self.relative_path, message, self.file_key, located=True)


@dataclass(frozen=True)
class RemovedFile:
    source: str
    file_path: str
    file_key: str


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


# Settings that change how an input is fetched, not what it lands as: changing them re-lands nothing.
_FETCH_ONLY_SETTINGS = {
    "path", "max_attempts", "profile", "role_arn", "retry_initial_seconds", "retry_deadline_seconds",
    "credentials_file", "storage_read_api", "max_retries", "account_url", "connection_string_env",
    "connect_timeout_seconds", "read_timeout_seconds", "request_timeout_seconds", "retry_backoff_seconds",
    "allow_empty",
}  # fmt: skip
# The staging models a source kind applies at landing: changing one re-lands that kind's inputs.
_LANDING_SQL = {
    "aws_cur": "stg_aws__*.sql",
    "gcp_bigquery": "stg_gcp__*.sql",
    "azure_export": "stg_azure__*.sql",
}


def landing_signature(source: Source) -> str:
    """What landing an input depends on besides its bytes: the source's settings and the landing-time SQL."""
    settings = source.model_dump(mode="json", exclude=_FETCH_ONLY_SETTINGS)
    payload = json.dumps({"source": settings, "v": LANDING_VERSION}, sort_keys=True)
    digest = hashlib.sha256(payload.encode())
    pattern = _LANDING_SQL.get(source.kind)
    if pattern:
        for sql in sorted((SQL_DIR / "staging").glob(pattern)):
            digest.update(sql.read_bytes())
    return digest.hexdigest()[:16]


def plan_inputs(
    state: State, config: Config, as_of: date | None = None
) -> tuple[list[PlannedFile], list[RemovedFile]]:
    """Every input with whether it must be (re)landed, and the previously landed inputs now gone."""
    known = {
        row["file_key"]: row
        for row in state.rows(
            "select *, file_key in (select file_key from lake_parts) as has_parts from input_files"
        )
    }
    planned: list[PlannedFile] = []
    for source in config.sources:
        if isinstance(source, AwsCurSource):
            planned += _plan_aws_periods(source, known, config.resolve(config.warehouse.download_path))
            continue
        if isinstance(source, GcpBigQuerySource):
            planned += _plan_gcp_months(source, known, date.today())
            continue
        if isinstance(source, AzureExportSource):
            planned += _plan_azure_months(source, known, config.resolve(config.warehouse.download_path))
            continue
        if isinstance(source, AzureQuerySource):
            planned += _plan_azure_query(source, known, as_of or date.today())
            continue
        folder = config.resolve(source.path)
        signature = landing_signature(source)
        found = discover(folder)
        if not found:
            planned += _found_nothing(
                source, known, folder, str(source.path), nothing_found(folder, str(source.path))
            )
        for path in found:
            relative = path.relative_to(folder).as_posix()
            key = file_key(source.name, relative)
            previous = known.get(key)
            stat = path.stat()
            quick_same = (
                previous is not None
                and previous["status"] == "landed"
                and previous["landing_signature"] == signature
                and previous["size_bytes"] == stat.st_size
                and previous["mtime_ns"] == stat.st_mtime_ns
            )
            if quick_same and previous is not None:
                print_ = Fingerprint(stat.st_size, stat.st_mtime_ns, str(previous["sha256"]))
                planned.append(PlannedFile(source, path, relative, key, print_, signature, False))
                continue
            print_ = fingerprint(path)
            unchanged = _landed_as(previous, signature, print_.sha256)
            planned.append(PlannedFile(source, path, relative, key, print_, signature, not unchanged))
    seen = {p.file_key for p in planned}
    removed = [
        RemovedFile(str(row["source"]), str(row["file_path"]), key)
        for key, row in known.items()
        if key not in seen
    ]
    return planned, removed


def _period_key(source: AwsCurSource, period: str) -> str:
    return file_key(source.name, f"BILLING_PERIOD={period}")


def _landed_as(previous: Mapping[str, object] | None, signature: str, marker: str) -> bool:
    """The input last landed successfully, under these landing rules, from this exact delivery (its checksum,
    ETag or change marker)."""
    return (
        previous is not None
        and previous["status"] == "landed"
        and previous["landing_signature"] == signature
        and previous["sha256"] == marker
    )


def _listing_input(
    source: Source, folder: Path, where: str, problem: str | None = None, note: str | None = None
) -> PlannedFile:
    """The source's listing as an input of its own: failed with `problem`, or a note; it never has parts."""
    key = file_key(source.name, "listing")
    return PlannedFile(source, folder, where, key, Fingerprint(0, 0, ""), landing_signature(source),
                       problem is not None, problem=problem, note=note)  # fmt: skip


def _listing_failed(
    source: Source, known: Mapping[str, Mapping[str, object]], folder: Path, where: str, message: str
) -> list[PlannedFile]:
    """A source that cannot be listed: one failed input saying why, and its landed inputs standing as they are."""
    return [_listing_input(source, folder, where, problem=message), *_standing(source, known, set(), folder)]


ALLOW_EMPTY_FIX = "or, if the source may have nothing yet, set `allow_empty = true` on it"


def found_nothing_note(where: str, standing: int) -> str:
    """What a source allowed to be empty says when it found nothing."""
    kept = f"; its {standing} landed input(s) stay published as they were" if standing else ""
    return f"{where}: nothing found, allowed by `allow_empty = true`{kept}"


def _found_nothing(
    source: FocusFilesSource | AwsCurSource | GcpBigQuerySource | AzureExportSource,
    known: Mapping[str, Mapping[str, object]],
    folder: Path,
    where: str,
    diagnostic: str,
) -> list[PlannedFile]:
    """A source that found no delivery at all: a failed input naming where it looked and what to check, or with
    `allow_empty` a note. Either way its landed inputs stand: nothing found is never read as everything removed
    (a misspelt export name must not delete last month's charges), and `--period` has nothing to re-land them from.
    """
    standing = [replace(p, problem=diagnostic) for p in _standing(source, known, set(), folder)]
    if source.allow_empty:
        return [
            _listing_input(source, folder, where, note=found_nothing_note(where, len(standing))),
            *standing,
        ]
    return [_listing_input(source, folder, where, problem=f"{diagnostic}; {ALLOW_EMPTY_FIX}"), *standing]


def _standing(
    source: Source,
    known: Mapping[str, Mapping[str, object]],
    skip: set[str],
    folder: Path,
) -> list[PlannedFile]:
    """The source's periods that have rows in the lake, kept as they are."""
    signature = landing_signature(source)
    return [
        PlannedFile(
            source,
            folder,
            str(row["file_path"]),
            key,
            Fingerprint(0, 0, str(row["sha256"])),
            signature,
            False,
        )
        for key, row in known.items()
        if row["source"] == source.name and key not in skip and row["has_parts"]
    ]


def _plan_aws_periods(
    source: AwsCurSource, known: Mapping[str, Mapping[str, object]], download_root: Path
) -> list[PlannedFile]:
    """One input per billing period: re-landed only when its manifest's ETag changed since it last landed.

    When the export cannot be listed at all, its landed periods stand (planned as unchanged) and the listing
    failure is recorded as a failed input of its own, so the run's status names it. A period that is no longer
    in the bucket (an S3 lifecycle rule expiring old months) also stands, unless `keep_missing_periods` is off.
    """
    signature = landing_signature(source)
    folder = download_root / source.name
    try:
        client = aws_cur.s3_client(source)
        listing = aws_cur.list_deliveries(client, source)
    except aws_cur.DeliveryError as err:
        return _listing_failed(source, known, folder, source.location, str(err))
    if listing.empty:
        return _found_nothing(
            source, known, folder, source.location, aws_cur.nothing_found(client, source, listing)
        )
    planned = []
    for ref in listing.manifests:
        key = _period_key(source, ref.period)
        previous = known.get(key)
        unchanged = _landed_as(previous, signature, ref.etag)
        uri = f"s3://{source.bucket}/{ref.key}"
        planned.append(
            PlannedFile(source, folder, uri, key, Fingerprint(0, 0, ref.etag), signature, not unchanged, ref)
        )
    for period, message in listing.problems.items():
        planned.append(
            PlannedFile(
                source,
                folder,
                f"{source.location} BILLING_PERIOD={period}",
                _period_key(source, period),
                Fingerprint(0, 0, ""),
                signature,
                True,
                problem=message,
            )
        )
    if source.keep_missing_periods:
        planned += _standing(source, known, {p.file_key for p in planned}, folder)
    return planned


def _plan_gcp_months(
    source: GcpBigQuerySource, known: Mapping[str, Mapping[str, object]], today: date
) -> list[PlannedFile]:
    """One input per invoice month: re-pulled while open, or when its MAX(export_time) or row count moved.

    Months outside the scanned partitions keep their rows; a failed listing query is a failed input of its own,
    and so is a missing table or one with no month (Google creates the table with its first rows: see allow_empty).
    """
    signature = landing_signature(source)
    nowhere = Path(".")  # nothing is downloaded: the rows come back from the query
    where = f"bq://{source.table_id}"
    try:
        months = gcp_bigquery.list_months(gcp_bigquery.bigquery_client(source), source, today)
    except gcp_bigquery.TableNotFound as err:  # a wrong name, or an export whose table has no rows yet
        return _found_nothing(source, known, nowhere, where, str(err))
    except gcp_bigquery.BigQueryError as err:
        return _listing_failed(source, known, nowhere, where, str(err))
    if not months:
        return _found_nothing(source, known, nowhere, where, gcp_bigquery.nothing_found(source, today))
    still_open = gcp_bigquery.open_months(today, source.invoice_close_day)
    planned = []
    for month in months:
        key = file_key(source.name, f"invoice_month={month.invoice_month}")
        previous = known.get(key)
        unchanged = month.invoice_month not in still_open and _landed_as(previous, signature, month.marker)
        label = f"bq://{source.table_id}?invoice.month={month.invoice_month}"
        print_ = Fingerprint(0, 0, month.marker)
        planned.append(PlannedFile(source, nowhere, label, key, print_, signature, not unchanged,
                                   invoice_month=month.invoice_month))  # fmt: skip
    planned += _standing(source, known, {p.file_key for p in planned}, nowhere)
    return planned


def _plan_azure_months(
    source: AzureExportSource, known: Mapping[str, Mapping[str, object]], download_root: Path
) -> list[PlannedFile]:
    """One input per month: re-landed when its manifests (names and ETags) changed since it last landed."""
    signature = landing_signature(source)
    folder = download_root / source.name
    try:
        container = azure_exports.container_client(source)
        listing = azure_exports.list_months(container, source)
    except azure_exports.ExportError as err:
        return _listing_failed(source, known, folder, source.location, str(err))
    if listing.empty:
        diagnostic = azure_exports.nothing_found(container, source, listing)
        return _found_nothing(source, known, folder, source.location, diagnostic)
    planned = []
    for month in listing.months:
        key = file_key(source.name, f"month={month.period}")
        previous = known.get(key)
        unchanged = _landed_as(previous, signature, month.marker)
        planned.append(PlannedFile(source, folder, f"{source.location}/{month.period}", key,
                                   Fingerprint(0, 0, month.marker), signature, not unchanged, azure_month=month))  # fmt: skip
    for period, message in listing.problems.items():
        planned.append(PlannedFile(source, folder, f"{source.location}/{period}", file_key(source.name, f"month={period}"),
                                   Fingerprint(0, 0, ""), signature, True, problem=message))  # fmt: skip
    planned += _standing(source, known, {p.file_key for p in planned}, folder)
    return planned


def _plan_azure_query(
    source: AzureQuerySource, known: Mapping[str, Mapping[str, object]], as_of: date
) -> list[PlannedFile]:
    """One input per month up to `as_of`'s month, queried every night (the API cannot tell what changed); older
    months stand."""
    signature = landing_signature(source)
    planned = []
    for first in azure_query.recent_months(as_of, source.months):
        key = file_key(source.name, f"month={first:%Y-%m}")
        label = f"azure-query://{source.scope}?month={first:%Y-%m}"
        planned.append(PlannedFile(source, Path("."), label, key, Fingerprint(0, 0, ""), signature, True,
                                   query_month=first))  # fmt: skip
    planned += _standing(source, known, {p.file_key for p in planned}, Path("."))
    return planned


def inputs_signature(config: Config, parts: list[str], erp_files: list[Path], as_of: object) -> str:
    """What the published tables are a function of: lake parts, ERP bytes, config, SQL and requested as_of.

    Equal signatures mean a rebuild would publish the same tables, so a night with nothing new skips it.
    """
    digest = hashlib.sha256()
    digest.update(LANDING_VERSION.encode())
    digest.update(config.model_dump_json().encode())
    digest.update(repr(as_of).encode())
    for part in parts:
        digest.update(part.encode())
    for path in erp_files:
        digest.update(fingerprint(path).sha256.encode())
    for sql in sorted(SQL_DIR.rglob("*.sql")):
        digest.update(sql.read_bytes())
    return digest.hexdigest()


def _books_row(books: Books) -> dict[str, float | int]:
    return {
        "rows_read": books.rows_read,
        "rows_loaded": books.rows_loaded,
        "rows_quarantined": books.rows_quarantined,
        "billed_read": books.billed_read,
        "billed_loaded": books.billed_loaded,
        "billed_quarantined": books.billed_quarantined,
        "effective_read": books.effective_read,
        "effective_loaded": books.effective_loaded,
        "effective_quarantined": books.effective_quarantined,
    }


RESTATEMENT_SQL = """
insert into restatements
with keyed as (
    select 'before' as side, *, strftime(coalesce(BillingPeriodStart, ChargePeriodStart), '%Y-%m') as billing_period
    from read_parquet($before, union_by_name = true, hive_partitioning = false)
    union all by name
    select 'after' as side, *, strftime(coalesce(BillingPeriodStart, ChargePeriodStart), '%Y-%m') as billing_period
    from read_parquet($after, union_by_name = true, hive_partitioning = false)
    where $has_after
),

compared as (
    select
        billing_period, ProviderName as provider_name, BillingAccountId as billing_account_id,
        ServiceName as service_name, BillingCurrency as billing_currency,
        count(*) filter (where side = 'before') as rows_before,
        count(*) filter (where side = 'after') as rows_after,
        coalesce(sum(BilledCost) filter (where side = 'before'), 0) as billed_before,
        coalesce(sum(BilledCost) filter (where side = 'after'), 0) as billed_after,
        coalesce(sum(EffectiveCost) filter (where side = 'before'), 0) as effective_before,
        coalesce(sum(EffectiveCost) filter (where side = 'after'), 0) as effective_after
    from keyed
    group by all
)

select
    $run_id, $source, $file_path, billing_period, provider_name, billing_account_id, service_name, billing_currency,
    rows_before, rows_after, billed_before, billed_after, billed_after - billed_before,
    effective_before, effective_after, effective_after - effective_before, $now
from compared
where rows_before <> rows_after
    or abs(billed_after - billed_before) > 1e-9
    or abs(effective_after - effective_before) > 1e-9
"""


INTERRUPTED = (
    "interrupted: the process ended before the run finished (killed or crashed); nothing was published"
)
INTERRUPTED_BEFORE_PUBLISHING = (
    "interrupted before publishing: the process ended after the build, before the new database was renamed into "
    "place; nothing was published"
)


def _publishing_run(published: Path) -> str | None:
    """The run that built the published database (the newest succeeded run in its copy of `runs`), if any."""
    if not published.exists():
        return None
    try:
        con = duckdb.connect(str(published), read_only=True)
        try:
            rows = con.execute(
                "select run_id from runs where status = 'succeeded' order by started_at desc limit 1"
            ).fetchall()
        finally:
            con.close()
    except duckdb.Error:
        return None  # unreadable, or a publication without a run log: nothing to compare with
    return str(rows[0][0]) if rows else None


class RunBook:
    """Records a run's landings in the state file, one transaction per file."""

    def __init__(self, state: State, run_id: str, lake_root: Path | None = None) -> None:
        self.state = state
        self.run_id = run_id
        self.lake_root = lake_root  # where landed parts are, to record restatements
        state.con.execute(
            "insert into runs (run_id, started_at, status) values (?, ?, 'running')",
            [run_id, datetime.now(UTC)],
        )

    def _run_file(self, source: str, file_path: str, status: str, books: Books, error: str | None) -> None:
        row: dict[str, object] = {"run_id": self.run_id, "source": source, "file_path": file_path}
        row |= {"status": status, **_books_row(books), "error": error}
        self.state.insert_frame("run_files", pl.DataFrame([row], infer_schema_length=None))

    def _replace_quarantine(self, landing: FileLanding) -> None:
        self.state.con.execute("delete from quarantine where file_key = ?", [landing.file_key])
        failures = landing.failures.with_columns(
            pl.lit(self.run_id).alias("run_id"),
            pl.lit(landing.source).alias("source"),
            pl.lit(landing.file_path).alias("file_path"),
            pl.lit(landing.file_key).alias("file_key"),
            pl.lit(landing.error, dtype=pl.Utf8).alias("message"),
        )
        self.state.insert_frame("quarantine", failures)

    def record_landing(self, landing: FileLanding, planned: PlannedFile | None) -> None:
        """Switch the file's current parts and quarantine to this landing (or keep the last good parts)."""
        with self.state.transaction():
            self._replace_quarantine(landing)
            if planned is not None:
                if landing.status == "landed":
                    self._record_restatement(landing)
                    self._supersede(landing.file_key)
                    parts = pl.DataFrame(
                        [
                            {
                                "file_key": landing.file_key,
                                "part_path": p.path,
                                "provider": p.provider,
                                "billing_period": p.billing_period,
                                "row_count": p.rows,
                                "billed_cost": p.billed_cost,
                                "effective_cost": p.effective_cost,
                                "run_id": self.run_id,
                            }
                            for p in landing.parts
                        ],
                        infer_schema_length=None,
                    )
                    self.state.insert_frame("lake_parts", parts)
                if landing.status == "landed" and landing.reference is not None:
                    self.state.con.execute(
                        "delete from reference_totals where file_key = ?", [landing.file_key]
                    )
                    self.state.insert_frame("reference_totals", landing.reference)
                self._upsert_input(landing, planned)
            self._run_file(landing.source, landing.file_path, landing.status, landing.books, landing.error)

    def _record_restatement(self, landing: FileLanding) -> None:
        """When a re-landed input replaces rows it landed before, record what moved (by period, provider, account,
        service and currency); nothing when its figures are unchanged."""
        lake_root = self.lake_root
        if lake_root is None:
            return
        before = [str(lake_root / str(r["part_path"])) for r in
                  self.state.rows("select part_path from lake_parts where file_key = ?", [landing.file_key])]  # fmt: skip
        after = [str(lake_root / p.path) for p in landing.parts]
        if landing.status != "landed" or not before:
            return
        self.state.con.execute(
            RESTATEMENT_SQL,
            {"before": before, "after": after or before, "has_after": bool(after), "run_id": self.run_id,
             "source": landing.source, "file_path": landing.file_path, "now": datetime.now(UTC)},
        )  # fmt: skip

    def _upsert_input(self, landing: FileLanding, planned: PlannedFile) -> None:
        self.state.con.execute("delete from input_files where file_key = ?", [landing.file_key])
        landed = landing.status == "landed"
        row = {
            "source": landing.source,
            "file_path": landing.file_path,
            "file_key": landing.file_key,
            "size_bytes": planned.fingerprint.size_bytes,
            "mtime_ns": planned.fingerprint.mtime_ns,
            # a failed file is never "unchanged": it is read again on the next run
            "sha256": planned.fingerprint.sha256 if landed else None,
            "landing_signature": planned.signature,
            "status": landing.status,
            "landed_run_id": self.run_id,
            **_books_row(landing.books),
            "error": landing.error,
        }
        self.state.insert_frame("input_files", pl.DataFrame([row], infer_schema_length=None))

    def record_unchanged(self, planned: PlannedFile) -> None:
        """An unchanged file: nothing read; its standing landing's books are repeated for the record. A source
        allowed to find nothing is recorded as `empty` with its note (and no input of its own)."""
        if planned.note is not None:
            self._run_file(planned.source.name, planned.relative_path, "empty", Books(), planned.note)
            return
        row = self.state.rows("select * from input_files where file_key = ?", [planned.file_key])[0]
        books = Books(**{k: row[k] for k in _books_row(Books())})
        self._run_file(planned.source.name, planned.relative_path, "unchanged", books, None)

    def _supersede(self, key: str) -> None:
        """The file's current parts stop being current (kept on disk for the retention period)."""
        self.state.con.execute(
            "insert or ignore into superseded_parts select part_path, ? from lake_parts where file_key = ?",
            [datetime.now(UTC), key],
        )
        self.state.con.execute("delete from lake_parts where file_key = ?", [key])

    def record_removed(self, removed: RemovedFile) -> None:
        with self.state.transaction() as con:
            self._supersede(removed.file_key)
            for table in ("quarantine", "input_files", "reference_totals"):
                con.execute(f"delete from {table} where file_key = ?", [removed.file_key])
            self._run_file(removed.source, removed.file_path, "removed", Books(), None)

    def current_parts(self) -> list[str]:
        return [
            str(r["part_path"])
            for r in self.state.rows("select part_path from lake_parts order by part_path")
        ]

    def collect_garbage(self, lake_root: Path, retention_hours: float) -> list[str]:
        """Delete lake files no publication can need: not current, and superseded longer ago than retention."""
        cutoff = datetime.now(UTC) - timedelta(hours=retention_hours)
        self.state.con.execute("delete from superseded_parts where superseded_at <= ?", [cutoff])
        kept = self.state.rows("select part_path from superseded_parts")
        return lake.remove_unlisted(
            lake_root, set(self.current_parts()) | {str(r["part_path"]) for r in kept}
        )

    def totals(self) -> dict[str, float | int]:
        """This run's books over the files it read (landed or failed)."""
        row = self.state.rows(
            """
            select
                count(*) as files_total,
                count(*) filter (where status = 'landed') as files_landed,
                count(*) filter (where status = 'unchanged') as files_unchanged,
                count(*) filter (where status = 'failed') as files_failed,
                count(*) filter (where status = 'removed') as files_removed,
                coalesce(sum(rows_read) filter (where status in ('landed', 'failed')), 0) as rows_read,
                coalesce(sum(rows_loaded) filter (where status in ('landed', 'failed')), 0) as rows_loaded,
                coalesce(sum(rows_quarantined) filter (where status in ('landed', 'failed')), 0) as rows_quarantined,
                coalesce(sum(billed_read) filter (where status in ('landed', 'failed')), 0) as billed_read,
                coalesce(sum(billed_loaded) filter (where status in ('landed', 'failed')), 0) as billed_loaded,
                coalesce(sum(billed_quarantined) filter (where status in ('landed', 'failed')), 0) as billed_quarantined,
                coalesce(sum(effective_read) filter (where status in ('landed', 'failed')), 0) as effective_read,
                coalesce(sum(effective_loaded) filter (where status in ('landed', 'failed')), 0) as effective_loaded,
                coalesce(sum(effective_quarantined) filter (where status in ('landed', 'failed')), 0)
                    as effective_quarantined
            from run_files
            where run_id = ? and source <> 'erp'
            """,
            [self.run_id],
        )[0]
        return row

    def close_interrupted(self, published: Path) -> None:
        """Mark the runs a crash (SIGKILL, OOM, power loss) ended as `failed`, so nothing trusts them.

        A killed run stays `running`. One killed after recording its success but before its database was renamed
        into place says `succeeded` while no publication has it: the next night would compare its inputs against
        that run's, find nothing new and never publish them, and billing-period history would keep versions
        nobody saw. The published file says which run built it; a `succeeded` run newer than that one never
        published. This run holds the state file's lock, so no other run is in progress.
        """
        built_by = _publishing_run(published)
        with self.state.transaction() as con:
            con.execute(
                "update runs set status = 'failed', message = ? where status = 'running' and run_id <> ?",
                [INTERRUPTED, self.run_id],
            )
            if built_by is not None:
                con.execute(
                    "update runs set status = 'failed', message = ? where status = 'succeeded' "
                    "and started_at > (select started_at from runs where run_id = ?)",
                    [INTERRUPTED_BEFORE_PUBLISHING, built_by],
                )

    def last_published_signature(self) -> str | None:
        rows = self.state.rows(
            "select inputs_signature from runs where status = 'succeeded' and run_id <> ? "
            "order by started_at desc limit 1",
            [self.run_id],
        )
        return str(rows[0]["inputs_signature"]) if rows and rows[0]["inputs_signature"] else None

    def failed_files(self) -> list[dict[str, object]]:
        """This run's failed inputs, each with `stale`: what of it stays published at its last good version (see
        `stale_inputs`), as dicts of file_path and last_good_run."""
        stale: dict[tuple[str, str], list[dict[str, object]]] = {}
        for row in self.stale_inputs():
            stale.setdefault((str(row["source"]), str(row["failed_path"])), []).append(row)
        rows = self.state.rows(
            "select source, file_path, error from run_files where run_id = ? and status = 'failed'",
            [self.run_id],
        )
        return [row | {"stale": stale.get((str(row["source"]), str(row["file_path"])), [])} for row in rows]

    def notes(self) -> list[dict[str, object]]:
        """This run's sources that found nothing and were allowed to (`allow_empty`): source, file_path, note."""
        return self.state.rows(
            "select source, file_path, error as note from run_files where run_id = ? and status = 'empty'",
            [self.run_id],
        )

    def stale_inputs(self) -> list[dict[str, object]]:
        """The run's stale partitions: inputs it could not refresh whose last good version stays published.

        A failed input keeps its current lake parts (or reference totals); a source whose listing failed keeps
        every input it had landed. Rows: source, file_path, last_good_run (the run that landed what stands) and
        failed_path (the failed input: the partition itself, or its source's listing).
        """
        failed = self.state.rows(
            "select source, file_key, file_path from input_files where landed_run_id = ? and status = 'failed'",
            [self.run_id],
        )
        standing = {
            str(r["file_key"]): r
            for r in self.state.rows(
                """
                select i.file_key, i.source, i.file_path, max(s.run_id) as last_good_run
                from input_files i
                join (select file_key, run_id from lake_parts union all select file_key, run_id from reference_totals) s
                    using (file_key)
                group by all
                """
            )
        }
        found = []
        for fail in failed:
            source, key = str(fail["source"]), str(fail["file_key"])
            if key == file_key(source, "listing"):
                keys = sorted(k for k, r in standing.items() if r["source"] == source)
            else:
                keys = [key] if key in standing else []
            found += [
                {"source": source, "file_path": standing[k]["file_path"],
                 "last_good_run": standing[k]["last_good_run"], "failed_path": fail["file_path"]}
                for k in keys
            ]  # fmt: skip
        # and the ERP extracts published at their last good version in place of their failed file
        found += erp_versions.stale_extracts(self.state, self.run_id)
        return sorted(found, key=lambda r: (str(r["source"]), str(r["file_path"])))

    def finish(
        self,
        status: str,
        as_of: object,
        extra: Mapping[str, object] | None = None,
        message: str | None = None,
    ) -> None:
        values: dict[str, object] = {**self.totals(), **(extra or {})}
        if status == "succeeded" and message is None:
            message = stale_message(self.stale_inputs())
        assignments = ", ".join(f"{name} = ?" for name in values)
        self.state.con.execute(
            f"update runs set {assignments}, status = ?, as_of = ?, finished_at = ?, message = ? where run_id = ?",
            [*values.values(), status, as_of, datetime.now(UTC), message, self.run_id],
        )


def stale_message(stale: list[dict[str, object]]) -> str | None:
    """The run's status line for its stale partitions (runs.message of a run that published), or None."""
    if not stale:
        return None
    listed = "; ".join(f"{r['source']} {r['file_path']} (last good: run {r['last_good_run']})" for r in stale)
    return f"stale: {len(stale)} input(s) failed this run and keep their last good version: {listed}"
