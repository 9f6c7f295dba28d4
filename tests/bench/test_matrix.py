"""`finrecon bench matrix` at a tiny scale: a row per case, each case's files as the issue lists them (counted
here with DuckDB, independently of the generator's own record), and the lower bound's three marts."""

from __future__ import annotations

import glob
import math
from pathlib import Path
from typing import Any

import duckdb
import pytest
from rich.console import Console

from finrecon.bench import matrix
from finrecon.bench.generate import generate
from finrecon.bench.measure import lower_bound_sql

SCALE = 1e-5  # 10M → 100 rows, 30M → 300, 100M → 1,000


def _file_rows(path: str, fmt: str) -> int:
    reader = f"read_parquet('{path}')" if fmt == "parquet" else f"read_csv('{path}')"
    return int(duckdb.sql(f"select count(*) from {reader}").fetchall()[0][0])


def test_matrix_rows_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_measure(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
        if args[0] == "lower-bound":
            return {"seconds": 1.0, "peak_rss": 1 << 20, "result": [], "wall": 1.5}
        stages = {"land": [2.0, 1 << 20], "model": [1.0, 1 << 20], "publish": [0.5, 1 << 20]}
        return {"seconds": 9.0, "peak_rss": 2 << 20, "stages": stages, "rows": 0, "wall": 10.0}

    monkeypatch.setattr(matrix, "_measure", fake_measure)
    results = matrix.run_matrix(list(matrix.CASES), SCALE, tmp_path, 2, None, Console(quiet=True))

    expected = {  # case: (rows, files, format) at SCALE
        "parquet-10x1M": (100, 10, "parquet"),
        "parquet-3x3.33M": (100, 3, "parquet"),
        "parquet-1x10M": (100, 1, "parquet"),
        "csvgz-10x1M": (100, 10, "csv.gz"),
        "csvgz-3x3.33M": (100, 3, "csv.gz"),
        "csvgz-1x10M": (100, 1, "csv.gz"),
        "parquet-1x30M": (300, 1, "parquet"),
        "parquet-20x5M": (1_000, 20, "parquet"),
    }
    assert [r["case"] for r in results] == list(expected)
    for result in results:
        rows, files, fmt = expected[result["case"]]
        assert (result["rows"], result["files"], result["fmt"]) == (rows, files, fmt)
        found = sorted(glob.glob(f"{result['data_dir']}/focus/*.{fmt}"))
        assert len(found) == files
        counts = [_file_rows(path, fmt) for path in found]
        assert sum(counts) == rows
        assert max(counts) == math.ceil(rows / files)  # every file full but the last
        assert result["data_work_ratio"] == pytest.approx(3.5)
        assert result["whole_run_ratio"] == pytest.approx(10.0)
    # one JSON record of the run, and reuse: the same case again does not regenerate its files
    assert len(list(tmp_path.glob("matrix-*.json"))) == 1
    first = Path(results[0]["data_dir"]) / "focus"
    stamps = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    matrix.run_matrix(matrix.select_cases("parquet-10x1M"), SCALE, tmp_path, 2, None, Console(quiet=True))
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == stamps


def test_record_appends_to_its_own_table(tmp_path: Path) -> None:
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## Later\n\ntext\n")
    matrix.record(doc, ["| row 1 |"])
    matrix.record(doc, ["| row 2 |"])
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## Later\n\ntext\n")
    assert text.index("| row 1 |") < text.index("| row 2 |")
    assert text.count(matrix.MATRIX_HEADING) == 1


def test_select_cases_refuses_unknown_names() -> None:
    assert [c.name for c in matrix.select_cases("parquet-1x30M,csvgz-1x10M")] == [
        "csvgz-1x10M",
        "parquet-1x30M",
    ]
    with pytest.raises(ValueError, match="unknown case"):
        matrix.select_cases("parquet-1x11M")


def test_layouts_hold_the_same_rows_and_the_lower_bound_has_three_marts(tmp_path: Path) -> None:
    one = generate(tmp_path / "one", 3_000, "parquet", 3_000, layout="mixed")
    split = generate(tmp_path / "split", 3_000, "parquet", 700, layout="per_provider")
    assert len(one.files) == 1 and len(split.files) == 6  # 1,000 per provider in files of ≤ 700
    query = "select ProviderName, round(sum(BilledCost), 4), count(*) from read_parquet('{}/focus/*.parquet') group by 1 order by 1"
    assert (
        duckdb.sql(query.format(tmp_path / "one")).fetchall()
        == duckdb.sql(query.format(tmp_path / "split")).fetchall()
    )
    coverage_rows, _, po_rows, _, commitments, _ = duckdb.sql(
        lower_bound_sql(tmp_path / "one", "parquet")
    ).fetchall()[0]
    assert coverage_rows > 0 and po_rows > 0
    distinct = (
        "select count(distinct (ProviderName, CommitmentDiscountId)) from read_parquet('{}/focus/*.parquet') "
        "where CommitmentDiscountId is not null"
    )
    assert commitments == duckdb.sql(distinct.format(tmp_path / "one")).fetchall()[0][0] > 0  # one month
