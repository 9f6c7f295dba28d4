"""Quality flags and duplicate detection: reported with the values left as delivered (hand-worked)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_quality_flags_and_duplicates_across_overlapping_files(tmp_path: Path) -> None:
    # every row names every column (the helper writes the first row's columns)
    no_list = charge("2024-09-01", BilledCost="1.00", EffectiveCost="1.00", ListCost=None, ContractedCost=None,
                     ResourceId="vm-1")  # fmt: skip
    rows = [
        no_list,
        charge("2024-09-02", BilledCost="5.00", EffectiveCost="5.00", ListCost="4.00", ContractedCost="4.00"),
        charge(
            "2024-09-03",
            ChargeCategory="Purchase",
            BilledCost="2.00",
            EffectiveCost="2.00",
            ListCost="2.00",
            ContractedCost=None,
            CommitmentDiscountId="ri-1",
        ),
        charge("2024-09-04", BilledCost="1.00", EffectiveCost="1.00", ListCost="3.00", ContractedCost="4.00"),
        charge("2024-09-05", BilledCost="1.00", EffectiveCost="1.00", ListCost="1.00", ContractedCost="1.00"),
    ]
    overlapping = [no_list]  # a second export that repeats the first line
    config = make_project(tmp_path, {"a.csv": rows, "b.csv": overlapping}, [po("PO-1")])
    outcome = run_flow(config, as_of=date(2024, 9, 30))

    flags = query(
        outcome.published_path,
        "select quality_flag, charge_count, billed_cost from finops.data_quality order by quality_flag",
    )
    assert flags == [
        ("commitment_purchase_with_effective_cost", 1, 2.0),
        ("list_below_contracted", 1, 1.0),
        ("missing_list_cost", 2, 2.0),  # the line and its duplicate
        ("negative_savings", 1, 5.0),
    ]
    # values are not clamped: the flagged rows keep their costs
    assert query(outcome.published_path, "select sum(BilledCost) from finops.charges") == [(11.0,)]
    duplicates = query(
        outcome.published_path,
        "select resource_id, copies, files, source_files, billed_cost_in_extra_copies from finops.duplicate_charges",
    )
    assert duplicates == [("vm-1", 2, 2, ["a.csv", "b.csv"], 1.0)]
