"""Land one input: read it in chunks, validate each (Pandera), quarantine failures, type, write lake parts.

Memory holds one chunk at a time, whatever the size of the input: a chunk's valid rows are typed and appended to
the input's temporary lake parts, which are renamed into place once the whole input has landed.

Every step keeps the books: rows and cost read = loaded + quarantined, checked here for each file before
anything is recorded, so a file can never silently lose rows or money.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import astuple, dataclass, field
from pathlib import Path

import polars as pl

from finrecon.connectors._files import DEFAULT_CHUNK_ROWS, delimiter_hint
from finrecon.connectors.focus_files import iter_focus_file
from finrecon.core.failpoints import failpoint
from finrecon.models import charges as charge_models
from finrecon.models.quarantine import (
    FIELD_COUNT_CHECK,
    FILE_COLUMN,
    ROW_COLUMN,
    FileLevelError,
    Split,
    empty_failures,
    missing_columns_error,
    split_valid,
)
from finrecon.warehouse.lake import Part, PartWriter

logger = logging.getLogger(__name__)

COST_COLUMNS = ("BilledCost", "EffectiveCost")
# Every landed charge has it (NULL where the source has no resource groups), so allocation rules can match it.
RESOURCE_GROUP_COLUMN = "x_resource_group"


def _resource_group(columns: list[str]) -> pl.Expr:
    """The charge's resource group: as mapped by staging, else a FOCUS file's `x_ResourceGroupName`, else NULL."""
    for name in (RESOURCE_GROUP_COLUMN, "x_ResourceGroupName"):
        if name in columns:
            return pl.col(name).cast(pl.Utf8)
    return pl.lit(None, dtype=pl.Utf8)


class ReconciliationError(RuntimeError):
    """Rows or cost do not add up: the run stops rather than publish numbers that are wrong."""


@dataclass(frozen=True)
class Fingerprint:
    size_bytes: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class Books:
    """Rows and cost of one file: read, loaded and quarantined."""

    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    billed_read: float = 0.0
    billed_loaded: float = 0.0
    billed_quarantined: float = 0.0
    effective_read: float = 0.0
    effective_loaded: float = 0.0
    effective_quarantined: float = 0.0

    def __add__(self, other: Books) -> Books:
        return Books(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def held_back(self) -> Books:
        """Every row read counted as quarantined: a file that is refused as a whole."""
        return Books(self.rows_read, 0, self.rows_read, self.billed_read, 0.0, self.billed_read,
                     self.effective_read, 0.0, self.effective_read)  # fmt: skip


@dataclass(frozen=True)
class FileLanding:
    """What landing one file produced; recorded in the state file by the flow."""

    source: str
    file_path: str
    file_key: str
    status: str  # landed | failed
    books: Books
    parts: list[Part] = field(default_factory=list)
    failures: pl.DataFrame = field(default_factory=empty_failures)
    error: str | None = None
    fingerprint: Fingerprint | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # read, validate, write: where the time went
    reference: pl.DataFrame | None = None  # reference totals (not charges), e.g. the Azure query API's


def file_key(source: str, relative_path: str) -> str:
    return hashlib.sha1(f"{source}/{relative_path}".encode()).hexdigest()[:16]


def fingerprint(path: Path) -> Fingerprint:
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return Fingerprint(stat.st_size, stat.st_mtime_ns, digest.hexdigest())


def _cost_sum(frame: pl.DataFrame, column: str) -> float:
    """Σ of a cost column's parseable values (its typed sibling); unparseable values count as 0."""
    typed = charge_models.typed_name(column)
    if typed not in frame.columns or frame.height == 0:
        return 0.0
    return float(frame.get_column(typed).sum() or 0.0)


def _read_books(prepared: pl.DataFrame) -> Books:
    """A `prepare`d chunk counted as read and quarantined: the books of a file that fails as a whole."""
    billed, effective = _cost_sum(prepared, "BilledCost"), _cost_sum(prepared, "EffectiveCost")
    return Books(prepared.height, 0, prepared.height, billed, 0.0, billed, effective, 0.0, effective)


def _counted(chunks: Iterable[pl.DataFrame]) -> Books:
    """Rows and parseable cost of raw chunks (only their cost columns are parsed), as read and quarantined; when
    the chunks stop being readable, what was counted until then."""
    total = Books()
    try:
        for chunk in chunks:
            costs = [c for c in COST_COLUMNS if c in chunk.columns]
            total += _read_books(
                charge_models.prepare(chunk.select(costs)) if costs else chunk.select(ROW_COLUMN)
            )
    except FileLevelError:
        pass  # the rest cannot be read: what was counted stands
    return total


