"""`finrecon export --parquet DIR`: every published table and view as Parquet, read back by polars and pyarrow."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from support import query
from typer.testing import CliRunner

from finrecon.cli import app
from finrecon.flows.bundled import bundled_config


def test_export_writes_every_table_and_view_readable_by_polars_and_pyarrow(
    bundled: Path, published: Path, tmp_path: Path
) -> None:
    out = tmp_path / "parquet"
    result = CliRunner().invoke(app, ["export", "--parquet", str(out), "--config", str(bundled)])
    assert result.exit_code == 0, result.output
    names = {
        name
        for (name,) in query(
            published,
            "select table_name from duckdb_tables() where database_name = 'finops' "
            "union select view_name from duckdb_views() where database_name = 'finops'",
        )
    }
    assert {p.stem for p in out.glob("*.parquet")} == names
    assert {"charges", "po_burn_latest", "billing_period_history_latest"} <= names
    for name in names:
        (count,) = query(published, f'select count(*) from "{name}"')[0]
        assert pl.read_parquet(out / f"{name}.parquet").height == count, name
        assert pq.read_table(out / f"{name}.parquet").num_rows == count, name
    # the charges view, read back without DuckDB: 1017 rows (942 + 17 + 51 + 7), Σ BilledCost of the four files
    charges = pl.read_parquet(out / "charges.parquet")
    assert charges.height == 1017
    assert charges["BilledCost"].sum() == pytest.approx(
        18.00663861840 + 1.97651418586 + 0.53707392473 + 15.25
    )
    burn = pq.read_table(out / "po_burn.parquet").to_pydict()
    assert sorted({d.isoformat() for d in burn["as_of"]}) == ["2024-09-15", "2024-09-30"]


def test_export_without_a_publication_says_what_to_do(tmp_path: Path) -> None:
    config = bundled_config(tmp_path)  # a valid config whose out/finops.duckdb no run has written
    result = CliRunner().invoke(app, ["export", "--parquet", str(tmp_path / "x"), "--config", str(config)])
    assert result.exit_code != 0
    assert "run `finrecon run` first" in result.output
