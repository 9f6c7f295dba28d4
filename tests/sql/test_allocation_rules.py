"""Allocation rules beyond the tag: resource groups (Azure's `x_ResourceGroupName` in FOCUS files), rule order,
and the reason every allocated charge names (hand-worked)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")

RULES = """
[[allocation_rules]]
name = "platform-rgs"
po = "PO-2000"
match = { ProviderName = "Microsoft", ResourceGroup = "rg-platform-*" }

[[allocation_rules]]
name = "all-of-sub-9"
po = "PO-2001"
match = { SubAccountId = "sub-9" }
"""


def test_resource_group_rules_allocate_untagged_charges_in_order(tmp_path: Path) -> None:
    def azure(cost: str, group: str | None, sub: str, tags: str | None = None) -> dict[str, object]:
        return charge("2024-09-02", ProviderName="Microsoft", BilledCost=cost, EffectiveCost=cost, SubAccountId=sub,
                      x_ResourceGroupName=group, Tags=tags)  # fmt: skip

    rows = [
        azure("1.00", "rg-platform-eu", "sub-9"),  # both rules match: the first wins
        azure("2.00", "rg-platform-us", "sub-1"),
        azure("4.00", "rg-data", "sub-9"),  # only the subscription rule
        azure("8.00", "rg-data", "sub-1"),  # no rule: untagged
        azure("16.00", "rg-platform-eu", "sub-9", '{"po": "PO-2002"}'),  # a PO tag beats every rule
    ]
    pos = [po("PO-2000"), po("PO-2001"), po("PO-2002")]
    config = make_project(tmp_path, {"azure.csv": rows}, pos, extra_toml=RULES)
    outcome = run_flow(config, as_of=date(2024, 9, 30))
    allocated = query(
        outcome.published_path,
        "select BilledCost, x_resource_group, x_po_number, x_po_reason from finops.charges order by BilledCost",
    )
    assert allocated == [
        (1.0, "rg-platform-eu", "PO-2000", "rule:platform-rgs"),
        (2.0, "rg-platform-us", "PO-2000", "rule:platform-rgs"),
        (4.0, "rg-data", "PO-2001", "rule:all-of-sub-9"),
        (8.0, "rg-data", None, "no_po_tag"),
        (16.0, "rg-platform-eu", "PO-2002", "tag"),
    ]
    burn = query(outcome.published_path, "select po_number, consumed_amount from finops.po_burn order by 1")
    assert burn == [("PO-2000", 3.0), ("PO-2001", 4.0), ("PO-2002", 16.0)]
