"""The Parquet lake of typed charges, partitioned by provider and billing period.

Each input lands as one Parquet part per partition it touches (one row group per landed chunk), named after the
input and the run, written to a temporary name and renamed into place, so a part is either whole or absent. Which parts are current is
recorded in the state file; parts it does not list (a killed run's leftovers, a replaced version) are removed.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

CHARGES_DIR = "charges"


@dataclass(frozen=True)
class Part:
    """One landed Parquet part: a file's rows in one provider × billing period partition."""

    path: str  # relative to the lake root, POSIX separators
    provider: str
    billing_period: str
    rows: int
    billed_cost: float
    effective_cost: float


def provider_slug_expr(column: str) -> pl.Expr:
    """The lake's provider partition value: lower-case, runs of other characters as '-' ("Google Cloud" →
    "google-cloud"), `unknown` when nothing is left."""
    slug = pl.col(column).str.strip_chars().str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "-")
    slug = slug.str.strip_chars("-")
    return pl.when(slug == "").then(pl.lit("unknown")).otherwise(slug)


def _partition_groups(charges: pl.DataFrame) -> list[tuple[tuple[str, str], pl.DataFrame]]:
    """`charges` split by (provider slug, billing period YYYY-MM); keys from the distinct pairs, not per row."""
    period_start = pl.coalesce("BillingPeriodStart", "ChargePeriodStart").alias("__period_start")
    pairs = charges.select("ProviderName", period_start).unique()
    if pairs.height == 1:  # the usual case: one chunk, one partition, no copy
        key = pairs.select(provider_slug_expr("ProviderName"), pl.col("__period_start").dt.strftime("%Y-%m"))
        return [((str(key.item(0, 0)), str(key.item(0, 1))), charges)]
    keyed = charges.with_columns(
        provider_slug_expr("ProviderName").alias("__provider"),
        period_start.dt.strftime("%Y-%m").alias("__period"),
    )
    return [
        ((str(key[0]), str(key[1])), group.drop("__provider", "__period"))
        for key, group in keyed.group_by("__provider", "__period", maintain_order=True)
    ]


@dataclass
class _OpenPart:
    """A part being written: its temporary file, writer and running totals."""

    part: Part
    temporary: Path
    writer: pq.ParquetWriter
    schema: pa.Schema


class PartWriter:
    """Appends typed charge chunks to one Parquet part per provider × billing period of one input.

    Each chunk becomes a row group; parts are written under temporary names and only `commit` renames them into
    place, so a part is either whole or absent and a failed or killed landing leaves nothing of itself. A chunk
    whose columns differ from its partition's open part (files of one delivery that drift) starts another part.
    """

    def __init__(self, lake_root: Path, file_key: str, run_id: str) -> None:
        self.lake_root = lake_root
        self.file_key = file_key
        self.run_id = run_id
        self._open: dict[tuple[str, str], _OpenPart] = {}
        self._closed: list[_OpenPart] = []

    def write(self, charges: pl.DataFrame) -> None:
        for key, group in _partition_groups(charges):
            table = group.to_arrow()
            current = self._open.get(key)
            if current is not None and current.schema != table.schema:
                current.writer.close()
                self._closed.append(current)
                current = None
            if current is None:
                current = self._start(key, table.schema)
                self._open[key] = current
            # lz4: about 30 % faster to write than zstd for these frames, files about 30 % larger
            current.writer.write_table(table, row_group_size=max(table.num_rows, 1))
            totals = current.part
            current.part = Part(
                totals.path,
                totals.provider,
                totals.billing_period,
                totals.rows + group.height,
                totals.billed_cost + float(group.get_column("BilledCost").sum()),
                totals.effective_cost + float(group.get_column("EffectiveCost").sum()),
            )

    def _start(self, key: tuple[str, str], schema: pa.Schema) -> _OpenPart:
        provider, period = key
        taken = sum(1 for p in [*self._closed, *self._open.values()] if p.part.provider == provider
                    and p.part.billing_period == period)  # fmt: skip
        suffix = f"__{taken}" if taken else ""
        relative = (
            Path(CHARGES_DIR)
            / f"provider={provider}"
            / f"billing_period={period}"
            / f"{self.file_key}__{self.run_id}{suffix}.parquet"
        )
        target = self.lake_root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        writer = pq.ParquetWriter(temporary, schema, compression="lz4", write_statistics=True)
        return _OpenPart(Part(relative.as_posix(), provider, period, 0, 0.0, 0.0), temporary, writer, schema)

    def _all(self) -> list[_OpenPart]:
        return [*self._closed, *self._open.values()]

    def commit(self) -> list[Part]:
        """Close every part and rename it into place; return what was written."""
        parts = self._all()
        for current in parts:
            current.writer.close()
        for current in parts:
            os.replace(current.temporary, self.lake_root / current.part.path)
        self._open, self._closed = {}, []
        return [current.part for current in parts]

    def discard(self) -> None:
        """Close and delete every temporary part: the input did not land."""
        for current in self._all():
            with contextlib.suppress(Exception):
                current.writer.close()
            current.temporary.unlink(missing_ok=True)
        self._open, self._closed = {}, []


def remove_unlisted(lake_root: Path, current: set[str]) -> list[str]:
    """Delete charge parts (and temporary files) the state does not list; return what was removed."""
    root = lake_root / CHARGES_DIR
    if not root.exists():
        return []
    removed = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.relative_to(lake_root).as_posix() not in current:
            path.unlink()
            removed.append(path.relative_to(lake_root).as_posix())
    for folder in sorted(
        (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
    ):
        if not any(folder.iterdir()):
            folder.rmdir()
    return removed