def costs_match(a: float, b: float) -> bool:
    """Equal up to float rounding (1e-9 relative or absolute): the tolerance of every cost identity."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def balance(books: Books, label: str) -> None:
    """Raise ReconciliationError unless read = loaded + quarantined for rows and both costs."""
    checks = [
        ("rows", books.rows_read, books.rows_loaded + books.rows_quarantined),
        ("BilledCost", books.billed_read, books.billed_loaded + books.billed_quarantined),
        ("EffectiveCost", books.effective_read, books.effective_loaded + books.effective_quarantined),
    ]
    for what, read, accounted in checks:
        if not costs_match(float(read), float(accounted)):
            raise ReconciliationError(f"{label}: {what} read {read} != loaded + quarantined {accounted}")


def _failed(
    source: str, relative: str, key: str, err: FileLevelError, books: Books | None = None
) -> FileLanding:
    """A file that failed as a whole: its rows (counted from `books`, else from the error's rows) quarantined."""
    if books is None:
        chunks = err.row_chunks()
        books = _counted(chunks) if chunks is not None else Books()
    return FileLanding(source, relative, key, "failed", books, failures=err.record(), error=err.message)


def failed_landing(
    source: str, relative_path: str, message: str, key: str | None = None, *, located: bool = False
) -> FileLanding:
    """An input that could not be processed at all (nothing known of its rows).

    The message is prefixed with the input's path, unless `located`: it already names where (a bucket key, a
    table), as every remote connector's error does.
    """
    err = FileLevelError(None, "processable", message if located else f"{relative_path}: {message}")
    return _failed(source, relative_path, key or file_key(source, relative_path), err)


ChunkSink = Callable[[pl.DataFrame], None]


@dataclass(frozen=True)
class Validated:
    """A readable input's books and quarantine records, its valid rows having gone to the sink chunk by chunk;
    `valid_rows`: their source row numbers, when asked for (empty otherwise)."""

    valid_rows: pl.Series
    failures: pl.DataFrame
    books: Books
    seconds: dict[str, float]


def validate_focus_file(
    path: Path,
    *,
    source: str,
    relative_path: str,
    null_values: list[str],
    max_failure_ratio: float,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    keep_row_numbers: bool = False,
) -> Validated | FileLanding:
    """Read and validate one FOCUS file in chunks; a file-level problem gives a `failed` landing, never an
    exception. `keep_row_numbers`: list the valid rows' numbers (8 bytes a row) in `Validated.valid_rows`."""
    return validate_charges(
        lambda: iter_focus_file(path, null_values, chunk_rows),
        source=source,
        relative_path=relative_path,
        key=file_key(source, relative_path),
        max_failure_ratio=max_failure_ratio,
        keep_row_numbers=keep_row_numbers,
    )


@dataclass
class _Tally:
    books: Books = field(default_factory=Books)
    failures: list[pl.DataFrame] = field(default_factory=list)
    valid_rows: list[pl.Series] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "validate": 0.0, "write": 0.0})

    def lap(self, step: str, started: float) -> float:
        now = time.perf_counter()
        self.seconds[step] += now - started
        return now


def _check_chunk(raw: pl.DataFrame, relative_path: str) -> tuple[Books, Split]:
    """One chunk prepared and split; a missing required column or a schema-level failure raises FileLevelError."""
    missing = charge_models.missing_required(raw.columns)
    if missing:
        raise missing_columns_error(relative_path, missing, delimiter_hint(raw.columns))
    prepared = charge_models.prepare(raw)
    split = split_valid(prepared, charge_models.charge_schema(prepared.columns))
    bad_rows = split.quarantined_rows
    books = Books(
        rows_read=prepared.height,
        rows_loaded=split.valid.height,
        rows_quarantined=bad_rows.height,
        billed_read=_cost_sum(prepared, "BilledCost"),
        billed_loaded=_cost_sum(split.valid, "BilledCost"),
        billed_quarantined=_cost_sum(bad_rows, "BilledCost"),
        effective_read=_cost_sum(prepared, "EffectiveCost"),
        effective_loaded=_cost_sum(split.valid, "EffectiveCost"),
        effective_quarantined=_cost_sum(bad_rows, "EffectiveCost"),
    )
    balance(books, relative_path)
    return books, split


