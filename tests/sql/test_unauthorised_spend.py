"""unauthorised_spend: spend outside a valid PO per PO, reason and currency, and its alert rule (hand-worked)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _on(po_number: str, day: str, cost: str) -> dict:
    return charge(day, Tags={"po": po_number}, BilledCost=cost, EffectiveCost=cost)


POS = [
    po("PO-1", vendor_id="V-1", total_amount="100.00"),  # valid all 2024
    po("PO-2", vendor_id="V-2", total_amount="50.00", status="cancelled"),
    po("PO-3", vendor_id="V-1", total_amount="500.00", valid_from="2024-03-01", valid_to="2024-03-31"),
]
CHARGES = [
    # PO-1: running total 60, 90, 115, 125 → beyond its 100 by 15 on Mar 3 and 10 more on Mar 4
    _on("PO-1", "2024-03-01", "60.00"),
    _on("PO-1", "2024-03-02", "30.00"),
    _on("PO-1", "2024-03-03", "25.00"),
    _on("PO-1", "2024-03-04", "10.00"),
    # PO-2 is cancelled: 7 + 3
    _on("PO-2", "2024-03-05", "7.00"),
    _on("PO-2", "2024-03-06", "3.00"),
    # PO-3 is valid in March only: 4 before, 5 inside (authorised), 6 after
    _on("PO-3", "2024-02-15", "4.00"),
    _on("PO-3", "2024-03-10", "5.00"),
    _on("PO-3", "2024-04-02", "6.00"),
    # a PO the ERP does not know, and an untagged charge (untagged is coverage's business, not this table's)
    _on("PO-9", "2024-03-07", "2.50"),
    charge("2024-03-08", BilledCost="1.00"),
]


def test_spend_outside_a_valid_po_by_po_reason_and_currency_and_its_alerts(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"a.csv": CHARGES}, POS)
    outcome = run_flow(config, as_of=date(2024, 4, 30))
    found = query(
        outcome.published_path,
        "select po_number, vendor_id, reason, currency, amount, charge_days, first_charge_date, last_charge_date "
        "from finops.unauthorised_spend order by all",
    )
    d = date
    assert found == [
        ("PO-1", "V-1", "over_amount", "USD", 25.0, 2, d(2024, 3, 3), d(2024, 3, 4)),
        ("PO-2", "V-2", "cancelled", "USD", 10.0, 2, d(2024, 3, 5), d(2024, 3, 6)),
        ("PO-3", "V-1", "expired", "USD", 6.0, 1, d(2024, 4, 2), d(2024, 4, 2)),
        ("PO-3", "V-1", "not_yet_valid", "USD", 4.0, 1, d(2024, 2, 15), d(2024, 2, 15)),
        # an unknown PO is named as the charges name it: its tag value normalised (x_po_number)
        ("PO9", None, "unknown_po", "USD", 2.5, 1, d(2024, 3, 7), d(2024, 3, 7)),
    ]
    alerts = query(
        outcome.published_path,
        "select po_number, severity, title from finops.alerts "
        "where rule_kind = 'unauthorised_spend' and status = 'open' order by po_number, title",
    )
    assert alerts == [
        ("PO-1", "critical", "PO-1: 25.00 USD consumed beyond the PO's total amount"),
        ("PO-2", "warning", "PO-2: 10.00 USD charged to a cancelled PO"),
        ("PO-3", "warning", "PO-3: 4.00 USD charged before the PO's validity began"),
        ("PO-3", "warning", "PO-3: 6.00 USD charged after the PO's validity ended"),
        ("PO9", "warning", "PO9: 2.50 USD charged to a PO number the ERP does not know"),
    ]


def test_the_rule_keeps_to_its_reasons_and_minimum(tmp_path: Path) -> None:
    rules = '[alerts]\n[[alerts.rules]]\nkind = "unauthorised_spend"\nreasons = ["over_amount", "expired"]\nmin_amount = 6.0\n'
    config = make_project(tmp_path, {"a.csv": CHARGES}, POS, extra_toml=rules)
    outcome = run_flow(config, as_of=date(2024, 4, 30))
    alerts = query(
        outcome.published_path,
        "select po_number, value from finops.alerts where rule_kind = 'unauthorised_spend' order by po_number",
    )
    # over_amount 25 ≥ 6 and expired 6 ≥ 6 (at the minimum); cancelled is not a listed reason
    assert alerts == [("PO-1", 25.0), ("PO-3", 6.0)]
