"""po_kpis: procurement KPIs from the ERP's PO dates, by month and vendor (hand-worked)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _po(
    number: str, vendor: str, requested: str, approved: str | None, issued: str | None, **extra: str
) -> dict:
    return po(number, vendor_id=vendor, vendor_name=f"Vendor {vendor}", requested_at=requested,
              approved_at=approved, issued_at=issued, po_type=extra.pop("po_type", "standard"), **extra)  # fmt: skip


def test_approval_issue_times_emergency_rate_and_open_po_age(tmp_path: Path) -> None:
    pos = [
        _po("PO-A", "V-1", "2024-01-01", "2024-01-03", "2024-01-05"),
        _po("PO-B", "V-1", "2024-01-10", "2024-01-11", "2024-01-20", po_type="emergency"),
        _po("PO-C", "V-1", "2024-02-01", "2024-02-02", "2024-02-04", status="closed"),
        _po("PO-D", "V-2", "2024-01-15", "2024-01-15", "2024-01-16"),
    ]
    config = make_project(tmp_path, {"a.csv": [charge("2024-02-01")]}, pos)
    outcome = run_flow(config, as_of=date(2024, 3, 1))
    found = query(
        outcome.published_path,
        "select kpi_month, vendor_id, po_count, avg_approval_days, avg_issue_days, max_issue_days, "
        "emergency_po_count, emergency_po_rate, open_po_count, avg_open_po_age_days, max_open_po_age_days "
        "from finops.po_kpis order by 1, 2",
    )
    # by hand (2024 is a leap year): approval 2 and 1 days, issue 4 and 10; open since Jan 5 → 56 days, Jan 20 → 41;
    # PO-D approved the day it was requested, issued the next day, open since Jan 16 → 45 days
    assert found == [
        ("2024-01", "V-1", 2, 1.5, 7.0, 10, 1, 0.5, 2, 48.5, 56),
        ("2024-01", "V-2", 1, 0.0, 1.0, 1, 0, 0.0, 1, 45.0, 45),
        ("2024-02", "V-1", 1, 1.0, 3.0, 3, 0, 0.0, 0, None, None),
    ]


def _invoice(number: str, vendor: str, po_number: str | None, day: str, amount: str) -> dict:
    return {"invoice_number": number, "vendor_id": vendor, "po_number": po_number, "invoice_date": day,
            "currency": "USD", "amount": amount}  # fmt: skip


def _receipt(number: str, po_number: str, day: str, amount: str) -> dict:
    return {"receipt_number": number, "po_number": po_number, "receipt_date": day, "amount": amount}


def test_po_to_receipt_time_and_invoice_auto_match_rate(tmp_path: Path) -> None:
    pos = [
        _po("PO-A", "V-1", "2024-01-01", "2024-01-02", "2024-01-05"),
        _po("PO-B", "V-1", "2024-01-10", "2024-01-11", "2024-01-20"),
        _po("PO-C", "V-1", "2024-01-15", "2024-01-15", "2024-01-16"),
        _po("PO-D", "V-2", "2024-02-01", "2024-02-02", "2024-02-03"),
    ]
    receipts = [
        _receipt("GR-1", "PO-A", "2024-01-25", "10.00"),
        _receipt("GR-2", "PO-A", "2024-02-10", "20.00"),
        _receipt("GR-3", "PO-B", "2024-02-19", "10.00"),
        _receipt("GR-4", "PO-D", "2024-02-03", "5.00"),
    ]
    invoices = [
        _invoice("INV-1", "V-1", "PO-A", "2024-02-05", "10.00"),  # 10 ≤ PO 100 and ≤ received 30: matched
        _invoice("INV-2", "V-1", "PO-C", "2024-02-15", "10.00"),  # PO-C has no receipt
        _invoice("INV-3", "V-1", None, "2024-03-01", "10.00"),  # no PO reference
        _invoice("INV-4", "V-2", "PO-D", "2024-02-20", "5.00"),  # 5 against PO 100 and received 5: matched
    ]
    config = make_project(tmp_path, {"a.csv": [charge("2024-02-01")]}, pos,
                          erp_tables={"invoices": invoices, "goods_receipts": receipts})  # fmt: skip
    outcome = run_flow(config, as_of=date(2024, 3, 31))
    found = query(
        outcome.published_path,
        "select kpi_month, vendor_id, vendor_name, po_count, received_po_count, avg_po_to_receipt_days, "
        "max_po_to_receipt_days, invoice_count, auto_matched_invoice_count, invoice_auto_match_rate "
        "from finops.po_kpis order by 1, 2",
    )
    # PO → first receipt: PO-A Jan 5 → Jan 25 = 20 days, PO-B Jan 20 → Feb 19 = 30, PO-C none; PO-D same day.
    # Invoices by invoice month: Feb V-1 INV-1 matched, INV-2 missing_receipt → 1 of 2; Mar V-1 INV-3 → 0 of 1.
    assert found == [
        ("2024-01", "V-1", "Vendor V-1", 3, 2, 25.0, 30, 0, 0, None),
        ("2024-02", "V-1", "Vendor V-1", 0, 0, None, None, 2, 1, 0.5),
        ("2024-02", "V-2", "Vendor V-2", 1, 1, 0.0, 0, 1, 1, 1.0),
        ("2024-03", "V-1", "Vendor V-1", 0, 0, None, None, 1, 0, 0.0),
    ]


def test_po_accuracy_counts_each_invoiced_po_once_and_disputed_when_an_invoice_disagrees(
    tmp_path: Path,
) -> None:
    pos = [
        _po("PO-A", "V-1", "2024-01-01", "2024-01-02", "2024-01-05"),  # total 100 (support.po)
        _po("PO-B", "V-1", "2024-01-10", "2024-01-11", "2024-01-20"),
        _po("PO-D", "V-2", "2024-02-01", "2024-02-02", "2024-02-03"),
    ]
    receipts = [
        _receipt("GR-1", "PO-A", "2024-01-25", "100.00"),
        _receipt("GR-2", "PO-D", "2024-02-03", "5.00"),
    ]
    invoices = [
        _invoice("INV-1", "V-1", "PO-A", "2024-02-05", "10.00"),  # A to date 10 ≤ 100: agrees
        _invoice("INV-2", "V-1", "PO-B", "2024-02-06", "150.00"),  # B to date 150 > 100: over_po
        _invoice(
            "INV-3", "V-1", "PO-A", "2024-02-20", "20.00"
        ),  # A to date 30: agrees (A counted once in Feb)
        _invoice("INV-4", "V-1", "PO-A", "2024-03-01", "90.00"),  # A to date 120 > 100: over_po
        _invoice("INV-5", "V-2", "PO-D", "2024-02-20", "5.00"),  # D 5 against received 5: agrees
        _invoice(
            "INV-6", "V-2", "PO-D", "2024-03-02", "10.00"
        ),  # D to date 15 against received 5: three-way mismatch
        _invoice("INV-7", "V-2", None, "2024-03-03", "10.00"),  # no PO: not an invoiced PO
    ]
    config = make_project(tmp_path, {"a.csv": [charge("2024-02-01")]}, pos,
                          erp_tables={"invoices": invoices, "goods_receipts": receipts})  # fmt: skip
    outcome = run_flow(config, as_of=date(2024, 3, 31))
    found = query(
        outcome.published_path,
        "select kpi_month, vendor_id, invoiced_po_count, disputed_po_count, po_dispute_rate "
        "from finops.po_kpis where invoice_count > 0 order by 1, 2",
    )
    # Feb V-1: A and B invoiced, B disputed → 1 of 2; Feb V-2: D agrees → 0 of 1;
    # Mar V-1: A disputed → 1 of 1; Mar V-2: D disputed (the PO-less INV-7 is no invoiced PO) → 1 of 1
    assert found == [
        ("2024-02", "V-1", 2, 1, 0.5),
        ("2024-02", "V-2", 1, 0, 0.0),
        ("2024-03", "V-1", 1, 1, 1.0),
        ("2024-03", "V-2", 1, 1, 1.0),
    ]
