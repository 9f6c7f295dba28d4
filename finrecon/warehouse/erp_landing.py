"""Validate the ERP extracts (PO headers, lines, FX rates, …) into typed frames plus quarantine records; in a run,
an extract that fails is published at its last good version (warehouse/erp_versions.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pandera.polars as pa
import polars as pl

from finrecon.connectors.erp_files import read_erp_file
from finrecon.models import erp as erp_models
from finrecon.models.config import Config
from finrecon.models.quarantine import (
    ROW_COLUMN,
    FileLevelError,
    empty_failures,
    missing_columns_error,
    split_valid,
)
from finrecon.warehouse import erp_versions
from finrecon.warehouse.landing import Books, FileLanding, file_key
from finrecon.warehouse.models_runner import run_macros
from finrecon.warehouse.state import State

ERP_SOURCE = erp_versions.ERP_SOURCE


@dataclass(frozen=True)
class ErpExtract:
    """One validated ERP table and the landing record of the file it came from."""

    table: str
    frame: pl.DataFrame
    landing: FileLanding


@dataclass(frozen=True)
class ErpData:
    """Every ERP table, typed (empty when not configured), by table name; the models read it as `erp_<name>`."""

    frames: dict[str, pl.DataFrame]
    landings: list[FileLanding] = field(default_factory=list)


@dataclass(frozen=True)
class ErpTable:
    """One kind of ERP extract: its config key (`[erp] <name> = "path"`), schema, typing and cross-row check."""

    name: str
    schema: Callable[[Config], pa.DataFrameSchema]
    typer: Callable[[Config], Callable[[pl.DataFrame], pl.DataFrame]]
    cross_row_check: Callable[[Config], Callable[[pl.DataFrame], pl.DataFrame] | None] = lambda _config: None


@dataclass(frozen=True)
class ColumnMapping:
    """An extract in the ERP's own column names (`[erp.column_map.<table>]`: lower-cased source → canonical) and
    constants for canonical columns the ERP does not carry or leaves empty (`[erp.column_defaults.<table>]`).
    Applied right after reading, so validation, quarantine and typing only ever see canonical names."""

    renames: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)

    def apply(self, raw: pl.DataFrame, file_label: str) -> pl.DataFrame:
        present = {source: target for source, target in self.renames.items() if source in raw.columns}
        for source, target in present.items():
            if target in raw.columns and target not in present:
                raise FileLevelError(
                    target,
                    "column_map_conflict",
                    f"{file_label}: column {target!r} is delivered and also mapped from {source!r}",
                )
        mapped = raw.rename(present)
        return mapped.with_columns(
            pl.col(column).fill_null(value)
            if column in mapped.columns
            else pl.lit(value, pl.Utf8).alias(column)
            for column, value in self.defaults.items()
        )

    def source_of(self, column: str) -> str:
        """The column the file must carry for a canonical column (its mapped source name, else itself)."""
        return next((source for source, target in self.renames.items() if target == column), column)


def _empty(schema: pa.DataFrameSchema, typer: Callable[[pl.DataFrame], pl.DataFrame]) -> pl.DataFrame:
    columns = {name: pl.Series(name, [], dtype=pl.Utf8) for name in schema.columns}
    return typer(pl.DataFrame(columns))


def _needed_columns(raw: pl.DataFrame, schema: pa.DataFrameSchema) -> pl.DataFrame:
    """Only the columns reconciliation uses: an ERP extract may carry bank details or personal data (IBANs,
    approvers' e-mails) that must never reach the quarantine, the state file or the publication."""
    return raw.select(ROW_COLUMN, *(name for name in raw.columns if name in schema.columns))


def load_extract(
    table: str,
    path: Path | None,
    display_path: str,
    schema: pa.DataFrameSchema,
    typer: Callable[[pl.DataFrame], pl.DataFrame],
    cross_row_check: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
    columns: ColumnMapping | None = None,
    max_failure_ratio: float = 1.0,
) -> ErpExtract:
    """Read, validate and type one extract; a missing required column fails the file, naming it (as the file
    should name it, when `columns` maps it).

    `cross_row_check` returns quarantine records for valid rows that conflict with each other. An extract with
    more than `max_failure_ratio` of its rows quarantined is held back whole, like a charge file: publishing the
    few rows left would turn most charges `unknown_po` and resolve alerts for POs that still exist.
    """
    columns = columns or ColumnMapping()
    key = file_key(ERP_SOURCE, table)
    if path is None:
        books = Books()
        return ErpExtract(
            table, _empty(schema, typer), FileLanding(ERP_SOURCE, display_path, key, "landed", books)
        )
    raw: pl.DataFrame | None = None
    try:
        raw = _needed_columns(columns.apply(read_erp_file(path), display_path), schema)
        required = [name for name, column in schema.columns.items() if column.required]
        missing = [columns.source_of(name) for name in required if name not in raw.columns]
        if missing:
            raise missing_columns_error(display_path, missing)
        split = split_valid(raw, schema)
    except FileLevelError as err:
        rows = raw.height if raw is not None else 0
        landing = FileLanding(ERP_SOURCE, display_path, key, "failed", Books(rows, 0, rows), failures=err.record(),
                              error=err.message)  # fmt: skip
        return ErpExtract(table, _empty(schema, typer), landing)
    valid, failures = split.valid, split.failures
    conflicts = cross_row_check(valid) if cross_row_check is not None else empty_failures()
    if conflicts.height:
        valid = valid.filter(~pl.col(ROW_COLUMN).is_in(conflicts.get_column("row_number").implode()))
        failures = pl.concat([failures, conflicts])
    books = Books(raw.height, valid.height, raw.height - valid.height)
    if books.rows_read and books.rows_quarantined / books.rows_read > max_failure_ratio:
        message = (
            f"{display_path}: {books.rows_quarantined} of {books.rows_read} rows failed validation, above "
            f"validation.max_failure_ratio={max_failure_ratio}; the extract is held back"
        )
        landing = FileLanding(ERP_SOURCE, display_path, key, "failed", books.held_back(), failures=failures,
                              error=message)  # fmt: skip
        return ErpExtract(table, _empty(schema, typer), landing)
    landing = FileLanding(ERP_SOURCE, display_path, key, "landed", books, failures=failures)
    return ErpExtract(table, typer(valid), landing)


def po_numbers_that_collide(prefix: str | None) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Quarantine every PO whose number normalises like another's (`PO-1` and `po 1`): a charge tagged with it
    could belong to either, so neither is guessed. Uses the SQL macro, the one definition of normalisation."""

    def check(headers: pl.DataFrame) -> pl.DataFrame:
        con = duckdb.connect()
        try:
            run_macros(con)
            con.register("headers", headers.select(ROW_COLUMN, "po_number").to_arrow())
            return con.sql(
                f"""
                select {ROW_COLUMN} as row_number, 'po_number' as column_name,
                       'po_number_unique_after_normalisation' as check_name, po_number as raw_value,
                       cast(null as varchar) as source_file
                from headers
                qualify count(*) over (partition by normalize_po_number(po_number, $prefix)) > 1
                order by row_number
                """,
                params={"prefix": prefix},
            ).pl()
        finally:
            con.close()

    return check


def _status_map(config: Config) -> dict[str, erp_models.PoStatus]:
    return erp_models.status_map(config.erp.status_map)


# Every ERP extract the pipeline knows; a new one is a schema in models/erp.py, a row here and a config key.
ERP_TABLES: tuple[ErpTable, ...] = (
    ErpTable(
        "po_headers",
        lambda config: erp_models.po_headers_schema(_status_map(config)),
        lambda config: lambda raw: erp_models.type_po_headers(raw, _status_map(config)),
        lambda config: po_numbers_that_collide(config.tags.po_default_prefix),
    ),
    ErpTable(
        "po_lines", lambda _config: erp_models.po_lines_schema(), lambda _config: erp_models.type_po_lines
    ),
    ErpTable(
        "fx_rates", lambda _config: erp_models.fx_rates_schema(), lambda _config: erp_models.type_fx_rates
    ),
    ErpTable(
        "invoices", lambda _config: erp_models.invoices_schema(), lambda _config: erp_models.type_invoices
    ),
    ErpTable(
        "goods_receipts",
        lambda _config: erp_models.goods_receipts_schema(),
        lambda _config: erp_models.type_goods_receipts,
    ),
    ErpTable(
        "commitments",
        lambda _config: erp_models.commitments_schema(),
        lambda _config: erp_models.type_commitments,
    ),
    ErpTable(
        "po_cloud_mapping",
        lambda _config: erp_models.po_cloud_mapping_schema(),
        lambda _config: erp_models.type_po_cloud_mapping,
    ),
)


def _load_configured(config: Config) -> Iterator[tuple[str, ErpExtract | None]]:
    """Each ERP table with its extract, validated; None for a table the config does not name."""
    for table in ERP_TABLES:
        path = config.erp.path_of(table.name)
        if path is None:
            yield table.name, None
            continue
        yield (
            table.name,
            load_extract(
                table.name,
                config.resolve(path),
                path.as_posix(),
                table.schema(config),
                table.typer(config),
                table.cross_row_check(config),
                ColumnMapping(
                    config.erp.column_map.get(table.name, {}), config.erp.column_defaults.get(table.name, {})
                ),
                config.validation.max_failure_ratio,
            ),
        )


def _unconfigured(config: Config, name: str) -> pl.DataFrame:
    table = next(t for t in ERP_TABLES if t.name == name)
    return _empty(table.schema(config), table.typer(config))


def _assemble(
    config: Config, settle: Callable[[str, ErpExtract], tuple[pl.DataFrame, FileLanding]]
) -> ErpData:
    """Every ERP table: what `settle` makes of each configured extract, empty for the ones not configured."""
    frames: dict[str, pl.DataFrame] = {}
    landings: list[FileLanding] = []
    for name, extract in _load_configured(config):
        if extract is None:
            frames[name] = _unconfigured(config, name)
            continue
        frames[name], landing = settle(name, extract)
        landings.append(landing)
    return ErpData(frames, landings)


def load_erp(config: Config) -> ErpData:
    """All ERP extracts named in the config, validated; the ones not configured (or failed) are empty tables.

    Reads only: `finrecon validate` checks with it. A run lands with `land_erp`."""
    return _assemble(config, lambda _name, extract: (extract.frame, extract.landing))


def land_erp(config: Config, state: State, run_id: str) -> ErpData:
    """All ERP extracts for a run: each that lands becomes its table's last good version; each that fails is
    published at its last good version (recorded as standing in, so the run reports it stale), or empty, with a
    louder message, when it never landed."""

    def settle(name: str, extract: ErpExtract) -> tuple[pl.DataFrame, FileLanding]:
        landing = extract.landing
        if landing.status == "landed":
            erp_versions.keep(state, name, extract.frame, landing.file_path, run_id)
            return extract.frame, landing
        previous = erp_versions.recall(state, name)
        if previous is None:
            return extract.frame, replace(landing, error=f"{landing.error}; no earlier good {name} to keep: "
                                                         "published empty")  # fmt: skip
        erp_versions.mark_standing_in(state, name, landing.file_path, run_id)
        return previous.frame, landing

    return _assemble(config, settle)
