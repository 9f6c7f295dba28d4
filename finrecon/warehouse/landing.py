"""Land one input file: read as text, validate (Pandera), quarantine failures, type, write lake parts.

Every step keeps the books: rows and cost read = loaded + quarantined, checked here for each file before
anything is recorded, so a file can never silently lose rows or money.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from finrecon.connectors._files import delimiter_hint
from finrecon.connectors.focus_files import read_focus_file
from finrecon.models import charges as charge_models
from finrecon.models.quarantine import FileLevelError, empty_failures, missing_columns_error, split_valid
from finrecon.ops.failpoints import failpoint
from finrecon.warehouse.lake import Part, write_parts

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
    source: str, relative: str, key: str, err: FileLevelError, raw: pl.DataFrame | None
) -> FileLanding:
    rows = raw.height if raw is not None else 0
    billed = _cost_sum(raw, "BilledCost") if raw is not None else 0.0
    effective = _cost_sum(raw, "EffectiveCost") if raw is not None else 0.0
    books = Books(rows, 0, rows, billed, 0.0, billed, effective, 0.0, effective)
    return FileLanding(source, relative, key, "failed", books, failures=err.record(), error=err.message)


def failed_landing(
    source: str, relative_path: str, message: str, key: str | None = None, *, located: bool = False
) -> FileLanding:
    """An input that could not be processed at all (nothing known of its rows).

    The message is prefixed with the input's path, unless `located`: it already names where (a bucket key, a
    table), as every remote connector's error does.
    """
    err = FileLevelError(None, "processable", message if located else f"{relative_path}: {message}")
    return _failed(source, relative_path, key or file_key(source, relative_path), err, None)


@dataclass(frozen=True)
class Validated:
    """A readable file split into valid rows (text) and quarantine records, with its books."""

    raw: pl.DataFrame
    valid: pl.DataFrame
    failures: pl.DataFrame
    books: Books
    seconds: dict[str, float]


def validate_focus_file(
    path: Path, *, source: str, relative_path: str, null_values: list[str], max_failure_ratio: float
) -> Validated | FileLanding:
    """Read and validate one FOCUS file; a file-level problem gives a `failed` landing, never an exception."""
    return validate_charges(
        lambda: read_focus_file(path, null_values),
        source=source,
        relative_path=relative_path,
        key=file_key(source, relative_path),
        max_failure_ratio=max_failure_ratio,
    )


def validate_charges(
    load: Callable[[], pl.DataFrame], *, source: str, relative_path: str, key: str, max_failure_ratio: float
) -> Validated | FileLanding:
    """Validate the FOCUS-named frame `load` returns (it may raise FileLevelError for a file-level problem)."""
    raw: pl.DataFrame | None = None
    try:
        started = time.perf_counter()
        raw = load()
        read_done = time.perf_counter()
        raw = charge_models.prepare(raw)
        missing = charge_models.missing_required(raw.columns)
        if missing:
            raise missing_columns_error(relative_path, missing, delimiter_hint(raw.columns))
        split = split_valid(raw, charge_models.charge_schema(raw.columns))
    except FileLevelError as err:
        if raw is None and err.rows is not None:
            raw = charge_models.prepare(err.rows)  # unreadable as a whole, but its rows could be counted
        return _failed(source, relative_path, key, err, raw)
    bad_rows = split.quarantined_rows
    books = Books(
        rows_read=raw.height,
        rows_loaded=split.valid.height,
        rows_quarantined=bad_rows.height,
        billed_read=_cost_sum(raw, "BilledCost"),
        billed_loaded=_cost_sum(split.valid, "BilledCost"),
        billed_quarantined=_cost_sum(bad_rows, "BilledCost"),
        effective_read=_cost_sum(raw, "EffectiveCost"),
        effective_loaded=_cost_sum(split.valid, "EffectiveCost"),
        effective_quarantined=_cost_sum(bad_rows, "EffectiveCost"),
    )
    balance(books, relative_path)
    validated = time.perf_counter()
    seconds = {"read": read_done - started, "validate": validated - read_done}
    if raw.height and bad_rows.height / raw.height > max_failure_ratio:
        message = (
            f"{relative_path}: {bad_rows.height} of {raw.height} rows failed validation, above "
            f"validation.max_failure_ratio={max_failure_ratio}; the file is held back"
        )
        held = Books(books.rows_read, 0, books.rows_read, books.billed_read, 0.0, books.billed_read,
                     books.effective_read, 0.0, books.effective_read)  # fmt: skip
        return FileLanding(source, relative_path, key, "failed", held, failures=split.failures, error=message)
    return Validated(raw, split.valid, split.failures, books, seconds)


def land_focus_file(
    path: Path,
    *,
    source: str,
    relative_path: str,
    null_values: list[str],
    lake_root: Path,
    run_id: str,
    max_failure_ratio: float,
) -> FileLanding:
    """Validate one FOCUS file, type its valid rows and write them as lake parts (one per partition)."""
    return land_charges(
        lambda: read_focus_file(path, null_values),
        source=source,
        relative_path=relative_path,
        key=file_key(source, relative_path),
        source_kind="focus_files",
        lake_root=lake_root,
        run_id=run_id,
        max_failure_ratio=max_failure_ratio,
    )


def land_charges(
    load: Callable[[], pl.DataFrame],
    *,
    source: str,
    relative_path: str,
    key: str,
    source_kind: str,
    lake_root: Path,
    run_id: str,
    max_failure_ratio: float,
) -> FileLanding:
    """Validate the FOCUS-named frame `load` returns, type its valid rows and write them as lake parts.

    `key` identifies the input in the state file: a file, or (for remote exports) a whole billing period, whose
    parts are replaced together. Rows keep their own `x_source_file` when the input spans several files.
    """
    checked = validate_charges(
        load, source=source, relative_path=relative_path, key=key, max_failure_ratio=max_failure_ratio
    )
    if isinstance(checked, FileLanding):
        return checked
    started = time.perf_counter()
    lineage = [pl.lit(source_kind).alias("x_source"), pl.lit(run_id).alias("x_run_id")]
    if "x_source_file" not in checked.valid.columns:
        lineage.append(pl.lit(relative_path).alias("x_source_file"))
    lineage.append(_resource_group(checked.valid.columns).alias(RESOURCE_GROUP_COLUMN))
    typed = charge_models.type_charges(checked.valid).with_columns(lineage)
    charge_models.canonical_schema().validate(typed)
    parts = write_parts(typed, lake_root, key, run_id) if typed.height else []
    failpoint("landing.part-written")  # crash tests: parts in the lake, not yet in the state file
    landed_billed = sum(p.billed_cost for p in parts)
    if (
        not costs_match(landed_billed, checked.books.billed_loaded)
        or sum(p.rows for p in parts) != checked.books.rows_loaded
    ):
        raise ReconciliationError(f"{relative_path}: lake parts do not add up to the loaded rows and cost")
    seconds = {**checked.seconds, "write": time.perf_counter() - started}
    return FileLanding(
        source, relative_path, key, "landed", checked.books, parts, checked.failures, seconds=seconds
    )
