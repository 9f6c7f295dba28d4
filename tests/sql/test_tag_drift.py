"""tag_drift: resources whose PO allocation was lost, changed or became invalid (hand-worked), and its rule."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _c(resource: str, day: str, cost: str, po_number: str | None = None) -> dict:
    tags = {"po": po_number} if po_number else None
    return charge(day, ResourceId=resource, Tags=tags, BilledCost=cost, EffectiveCost=cost)


CHARGES = [
    _c("i-1", "2024-03-01", "1.00", "PO-1"), _c("i-1", "2024-03-02", "1.00", "PO-1"),
    _c("i-1", "2024-03-03", "4.00"), _c("i-1", "2024-03-04", "6.00"),  # lost its tag: 10 since Mar 3
    _c("i-2", "2024-03-01", "1.00", "PO-1"), _c("i-2", "2024-03-02", "7.00", "PO-2"),  # changed: 7 since Mar 2
    _c("i-3", "2024-03-01", "1.00", "PO-1"),
    _c("i-3", "2024-03-02", "2.00", "PO-3"), _c("i-3", "2024-03-03", "3.00", "PO-3"),  # cancelled PO: 5
    _c("i-4", "2024-03-01", "1.00"), _c("i-4", "2024-03-02", "1.00", "PO-1"),  # gained a PO: no drift
    _c("i-5", "2024-03-01", "1.00", "PO-1"), _c("i-5", "2024-03-02", "1.00"),
    _c("i-5", "2024-03-03", "1.00", "PO-1"),  # lost it for a day and got it back: no drift now
    _c("i-6", "2024-03-01", "5.00", "PO-1"), _c("i-6", "2024-03-01", "1.00"),  # mostly PO-1 that day
    _c("i-6", "2024-03-02", "3.00"),  # lost: 3 since Mar 2 (Mar 1's untagged 1.00 came before)
]  # fmt: skip
POS = [po("PO-1"), po("PO-2"), po("PO-3", status="cancelled")]


def test_lost_changed_and_invalid_allocations_with_the_spend_since(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"a.csv": CHARGES}, POS)
    outcome = run_flow(config, as_of=date(2024, 3, 31))
    found = query(
        outcome.published_path,
        "select resource_id, drift, po_number_before, po_number_now, po_reason_now, drifted_on, billed_cost_since, "
        "charge_days_since from finops.tag_drift order by resource_id",
    )
    d = date
    assert found == [
        ("i-1", "lost", "PO-1", None, "no_po_tag", d(2024, 3, 3), 10.0, 2),
        ("i-2", "changed", "PO-1", "PO-2", "tag", d(2024, 3, 2), 7.0, 1),
        ("i-3", "became_invalid", "PO-1", "PO-3", "cancelled", d(2024, 3, 2), 5.0, 2),
        ("i-6", "lost", "PO-1", None, "no_po_tag", d(2024, 3, 2), 3.0, 1),
    ]
    alerts = query(
        outcome.published_path,
        "select title from finops.alerts where rule_kind = 'tag_drift' order by title",
    )
    assert alerts == [
        ("i-1 lost its PO tag on 2024-03-03",),
        ("i-2 moved to another PO on 2024-03-02",),
        ("i-3 moved to an invalid PO on 2024-03-02",),
        ("i-6 lost its PO tag on 2024-03-02",),
    ]


def test_the_rule_alerts_from_its_minimum(tmp_path: Path) -> None:
    rules = '[alerts]\n[[alerts.rules]]\nkind = "tag_drift"\nmin_amount = 5.0\n'
    config = make_project(tmp_path, {"a.csv": CHARGES}, POS, extra_toml=rules)
    outcome = run_flow(config, as_of=date(2024, 3, 31))
    alerts = query(
        outcome.published_path,
        "select scope_resource, value from (select json_extract_string(scope, '$.resource_id') as scope_resource, "
        "value from finops.alerts where rule_kind = 'tag_drift') order by 1",
    )
    assert alerts == [("i-1", 10.0), ("i-2", 7.0), ("i-3", 5.0)]  # i-6's 3.00 is under 5
