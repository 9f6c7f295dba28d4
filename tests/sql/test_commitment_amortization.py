"""The amortisation check: billed vs amortised per commitment, with hand-worked figures."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _purchase(commitment: str, billed: str) -> dict[str, object]:
    return charge("2024-09-01", ChargeCategory="Purchase", BilledCost=billed, EffectiveCost="0",
                  CommitmentDiscountId=commitment, CommitmentDiscountStatus=None)  # fmt: skip


def _usage(commitment: str, day: str, effective: str, status: str = "Used") -> dict[str, object]:
    return charge(day, BilledCost="0", EffectiveCost=effective, CommitmentDiscountId=commitment,
                  CommitmentDiscountStatus=status)  # fmt: skip


def test_commitments_are_balanced_not_yet_amortised_or_over_amortised(tmp_path: Path) -> None:
    rows = [
        _purchase("c-whole-term", "12"),
        _usage("c-whole-term", "2024-09-02", "5"),
        _usage("c-whole-term", "2024-09-03", "4"),
        _usage("c-whole-term", "2024-09-04", "3", status="Unused"),
        _purchase("c-upfront", "10"),
        _usage("c-upfront", "2024-09-02", "4"),
        _purchase("c-broken", "2"),
        _usage("c-broken", "2024-09-02", "3"),
    ]
    outcome = run_flow(make_project(tmp_path, {"a.csv": rows}, [po("PO-1")]), as_of=date(2024, 9, 30))
    found = query(
        outcome.published_path,
        "select commitment_discount_id, billed_cost, amortized_cost, unamortized_cost, amortization_status "
        "from finops.commitment_amortization order by 1",
    )
    # by hand: 12 vs 5 + 4 + 3; 10 vs 4; 2 vs 3
    assert found == [
        ("c-broken", 2.0, 3.0, -1.0, "over_amortized"),
        ("c-upfront", 10.0, 4.0, 6.0, "not_yet_amortized"),
        ("c-whole-term", 12.0, 12.0, 0.0, "balanced"),
    ]
