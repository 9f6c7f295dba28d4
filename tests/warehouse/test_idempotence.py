"""Idempotence and restatement: the same night twice gives the same tables; a changed file replaces its
billing period and only that period; a removed file takes its rows with it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import charge, make_project, po, query, run_flow, write_csv

# Every published table and view but the run log (its run ids and timestamps differ by design)
RUN_LOG = {"runs", "run_files"}

AUGUST = [
    charge("2024-08-05", ResourceId="a1", BilledCost="10.00", EffectiveCost="10.00", Tags={"po": "PO-1"}),
    charge("2024-08-06", ResourceId="a2", BilledCost="5.00", EffectiveCost="4.00"),
]
SEPTEMBER = [
    charge("2024-09-05", ResourceId="s1", BilledCost="7.00", EffectiveCost="7.00", Tags={"po": "PO-1"}),
    charge("2024-09-06", ResourceId="s2", BilledCost="3.00", EffectiveCost="3.00"),
    charge("2024-09-07", ResourceId="s3", BilledCost="1.00", EffectiveCost="1.00"),
]


def snapshot(database: Path) -> dict[str, list[tuple[object, ...]]]:
    tables = [name for (name,) in query(database, "select table_name from information_schema.tables")]
    assert {"charges", "tag_coverage", "po_burn", "commitment_coverage"} <= set(tables)
    return {
        table: sorted(query(database, f"select * from {table}"), key=repr)
        for table in tables
        if table not in RUN_LOG
    }


def lake_files(config: Path) -> dict[str, int]:
    lake = config.parent / "out" / "lake"
    return {p.relative_to(lake).as_posix(): p.stat().st_mtime_ns for p in lake.rglob("*.parquet")}


@pytest.mark.usefixtures("prefect_harness")
def test_same_night_twice_gives_identical_tables_and_reads_nothing(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"aug.csv": AUGUST, "sep.csv": SEPTEMBER}, [po("PO-1")])
    first = run_flow(config)
    before, parts_before = snapshot(first.published_path), lake_files(config)
    published_bytes = first.published_path.read_bytes()
    second = run_flow(config)
    assert snapshot(second.published_path) == before
    assert lake_files(config) == parts_before  # no part rewritten
    # nothing new: no data work, the publication is left as it was, the run is recorded as unchanged
    assert second.unchanged and "model" not in second.stages
    assert second.published_path.read_bytes() == published_bytes
    state = tmp_path / "out" / "state.duckdb"
    run = query(
        state,
        "select status, files_landed, files_unchanged, rows_read from runs where run_id = ?",
        [second.run_id],
    )
    assert run == [("unchanged", 0, 2, 0)]
    assert query(second.published_path, "select count(*), sum(BilledCost) from charges") == [(5, 26.0)]

    # a new as_of is new work, even with the same inputs
    third = run_flow(config, as_of=date(2024, 9, 6))
    assert not third.unchanged
    assert query(third.published_path, "select count(distinct as_of) from po_burn") == [(2,)]


@pytest.mark.usefixtures("prefect_harness")
def test_restated_period_replaces_only_that_period(tmp_path: Path) -> None:
    no_retention = "lake_retention_hours = 0"  # superseded parts go at once (the default keeps them 24 h)
    config = make_project(
        tmp_path, {"aug.csv": AUGUST, "sep.csv": SEPTEMBER}, [po("PO-1")], warehouse_toml=no_retention
    )
    first = run_flow(config)
    august_parts = {k: v for k, v in lake_files(config).items() if "billing_period=2024-08" in k}
    august_rows = query(
        first.published_path, "select * from charges where x_billing_period = '2024-08' order by ResourceId"
    )

    # The provider restates September: s1 is re-priced, s3 disappears.
    restated = [
        charge("2024-09-05", ResourceId="s1", BilledCost="7.50", EffectiveCost="7.50", Tags={"po": "PO-1"}),
        charge("2024-09-06", ResourceId="s2", BilledCost="3.00", EffectiveCost="3.00"),
    ]
    write_csv(tmp_path / "focus" / "sep.csv", restated)
    second = run_flow(config)

    db = second.published_path
    assert (
        query(db, "select * from charges where x_billing_period = '2024-08' order by ResourceId")
        == august_rows
    )
    assert {k: v for k, v in lake_files(config).items() if "billing_period=2024-08" in k} == august_parts
    september = query(
        db,
        "select ResourceId, BilledCost from charges where x_billing_period = '2024-09' order by ResourceId",
    )
    assert september == [("s1", 7.50), ("s2", 3.00)]  # replaced, not appended
    # PO-1 consumed: 10.00 (Aug) + 7.50 (Sep, restated) = 17.50, as of the new last charge day (09-06); the
    # first run's row (as of 09-07, 10.00 + 7.00) stays as history: what we knew then.
    assert query(
        db, "select as_of::varchar, consumed_amount from po_burn where po_number = 'PO-1' order by 1"
    ) == [
        ("2024-09-06", 17.50),
        ("2024-09-07", 17.00),
    ]
    assert second.summary.run["files_landed"] == 1 and second.summary.run["files_unchanged"] == 1
    # exactly one part per partition: the old September part is gone
    assert sorted(k.split("/")[2] for k in lake_files(config)) == [
        "billing_period=2024-08",
        "billing_period=2024-09",
    ]


@pytest.mark.usefixtures("prefect_harness")
def test_removed_file_takes_its_rows_with_it(tmp_path: Path) -> None:
    config = make_project(
        tmp_path,
        {"aug.csv": AUGUST, "sep.csv": SEPTEMBER},
        [po("PO-1")],
        warehouse_toml="lake_retention_hours = 0",
    )
    run_flow(config)
    (tmp_path / "focus" / "aug.csv").unlink()
    outcome = run_flow(config)
    assert query(outcome.published_path, "select count(*), sum(BilledCost) from charges") == [(3, 11.0)]
    assert outcome.summary.run["files_removed"] == 1
    assert [k for k in lake_files(config) if "2024-08" in k] == []
