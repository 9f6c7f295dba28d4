"""Each alert rule kind on a tiny hand-worked dataset: it fires at its threshold, not on the safe side of it.

Every test runs the real flow with only the rule under test (delivered to the run's log) and reads the alerts
it opened from the published `finops.alerts`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")

AS_OF = date(2024, 9, 30)


def opened(tmp_path: Path, files: dict[str, list[dict[str, Any]]], pos: list[dict[str, Any]], rules: str,
           **project: Any) -> list[tuple[Any, ...]]:  # fmt: skip
    """Run the flow with only `rules` configured; the open alerts as (key, severity, value, threshold)."""
    config = make_project(tmp_path, files, pos, extra_toml=f"[alerts]\n{rules}", **project)
    outcome = run_flow(config, as_of=AS_OF)
    return query(
        outcome.published_path,
        "select alert_key, severity, value, threshold from finops.alerts where status = 'open' order by alert_key",
    )


def cost(day: str, amount: str, **values: Any) -> dict[str, Any]:
    return charge(day, BilledCost=amount, EffectiveCost=amount, **values)


def test_untagged_spend_ratio_and_amount_per_provider_and_billing_account(tmp_path: Path) -> None:
    files = {
        "a.csv": [
            # 25.00 untagged of 75.00 + 25.00 = 25 % (at the limit); 25.00 (at the amount limit)
            cost("2024-09-10", "75.00", BillingAccountId="A-1", Tags={"po": "PO-1"}),
            cost("2024-09-11", "25.00", BillingAccountId="A-1"),
            # B-1: 24.00 untagged of 100.00 = 24 %, 24.00: below both
            cost("2024-09-10", "76.00", BillingAccountId="B-1", Tags={"po": "PO-1"}),
            cost("2024-09-11", "24.00", BillingAccountId="B-1"),
            # C-1: an unknown PO counts as no valid PO: 25.00 of 100.00 = 25 %
            cost("2024-09-10", "75.00", BillingAccountId="C-1", Tags={"po": "PO-1"}),
            cost("2024-09-11", "25.00", BillingAccountId="C-1", Tags={"po": "PO-404"}),
            # D-1: 50.00 untagged on Aug 31 is outside the 30 days to Sep 30 (Sep 1–30): 0 of 50.00
            cost("2024-08-31", "50.00", BillingAccountId="D-1"),
            cost("2024-09-01", "50.00", BillingAccountId="D-1", Tags={"po": "PO-1"}),
        ]
    }
    rules = '[[alerts.rules]]\nkind = "untagged_spend"\nratio_max = 0.25\namount_max = 25.0\n'
    assert opened(tmp_path, files, [po("PO-1")], rules) == [
        ("untagged_spend:AWS/A-1/USD:-:0.25", "warning", 0.25, 0.25),
        ("untagged_spend:AWS/A-1/USD:-:amount=25", "warning", 25.0, 25.0),
        ("untagged_spend:AWS/C-1/USD:-:0.25", "warning", 0.25, 0.25),
        ("untagged_spend:AWS/C-1/USD:-:amount=25", "warning", 25.0, 25.0),
    ]


def test_untagged_spend_by_service_with_the_config_limit_and_a_minimum_amount(tmp_path: Path) -> None:
    files = {
        "a.csv": [
            # EC2: 10.00 untagged of 40.00 = 25 % ≥ untagged_ratio_max 0.25 and 10.00 ≥ min_amount 10
            cost("2024-09-10", "30.00", Tags={"po": "PO-1"}),
            cost("2024-09-10", "10.00"),
            # S3: 9.00 of 9.00 = 100 %, but 9.00 < min_amount 10: no alert
            cost("2024-09-10", "9.00", ServiceName="Amazon Simple Storage Service"),
        ]
    }
    rules = (
        'untagged_ratio_max = 0.25\n[[alerts.rules]]\nkind = "untagged_spend"\n'
        'scope = ["provider_name", "service_name"]\nmin_amount = 10.0\n'
    )
    assert opened(tmp_path, files, [po("PO-1")], rules) == [
        ("untagged_spend:AWS/Amazon Elastic Compute Cloud/USD:-:0.25", "warning", 0.25, 0.25),
    ]


def test_po_burn_one_alert_at_the_highest_threshold_reached(tmp_path: Path) -> None:
    files = {
        "a.csv": [
            cost("2024-09-10", "80.00", Tags={"po": "PO-A"}),  # 80 / 100 = 80 %: the 80 % alert
            cost("2024-09-10", "49.00", Tags={"po": "PO-B"}),  # 49 %: none
            cost("2024-09-10", "100.00", Tags={"po": "PO-C"}),  # 100 %: the 100 % alert, critical
        ]
    }
    pos = [po(n, vendor_id="V-1", total_amount="100.00") for n in ("PO-A", "PO-B", "PO-C")]
    config = make_project(tmp_path, files, pos, extra_toml='[alerts]\n[[alerts.rules]]\nkind = "po_burn"\n')
    outcome = run_flow(config, as_of=AS_OF)
    found = query(
        outcome.published_path,
        "select alert_key, status, severity, value, threshold from finops.alerts order by alert_key",
    )
    # the rungs below the highest, crossed the same night, are on record as superseded (never sent)
    assert found == [
        ("po_burn:PO-A:V-1:0.5", "superseded", "info", 0.8, 0.5),
        ("po_burn:PO-A:V-1:0.8", "open", "warning", 0.8, 0.8),
        ("po_burn:PO-C:V-1:0.5", "superseded", "info", 1.0, 0.5),
        ("po_burn:PO-C:V-1:0.8", "superseded", "warning", 1.0, 0.8),
        ("po_burn:PO-C:V-1:1", "open", "critical", 1.0, 1.0),
    ]
    sent = query(outcome.published_path, "select alert_key from finops.alert_notifications order by 1")
    assert sent == [("po_burn:PO-A:V-1:0.8",), ("po_burn:PO-C:V-1:1",)]


def test_po_exhaustion_before_valid_to_and_within_n_days(tmp_path: Path) -> None:
    # Both POs: 30.00 of 100.00 in the 30 days to Sep 30 → 1.00 a day; 70.00 left → 70 days → Sep 30 + 70 = Dec 9
    files = {
        "a.csv": [
            cost("2024-09-15", "30.00", Tags={"po": "PO-A"}),
            cost("2024-09-15", "30.00", Tags={"po": "PO-B"}),
        ]
    }
    pos = [
        po("PO-A", vendor_id="V-1", valid_to="2024-12-09"),  # runs out on its last valid day: alert
        po("PO-B", vendor_id="V-1", valid_to="2024-12-08"),  # expires the day before it would run out: none
    ]
    rules = (
        '[[alerts.rules]]\nkind = "po_exhaustion"\n'
        '[[alerts.rules]]\nkind = "po_exhaustion"\nname = "within_70"\nwithin_days = 70\n'
        '[[alerts.rules]]\nkind = "po_exhaustion"\nname = "within_69"\nwithin_days = 69\n'
    )
    assert opened(tmp_path, files, pos, rules) == [
        ("po_exhaustion:PO-A:V-1:valid_to", "warning", 70.0, None),
        ("within_70:PO-A:V-1:70d", "warning", 70.0, 70.0),
        ("within_70:PO-B:V-1:70d", "warning", 70.0, 70.0),
    ]


def test_burn_acceleration_short_window_against_long_window(tmp_path: Path) -> None:
    # short = 5 days (Sep 26–30), long = 20 days (Sep 11–30), factor 2
    files = {
        "a.csv": [
            # PO-A: long 20 + 20 = 40 → 2.00/day; short 20 → 4.00/day: × 2.0, alert
            cost("2024-09-11", "20.00", Tags={"po": "PO-A"}),
            cost("2024-09-30", "20.00", Tags={"po": "PO-A"}),
            # PO-B: long 21 + 19 = 40 → 2.00/day; short 19 → 3.80/day: × 1.9, none
            cost("2024-09-11", "21.00", Tags={"po": "PO-B"}),
            cost("2024-09-30", "19.00", Tags={"po": "PO-B"}),
            # PO-C: first charge Sep 12, younger than the long window: not compared (else 30/5 ÷ 40/20 = × 3)
            cost("2024-09-12", "10.00", Tags={"po": "PO-C"}),
            cost("2024-09-30", "30.00", Tags={"po": "PO-C"}),
        ]
    }
    pos = [po(n, vendor_id="V-1", total_amount="1000.00") for n in ("PO-A", "PO-B", "PO-C")]
    rules = '[[alerts.rules]]\nkind = "burn_acceleration"\nshort_days = 5\nlong_days = 20\nfactor = 2.0\n'
    assert opened(tmp_path, files, pos, rules) == [("burn_acceleration:PO-A:V-1:2", "warning", 2.0, 2.0)]


def test_commitment_utilization_below_the_floor(tmp_path: Path) -> None:
    def used(commitment: str, status: str, amount: str) -> dict[str, Any]:
        return charge("2024-09-10", BilledCost="0", EffectiveCost=amount, CommitmentDiscountId=commitment,
                      CommitmentDiscountStatus=status, CommitmentDiscountType="Reserved Instance")  # fmt: skip

    files = {
        "a.csv": [
            used("ri-x", "Used", "8.00"),  # 8 / (8 + 2) = 80 %: at the floor, no alert
            used("ri-x", "Unused", "2.00"),
            used("ri-y", "Used", "3.00"),  # 3 / (3 + 1) = 75 %: below
            used("ri-y", "Unused", "1.00"),
        ]
    }
    rules = '[[alerts.rules]]\nkind = "commitment_utilization"\nfloor = 0.8\n'
    assert opened(tmp_path, files, [po("PO-1")], rules) == [
        ("commitment_utilization:ri-y:-:0.8", "warning", 0.75, 0.8)
    ]


def test_invoice_over_po(tmp_path: Path) -> None:
    def invoice(number: str, day: str, amount: str) -> dict[str, Any]:
        return {"invoice_number": number, "vendor_id": "V-1", "po_number": "PO-1", "invoice_date": day,
                "currency": "USD", "amount": amount}  # fmt: skip

    # PO total 100.00, tolerance max(0.01, 1 % × 100.00) = 1.00: invoiced to date 60 → 101 (over by 1.00,
    # within the tolerance: matched) → 103 (over by 3.00: over_po)
    invoices = [invoice("INV-1", "2024-09-01", "60.00"), invoice("INV-2", "2024-09-02", "41.00"),
                invoice("INV-3", "2024-09-03", "2.00")]  # fmt: skip
    rules = '[[alerts.rules]]\nkind = "invoice_over_po"\n'
    found = opened(tmp_path, {"a.csv": [charge()]}, [po("PO-1", vendor_id="V-1")], rules,
                   erp_tables={"invoices": invoices})  # fmt: skip
    assert found == [("invoice_over_po:INV-3:V-1:over_po", "warning", 3.0, 1.0)]


def test_validation_failures_per_file(tmp_path: Path) -> None:
    files = {
        "a.csv": [cost("2024-09-10", "oops"), charge(), charge(), charge()],  # 1 of 4 quarantined = 25 %
        "b.csv": [cost("2024-09-10", "oops"), charge(), charge(), charge(), charge()],  # 1 of 5 = 20 %
    }
    rules = '[[alerts.rules]]\nkind = "validation_failures"\nmax_ratio = 0.25\n'
    assert opened(tmp_path, files, [po("PO-1")], rules) == [
        ("validation_failures:test/a.csv:-:0.25", "warning", 0.25, 0.25)
    ]
