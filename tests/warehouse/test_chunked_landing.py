"""Chunked landing: an input many times larger than `runner.chunk_rows` lands chunk by chunk with the same books,
lake rows and marts as in one piece; a failure or a kill after some chunks leaves nothing of the input behind.

Expected figures are computed here from the rows the tests write (Python sums over the generated values), never
read back from the pipeline.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import charge, make_project, po, query, run_flow, write_csv

from finrecon.core.failpoints import ENV
from finrecon.models.config import DEFAULT_CONFIG_TOML, PROJECT_ROOT

RUN_LOG = {"runs", "run_files"}
ROWS = 2_000
CHUNK = 100
BAD_ROWS = {150, 1_234, 1_999}  # 1-based rows whose BilledCost does not parse


def big_rows() -> list[dict[str, object]]:
    """ROWS charges over two months, three POs; a description with a quoted newline every 97 rows (so some
    straddle a chunk's cut), BAD_ROWS with an unparseable cost."""
    rows = []
    for n in range(1, ROWS + 1):
        day = f"2024-08-{1 + n % 28:02d}" if n % 2 else f"2024-09-{1 + n % 28:02d}"
        cost = f"{(n % 37) * 0.25 + 0.01:.2f}"
        rows.append(
            charge(
                day,
                ResourceId=f"r-{n % 50}",
                BilledCost="abc" if n in BAD_ROWS else cost,
                EffectiveCost=cost,
                Tags={"po": f"PO-{n % 3 + 1}"} if n % 5 else None,
                ChargeDescription=f"line one\nline two of {n}" if n % 97 == 0 else f"charge {n}",
            )
        )
    return rows


def expected_totals() -> tuple[int, float, dict[str, float]]:
    """(rows loaded, Σ BilledCost loaded, Σ BilledCost per PO of the loaded rows), from the generator's values."""
    loaded = [r for n, r in enumerate(big_rows(), start=1) if n not in BAD_ROWS]
    by_po: dict[str, float] = {}
    for row in loaded:
        if row["Tags"]:
            number = str(row["Tags"]).split('"')[3]
            by_po[number] = by_po.get(number, 0.0) + float(str(row["BilledCost"]))
    return len(loaded), sum(float(str(r["BilledCost"])) for r in loaded), by_po


def chunked_project(root: Path, name: str, chunk_rows: int = CHUNK) -> Path:
    pos = [po(f"PO-{i}", total_amount="100000.00") for i in (1, 2, 3)]
    config = make_project(root, {}, pos, extra_toml=f"[runner]\nchunk_rows = {chunk_rows}\nmax_workers = 1")
    write_csv(root / "focus" / name, big_rows())
    return config


def lake_parts(root: Path) -> list[Path]:
    return sorted((root / "out" / "lake").rglob("*.parquet"))


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("name", ["big.csv.gz", "big.parquet"])
def test_an_input_twenty_chunks_long_lands_with_exact_books_parts_and_marts(
    tmp_path: Path, name: str
) -> None:
    config = chunked_project(tmp_path, "big.csv.gz")
    if name.endswith(".parquet"):  # the same rows as a Parquet file (text columns) of several row groups
        source = tmp_path / "focus" / "big.csv.gz"
        with gzip.open(source, "rt", encoding="utf-8", newline="") as handle:
            import csv

            records = list(csv.DictReader(handle))
        table = pa.Table.from_pylist([{k: (v or None) for k, v in r.items()} for r in records])
        pq.write_table(table, tmp_path / "focus" / name, row_group_size=300)
        source.unlink()
    result = run_flow(config)
    rows, billed, by_po = expected_totals()

    state = tmp_path / "out" / "state.duckdb"
    books = query(state, "select rows_read, rows_loaded, rows_quarantined, billed_loaded from input_files")
    assert books[0][:3] == (ROWS, rows, len(BAD_ROWS))
    assert books[0][3] == pytest.approx(billed, abs=1e-6)
    quarantined = query(state, "select distinct row_number from quarantine order by 1")
    assert {n for (n,) in quarantined} == BAD_ROWS  # numbered across chunks, not within one

    parts = lake_parts(tmp_path)
    months = {p.parent.name for p in parts}
    assert months == {"billing_period=2024-08", "billing_period=2024-09"}
    # written chunk by chunk (a part per chunk and month), never the whole input at once
    assert len(parts) >= ROWS // CHUNK // 2
    assert max(pq.ParquetFile(p).metadata.num_rows for p in parts) <= 3 * CHUNK  # a CSV chunk is cut by bytes
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in parts) == rows

    published = result.published_path
    assert query(published, "select count(*), round(sum(BilledCost), 6) from charges") == [
        (rows, round(billed, 6))
    ]
    multiline = query(
        published, "select count(*) from charges where ChargeDescription like 'line one\nline two%'"
    )
    assert multiline == [(ROWS // 97,)]
    burn = dict(query(published, "select po_number, consumed_amount from po_burn_latest"))
    assert burn.keys() == by_po.keys()
    for number, consumed in by_po.items():
        assert burn[number] == pytest.approx(consumed, abs=1e-6)


def bundled_config(root: Path, chunk_rows: int) -> Path:
    text = DEFAULT_CONFIG_TOML.replace(
        '"data/fixtures', f'"{(PROJECT_ROOT / "data" / "fixtures").as_posix()}'
    )
    text = text.replace('"data/finops.duckdb"', '"out/finops.duckdb"').replace('"data/lake"', '"out/lake"')
    text = text.replace('"data/state.duckdb"', '"out/state.duckdb"')
    parsed = tomllib.loads(text)
    runner = "[runner]" in text
    text = (
        text.replace("[runner]", f"[runner]\nchunk_rows = {chunk_rows}")
        if runner
        else (text + f"\n[runner]\nchunk_rows = {chunk_rows}\n")
    )
    assert tomllib.loads(text)["runner"]["chunk_rows"] == chunk_rows and parsed
    root.mkdir(parents=True)
    config = root / "finrecon.toml"
    config.write_text(text)
    return config


def comparable(database: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every published table but the run log, without run ids and wall-clock columns; rows sorted."""
    columns: dict[str, list[str]] = {}
    for table, column, type_ in query(
        database,
        "select table_name, column_name, data_type from information_schema.columns "
        "order by table_name, ordinal_position",
    ):
        varying = (
            type_ == "TIMESTAMP WITH TIME ZONE" or column.endswith("run_id") or column == "notification_id"
        )
        if table not in RUN_LOG and not varying:
            columns.setdefault(table, []).append(f'"{column}"')
    return {
        table: sorted(query(database, f"select {', '.join(names)} from {table}"), key=repr)
        for table, names in columns.items()
    }


def same_row(got: tuple[object, ...], expected: tuple[object, ...]) -> bool:
    """Equal, floats to 1e-9 relative: sums over differently chunked parts add in another order, which moves the
    last binary digit (0.8509021135162492 against ...493), never a cent."""
    if len(got) != len(expected):
        return False
    for a, b in zip(got, expected, strict=True):
        if isinstance(a, float) and isinstance(b, float):
            if a != pytest.approx(b, rel=1e-9, abs=1e-12):
                return False
        elif a != b:
            return False
    return True


@pytest.mark.usefixtures("prefect_harness")
def test_the_bundled_fixtures_publish_the_same_marts_in_chunks_of_forty_rows_as_whole(tmp_path: Path) -> None:
    whole = run_flow(bundled_config(tmp_path / "whole", 10_000_000)).published_path
    chunked = run_flow(bundled_config(tmp_path / "chunked", 40)).published_path
    expected, got = comparable(whole), comparable(chunked)
    assert {"tag_coverage", "po_burn", "commitment_utilization", "charges"} <= set(expected)
    assert got.keys() == expected.keys()
    for table in expected:
        assert len(got[table]) == len(expected[table]), table
        for got_row, expected_row in zip(got[table], expected[table], strict=True):
            assert same_row(got_row, expected_row), (table, got_row, expected_row)
    # the chunked run really was chunked: a lake part per chunk, against one per file and month for the whole run
    assert len(lake_parts(tmp_path / "chunked")) > 3 * len(lake_parts(tmp_path / "whole"))


@pytest.mark.usefixtures("prefect_harness")
def test_a_gzip_stream_cut_after_some_chunks_fails_alone_and_its_previous_version_stands(
    tmp_path: Path,
) -> None:
    config = chunked_project(tmp_path, "big.csv.gz")
    other = [charge("2024-09-03", ResourceId="o1", BilledCost="4.00", EffectiveCost="4.00")]
    write_csv(tmp_path / "focus" / "other.csv", other)
    first = run_flow(config)
    rows, billed, _ = expected_totals()
    before = query(first.published_path, "select count(*), round(sum(BilledCost), 6) from charges")
    assert before == [(rows + 1, round(billed + 4.0, 6))]
    parts_before = lake_parts(tmp_path)

    path = tmp_path / "focus" / "big.csv.gz"
    whole = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(whole)[: len(gzip.compress(whole)) * 3 // 4])  # ordinary size, cut at 75 %
    write_csv(
        tmp_path / "focus" / "other.csv", [*other, charge("2024-09-04", ResourceId="o2", BilledCost="6.00")]
    )
    second = run_flow(config)

    assert [f["file_path"] for f in second.failed_files] == ["big.csv.gz"]
    error = str(second.failed_files[0]["error"])
    assert error.startswith("big.csv.gz: ") and "gzip stream is truncated" in error
    # the cut file's previous good version stands; the other file's change is published
    after = query(second.published_path, "select count(*), round(sum(BilledCost), 6) from charges")
    assert after == [(rows + 2, round(billed + 10.0, 6))]
    new_parts = set(lake_parts(tmp_path)) - set(parts_before)
    assert all("big" not in str(p) for p in new_parts) and len(new_parts) == 1  # other.csv's new part only
    assert list((tmp_path / "out" / "lake").rglob("*.tmp")) == []


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_killed_mid_input_publishes_nothing_partial_and_the_next_lands_the_input_once(
    tmp_path: Path,
) -> None:
    import prefect.settings

    config = chunked_project(tmp_path, "big.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINRECON_")}
    env |= {ENV: "landing.chunk-written", "PREFECT_API_URL": str(prefect.settings.PREFECT_API_URL.value())}
    command = [sys.executable, "-m", "finrecon", "run", "--config", str(config)]
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    # killed after the first chunk (it holds both months): two temporary parts, no part in place, nothing published
    assert len(list((tmp_path / "out" / "lake").rglob("*.tmp"))) == 2
    assert lake_parts(tmp_path) == []
    assert not (tmp_path / "out" / "finops.duckdb").exists()

    rerun = run_flow(config)
    rows, billed, _ = expected_totals()
    assert rerun.failed_files == []
    assert query(rerun.published_path, "select count(*), round(sum(BilledCost), 6) from charges") == [
        (rows, round(billed, 6))
    ]
    assert query(
        rerun.published_path, "select count(*) from (select distinct x_source_row from charges)"
    ) == [(rows,)]
    assert sum(pq.ParquetFile(p).metadata.num_rows for p in lake_parts(tmp_path)) == rows
    assert list((tmp_path / "out" / "lake").rglob("*.tmp")) == []
