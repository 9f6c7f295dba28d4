"""Kept partials (warehouse/partials.py): a night that changes one billing period reads only that period for
`duplicate_charges`, and every published table equals a from-scratch run on the same inputs.

Expected duplicates are worked by hand from the rows below: a copy is the same charge line in another file.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from support import charge, make_project, po, query, run_flow, write_csv

pytestmark = pytest.mark.usefixtures("prefect_harness")

# What differs between two runs by design: run ids, timestamps, the run log and the alert log.
RUN_SPECIFIC_TABLES = {
    "runs", "run_files", "quarantine", "alerts", "alert_notifications", "restatements",
    "billing_period_history", "billing_period_history_latest",
}  # fmt: skip
RUN_SPECIFIC_COLUMNS = {"x_run_id", "run_id", "published_at", "seen_run_id", "seen_at"}

SEP_1 = charge("2024-09-01", ResourceId="vm-1", BilledCost="1.00", EffectiveCost="1.00")
SEP_2 = charge("2024-09-02", ResourceId="vm-2", BilledCost="2.00", EffectiveCost="2.00")
OCT_3 = charge("2024-10-01", ResourceId="vm-3", BilledCost="3.00", EffectiveCost="3.00")
OCT_4 = charge("2024-10-02", ResourceId="vm-4", BilledCost="4.00", EffectiveCost="4.00")
OCT_3_RESTATED = charge("2024-10-01", ResourceId="vm-3", BilledCost="3.50", EffectiveCost="3.50")


def snapshot(database: Path) -> dict[str, list[tuple[object, ...]]]:
    tables = [name for (name,) in query(database, "select table_name from information_schema.tables")]
    assert {"duplicate_charges", "data_quality", "tag_key_inventory", "charges_daily"} <= set(tables)
    result = {}
    for table in tables:
        if table in RUN_SPECIFIC_TABLES:
            continue
        columns = [
            name
            for (name,) in query(
                database,
                "select column_name from information_schema.columns where table_name = ? order by ordinal_position",
                [table],
            )
            if name not in RUN_SPECIFIC_COLUMNS
        ]
        selected = ", ".join(f'"{c}"' for c in columns)
        result[table] = sorted(query(database, f'select {selected} from "{table}"'), key=repr)
    return result


def duplicates(database: Path) -> list[tuple[object, ...]]:
    return query(
        database,
        "select billing_period, resource_id, copies, files, source_files, billed_cost_in_extra_copies "
        "from duplicate_charges order by billing_period, resource_id",
    )


def partitions(state: Path) -> dict[str, str]:
    rows = query(
        state, "select partition, run_id from partial_partitions where model = 'duplicate_charge_groups'"
    )
    return {str(p).rsplit("/", 1)[-1]: str(r) for p, r in rows}


def recomputed(state: Path, run_id: str) -> tuple[object, ...]:
    rows = query(
        state,
        "select partitions, partitions_changed, partitions_read, charge_keys_recomputed from run_models "
        "where run_id = ? and model = 'duplicate_charge_groups'",
        [run_id],
    )
    assert len(rows) == 1
    return rows[0]


def test_one_changed_billing_period_recomputes_only_that_period(tmp_path: Path) -> None:
    files = {
        "sep.csv": [SEP_1, SEP_2],
        "oct.csv": [OCT_3, OCT_4],
        "overlap.csv": [SEP_1, OCT_3],  # a second export repeating a line of each month
    }
    config = make_project(tmp_path / "night", files, [po("PO-1")])
    state = tmp_path / "night" / "out" / "state.duckdb"
    first = run_flow(config, as_of=date(2024, 10, 31))
    assert duplicates(first.published_path) == [
        ("2024-09", "vm-1", 2, 2, ["overlap.csv", "sep.csv"], 1.0),
        ("2024-10", "vm-3", 2, 2, ["oct.csv", "overlap.csv"], 3.0),
    ]
    assert recomputed(state, first.run_id) == (2, 2, 2, 2)  # a new state: both partitions computed
    assert partitions(state) == {
        "billing_period=2024-09": first.run_id,
        "billing_period=2024-10": first.run_id,
    }

    # October is re-delivered (vm-3 restated: no longer the overlap's copy) and a new file repeats vm-4
    write_csv(tmp_path / "night" / "focus" / "oct.csv", [OCT_3_RESTATED, OCT_4])
    write_csv(tmp_path / "night" / "focus" / "oct-again.csv", [OCT_4])
    second = run_flow(config, as_of=date(2024, 10, 31))
    assert duplicates(second.published_path) == [
        ("2024-09", "vm-1", 2, 2, ["overlap.csv", "sep.csv"], 1.0),
        ("2024-10", "vm-4", 2, 2, ["oct-again.csv", "oct.csv"], 4.0),
    ]
    # September's partial was kept, not recomputed: 2 partitions, 1 changed, 1 read, 1 charge key
    assert recomputed(state, second.run_id) == (2, 1, 1, 1)
    assert partitions(state) == {
        "billing_period=2024-09": first.run_id,
        "billing_period=2024-10": second.run_id,
    }

    # the same inputs, from scratch
    shutil.copytree(tmp_path / "night" / "focus", tmp_path / "scratch" / "focus")
    scratch_config = make_project(tmp_path / "scratch", {}, [po("PO-1")])
    scratch = run_flow(scratch_config, as_of=date(2024, 10, 31))
    assert recomputed(tmp_path / "scratch" / "out" / "state.duckdb", scratch.run_id) == (2, 2, 2, 2)
    assert snapshot(second.published_path) == snapshot(scratch.published_path)
    # data_quality reads the landed charges, not the `charges` view: its flags are the view's x_quality_flags
    from_view = query(
        second.published_path,
        "select ProviderName, x_billing_period, flag, count(*), sum(BilledCost) "
        "from (select *, unnest(x_quality_flags) as flag from charges) group by all order by all",
    )
    assert from_view  # SEP/OCT rows carry no ListCost: missing_list_cost
    assert (
        query(
            second.published_path,
            "select provider_name, billing_period, quality_flag, charge_count, billed_cost "
            "from data_quality order by all",
        )
        == from_view
    )


def test_a_copy_billed_in_another_period_is_found_and_kept_up_to_date(tmp_path: Path) -> None:
    # The same charge (30 September) in two files: one bills it in September, the other in October's period,
    # so the copies land in different partitions; the charge key (AWS, 2024-09) ties them together.
    late = charge("2024-09-30", ResourceId="vm-late", BilledCost="6.00", EffectiveCost="6.00")
    late_in_october = {
        **late,
        "BillingPeriodStart": "2024-10-01T00:00:00Z",
        "BillingPeriodEnd": "2024-11-01T00:00:00Z",
    }
    files = {"sep.csv": [SEP_1, late], "oct.csv": [OCT_3, late_in_october]}
    config = make_project(tmp_path / "night", files, [po("PO-1")])
    state = tmp_path / "night" / "out" / "state.duckdb"
    first = run_flow(config, as_of=date(2024, 10, 31))
    assert [(r[1], r[2], r[4], r[5]) for r in duplicates(first.published_path)] == [
        ("vm-late", 2, ["oct.csv", "sep.csv"], 6.0)
    ]
    # October re-delivered without the late line: the September copy is alone again. October's partition held
    # the September key, so September is read too (both keys recomputed).
    write_csv(tmp_path / "night" / "focus" / "oct.csv", [OCT_3, OCT_4])
    second = run_flow(config, as_of=date(2024, 10, 31))
    assert duplicates(second.published_path) == []
    assert recomputed(state, second.run_id) == (2, 1, 2, 2)

    shutil.copytree(tmp_path / "night" / "focus", tmp_path / "scratch" / "focus")
    scratch = run_flow(make_project(tmp_path / "scratch", {}, [po("PO-1")]), as_of=date(2024, 10, 31))
    assert snapshot(second.published_path) == snapshot(scratch.published_path)
