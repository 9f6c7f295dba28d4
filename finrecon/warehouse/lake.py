"""The Parquet lake of typed charges, partitioned by provider and billing period.

Each input file lands as one Parquet part per partition it touches, named after the file and the run, written
to a temporary name and renamed into place, so a part is either whole or absent. Which parts are current is
recorded in the state file; parts it does not list (a killed run's leftovers, a replaced version) are removed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

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


def write_parts(charges: pl.DataFrame, lake_root: Path, file_key: str, run_id: str) -> list[Part]:
    """Write `charges` (typed) as one part per provider × billing period; return what was written."""
    # Partition keys from the distinct (provider, period start) pairs: a handful, not one per row.
    period_start = pl.coalesce("BillingPeriodStart", "ChargePeriodStart").alias("__period_start")
    pairs = charges.select("ProviderName", period_start).unique()
    if pairs.height == 1:  # the usual case: one file, one partition, no copy
        key = pairs.select(provider_slug_expr("ProviderName"), pl.col("__period_start").dt.strftime("%Y-%m"))
        groups: list[tuple[tuple[object, object], pl.DataFrame]] = [
            ((key.item(0, 0), key.item(0, 1)), charges)
        ]
    else:
        keyed = charges.with_columns(
            provider_slug_expr("ProviderName").alias("__provider"),
            period_start.dt.strftime("%Y-%m").alias("__period"),
        )
        groups = [
            (key, group.drop("__provider", "__period"))
            for key, group in keyed.group_by("__provider", "__period", maintain_order=True)
        ]
    parts = []
    for (provider, period), group in groups:
        relative = (
            Path(CHARGES_DIR)
            / f"provider={provider}"
            / f"billing_period={period}"
            / f"{file_key}__{run_id}.parquet"
        )
        target = lake_root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        rows = group
        # lz4: about 30 % faster to write than zstd for these frames, files about 30 % larger
        rows.write_parquet(temporary, compression="lz4", statistics=True)
        os.replace(temporary, target)
        parts.append(
            Part(
                path=relative.as_posix(),
                provider=str(provider),
                billing_period=str(period),
                rows=rows.height,
                billed_cost=float(rows.get_column("BilledCost").sum()),
                effective_cost=float(rows.get_column("EffectiveCost").sum()),
            )
        )
    return parts


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
