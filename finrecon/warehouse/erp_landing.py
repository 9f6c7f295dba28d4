"""Validate the ERP extracts (PO headers, lines, FX rates) into typed frames plus quarantine records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandera.polars as pa
import polars as pl

from finrecon.connectors.erp_files import read_erp_file
from finrecon.models import erp as erp_models
from finrecon.models.config import Config
from finrecon.models.quarantine import FileLevelError, missing_columns_error, split_valid
from finrecon.warehouse.landing import Books, FileLanding, file_key

ERP_SOURCE = "erp"


@dataclass(frozen=True)
class ErpExtract:
    """One validated ERP table and the landing record of the file it came from."""

    table: str
    frame: pl.DataFrame
    landing: FileLanding


@dataclass(frozen=True)
class ErpData:
    po_headers: pl.DataFrame
    po_lines: pl.DataFrame
    fx_rates: pl.DataFrame
    landings: list[FileLanding] = field(default_factory=list)


def _empty(schema: pa.DataFrameSchema, typer: Callable[[pl.DataFrame], pl.DataFrame]) -> pl.DataFrame:
    columns = {name: pl.Series(name, [], dtype=pl.Utf8) for name in schema.columns}
    return typer(pl.DataFrame(columns))


def load_extract(
    table: str,
    path: Path | None,
    display_path: str,
    schema: pa.DataFrameSchema,
    typer: Callable[[pl.DataFrame], pl.DataFrame],
) -> ErpExtract:
    """Read, validate and type one extract; a missing required column fails the file, naming it."""
    key = file_key(ERP_SOURCE, table)
    if path is None:
        books = Books()
        return ErpExtract(
            table, _empty(schema, typer), FileLanding(ERP_SOURCE, display_path, key, "landed", books)
        )
    raw: pl.DataFrame | None = None
    try:
        raw = read_erp_file(path)
        required = [name for name, column in schema.columns.items() if column.required]
        missing = [name for name in required if name not in raw.columns]
        if missing:
            raise missing_columns_error(display_path, missing)
        split = split_valid(raw, schema)
    except FileLevelError as err:
        rows = raw.height if raw is not None else 0
        landing = FileLanding(ERP_SOURCE, display_path, key, "failed", Books(rows, 0, rows), failures=err.record(),
                              error=err.message)  # fmt: skip
        return ErpExtract(table, _empty(schema, typer), landing)
    books = Books(raw.height, split.valid.height, split.quarantined_rows.height)
    landing = FileLanding(ERP_SOURCE, display_path, key, "landed", books, failures=split.failures)
    return ErpExtract(table, typer(split.valid), landing)


def load_erp(config: Config) -> ErpData:
    """All ERP extracts named in the config, validated."""
    erp = config.erp
    mapping = erp_models.status_map(erp.status_map)

    specs = [
        ("po_headers", erp.po_headers, erp_models.po_headers_schema(mapping),
         lambda raw: erp_models.type_po_headers(raw, mapping)),
        ("po_lines", erp.po_lines, erp_models.po_lines_schema(), erp_models.type_po_lines),
        ("fx_rates", erp.fx_rates, erp_models.fx_rates_schema(), erp_models.type_fx_rates),
    ]  # fmt: skip
    extracts = {}
    for table, path, schema, typer in specs:
        resolved = config.resolve(path) if path is not None else None
        display = path.as_posix() if path is not None else f"<no {table} configured>"
        extracts[table] = load_extract(table, resolved, display, schema, typer)
    landings = [extracts[table].landing for table, path, _, _ in specs if path is not None]
    headers, lines, rates = extracts["po_headers"], extracts["po_lines"], extracts["fx_rates"]
    return ErpData(headers.frame, lines.frame, rates.frame, landings)