def validate_charges(
    load: Callable[[], Iterable[pl.DataFrame]],
    *,
    source: str,
    relative_path: str,
    key: str,
    max_failure_ratio: float,
    sink: ChunkSink | None = None,
    keep_row_numbers: bool = False,
) -> Validated | FileLanding:
    """Validate the FOCUS-named chunks `load` gives (it may raise FileLevelError for a file-level problem),
    passing each chunk's valid rows to `sink`. Memory holds one chunk at a time, plus the quarantine records.

    A file-level failure fails the whole input: its rows are counted as read and quarantined (the chunks
    already seen and, for a failure found in a chunk, the rest of the input read again), and whatever `sink`
    received must be discarded by the caller.
    """
    tally = _Tally()
    try:
        chunks = iter(load())
    except FileLevelError as err:
        return _failed(source, relative_path, key, err)
    started = time.perf_counter()
    while True:
        try:
            raw = next(chunks, None)
        except FileLevelError as err:
            return _failed(source, relative_path, key, err)  # unreadable: its rows as far as the error knows
        if raw is None:
            break
        started = tally.lap("read", started)
        try:
            books, split = _check_chunk(raw, relative_path)
        except FileLevelError as err:
            counted = tally.books.held_back() + _counted(itertools.chain([raw], chunks))
            return _failed(source, relative_path, key, err, counted)
        tally.books += books
        tally.failures.append(split.failures)
        if keep_row_numbers:
            tally.valid_rows.append(split.valid.get_column(ROW_COLUMN))
        started = tally.lap("validate", started)
        if sink is not None and split.valid.height:
            sink(split.valid)
            started = tally.lap("write", started)
    books = tally.books
    failures = pl.concat(tally.failures) if tally.failures else empty_failures()
    _warn_misshapen(relative_path, failures)
    if books.rows_read and books.rows_quarantined / books.rows_read > max_failure_ratio:
        message = (
            f"{relative_path}: {books.rows_quarantined} of {books.rows_read} rows failed validation, above "
            f"validation.max_failure_ratio={max_failure_ratio}; the file is held back"
        )
        return FileLanding(
            source, relative_path, key, "failed", books.held_back(), failures=failures, error=message
        )
    valid_rows = pl.concat(tally.valid_rows) if tally.valid_rows else pl.Series(ROW_COLUMN, [], pl.Int64)
    return Validated(valid_rows, failures, books, tally.seconds)


def _warn_misshapen(relative_path: str, failures: pl.DataFrame) -> None:
    """One line for an input with records of another field count than its header's: quarantined like any bad
    row, but a sign of a file cut short or badly quoted, so said where it is seen, naming the first one's line."""
    shapes = failures.filter(pl.col("check_name") == FIELD_COUNT_CHECK)
    if shapes.height:
        first = shapes.row(0, named=True)
        where = f"{relative_path} ({first['source_file']})" if first["source_file"] else relative_path
        more = f" (and {shapes.height - 1} more such records)" if shapes.height > 1 else ""
        logger.warning("%s: %s%s; quarantined, see finops.quarantine", where, first["raw_value"], more)


def land_focus_file(
    path: Path,
    *,
    source: str,
    relative_path: str,
    null_values: list[str],
    lake_root: Path,
    run_id: str,
    max_failure_ratio: float,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> FileLanding:
    """Validate one FOCUS file chunk by chunk, type its valid rows and write them as lake parts."""
    return land_charges(
        lambda: iter_focus_file(path, null_values, chunk_rows),
        source=source,
        relative_path=relative_path,
        key=file_key(source, relative_path),
        source_kind="focus_files",
        lake_root=lake_root,
        run_id=run_id,
        max_failure_ratio=max_failure_ratio,
    )


def land_charges(
    load: Callable[[], Iterable[pl.DataFrame]],
    *,
    source: str,
    relative_path: str,
    key: str,
    source_kind: str,
    lake_root: Path,
    run_id: str,
    max_failure_ratio: float,
) -> FileLanding:
    """Validate the FOCUS-named chunks `load` gives, type each chunk's valid rows and write them to lake parts.

    `key` identifies the input in the state file: a file, or (for remote exports) a whole billing period, whose
    parts are replaced together. Rows keep their own `x_source_file` when the input spans several files. Parts
    are written under temporary names and renamed into place only when the whole input has landed: an input
    that fails (or a run killed mid-input) leaves no part of it in the lake.
    """
    writer = PartWriter(lake_root, key, run_id)

    def write(valid: pl.DataFrame) -> None:
        lineage = [pl.lit(source_kind).alias("x_source"), pl.lit(run_id).alias("x_run_id")]
        if FILE_COLUMN not in valid.columns:
            lineage.append(pl.lit(relative_path).alias(FILE_COLUMN))
        lineage.append(_resource_group(valid.columns).alias(RESOURCE_GROUP_COLUMN))
        typed = charge_models.type_charges(valid).with_columns(lineage)
        charge_models.canonical_schema().validate(typed)
        writer.write(typed)
        failpoint("landing.chunk-written")  # crash tests: a chunk in a temporary part, the input not landed

    try:
        checked = validate_charges(
            load, source=source, relative_path=relative_path, key=key, max_failure_ratio=max_failure_ratio,
            sink=write,
        )  # fmt: skip
        if isinstance(checked, FileLanding):
            writer.discard()
            return checked
        started = time.perf_counter()
        parts = writer.commit()
    except BaseException:
        writer.discard()
        raise
    failpoint("landing.part-written")  # crash tests: parts in the lake, not yet in the state file
    landed_billed = sum(p.billed_cost for p in parts)
    if (
        not costs_match(landed_billed, checked.books.billed_loaded)
        or sum(p.rows for p in parts) != checked.books.rows_loaded
    ):
        raise ReconciliationError(f"{relative_path}: lake parts do not add up to the loaded rows and cost")
    seconds = {**checked.seconds}
    seconds["write"] += time.perf_counter() - started
    return FileLanding(
        source, relative_path, key, "landed", checked.books, parts, checked.failures, seconds=seconds
    )
