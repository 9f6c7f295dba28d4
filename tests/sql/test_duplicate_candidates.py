"""duplicate_po_candidates and duplicate_invoice_candidates: pairs at, inside and just outside their tolerances
(hand-worked), and their alert rules."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import PO_LINE_COLUMNS, charge, make_project, po, query, run_flow, write_csv

pytestmark = pytest.mark.usefixtures("prefect_harness")

POS = [
    po("PO-A", total_amount="1000.00", valid_from="2024-01-01", valid_to="2024-06-30", parent_po_number=None),
    po("PO-B", total_amount="1000.01", valid_from="2024-06-01", valid_to="2024-12-31"),  # A: 0.01 apart, June
    po("PO-C", total_amount="1000.02", valid_from="2024-01-01", valid_to="2024-12-31"),  # B: 0.01, A: 0.02
    po("PO-D", total_amount="1000.00", valid_from="2025-01-01", valid_to="2025-12-31"),  # overlaps none
    po("PO-E", vendor_id="V-2", total_amount="1000.00"),  # another vendor
    po("PO-F", total_amount="1000.00", status="cancelled"),  # cancelled: no longer a risk
    po(
        "PO-G", vendor_id="V-2", total_amount="1000.00", parent_po_number="PO-E"
    ),  # a release of PO-E: meant alike
]
LINES = [
    {"po_number": "PO-A", "line_number": "1", "description": "EC2 compute", "quantity": "1", "unit_price": "1000",
     "amount": "1000.00"},
    {"po_number": "PO-B", "line_number": "1", "description": "EC2 Compute ", "quantity": "1", "unit_price": "1000.01",
     "amount": "1000.01"},
]  # fmt: skip
INVOICES = [
    {"invoice_number": "INV-1", "vendor_id": "V-1", "po_number": "PO-A", "invoice_date": "2024-03-01",
     "currency": "USD", "amount": "500.00"},
    {"invoice_number": "INV-2", "vendor_id": "V-1", "po_number": "PO-C", "invoice_date": "2024-03-01",
     "currency": "USD", "amount": "500.01"},  # INV-1's bill again, booked on another PO: 0.01 apart
    {"invoice_number": "INV-3", "vendor_id": "V-1", "po_number": "PO-A", "invoice_date": "2024-03-02",
     "currency": "USD", "amount": "500.00"},  # a day later
    {"invoice_number": "INV-4", "vendor_id": "V-1", "po_number": "PO-A", "invoice_date": "2024-03-01",
     "currency": "USD", "amount": "500.02"},  # 0.02 from INV-1, 0.01 from INV-2
    {"invoice_number": "INV-5", "vendor_id": "V-2", "po_number": "PO-E", "invoice_date": "2024-03-01",
     "currency": "USD", "amount": "500.00"},  # another vendor
]  # fmt: skip


def _project(tmp_path: Path, duplicates_toml: str = "") -> Path:
    config = make_project(tmp_path, {"a.csv": [charge("2024-03-01")]}, POS, erp_tables={"invoices": INVOICES},
                          erp_toml=f"[erp.duplicates]\n{duplicates_toml}")  # fmt: skip
    write_csv(tmp_path / "erp" / "po_lines.csv", LINES, PO_LINE_COLUMNS)
    return config


def test_duplicate_pos_and_invoices_at_the_default_tolerances(tmp_path: Path) -> None:
    outcome = run_flow(_project(tmp_path), as_of=date(2024, 3, 31))
    pos = query(
        outcome.published_path,
        "select po_number, other_po_number, amount_difference, overlap_from, overlap_to, "
        "round(description_similarity, 3) from finops.duplicate_po_candidates order by all",
    )
    # within 0.01 (at the tolerance) and overlapping: A–B (June; lines alike but for case and a space: 1.0 after
    # lower/trim) and B–C (June to December; C has no lines). A–C are 0.02 apart; D overlaps none; E is another
    # vendor's; F is cancelled; G is a release of E.
    assert pos == [
        ("PO-A", "PO-B", 0.01, date(2024, 6, 1), date(2024, 6, 30), 1.0),
        ("PO-B", "PO-C", 0.01, date(2024, 6, 1), date(2024, 12, 31), None),
    ]
    invoices = query(
        outcome.published_path,
        "select invoice_number, other_invoice_number, days_apart, amount_difference, same_po "
        "from finops.duplicate_invoice_candidates order by all",
    )
    # same day, within 0.01: INV-1–INV-2 (other PO) and INV-2–INV-4; INV-1–INV-4 are 0.02 apart; INV-3 a day later
    assert invoices == [("INV-1", "INV-2", 0, 0.01, False), ("INV-2", "INV-4", 0, 0.01, False)]
    alerts = query(
        outcome.published_path,
        "select rule_kind, title from finops.alerts where rule_kind like 'duplicate_%' order by all",
    )
    assert alerts == [
        ("duplicate_invoice", "INV-1 and INV-2 of V-1 may be one bill: 500.00 and 500.01 USD on 2024-03-01"),
        ("duplicate_invoice", "INV-2 and INV-4 of V-1 may be one bill: 500.01 and 500.02 USD on 2024-03-01"),
        ("duplicate_po", "PO-A and PO-B of V-1 may be one purchase: 1,000.00 and 1,000.01 USD"),
        ("duplicate_po", "PO-B and PO-C of V-1 may be one purchase: 1,000.01 and 1,000.02 USD"),
    ]


def test_wider_tolerances_take_in_the_pairs_just_outside(tmp_path: Path) -> None:
    config = _project(tmp_path, "amount_tolerance_amount = 0.02\ninvoice_days_apart = 1\n")
    outcome = run_flow(config, as_of=date(2024, 3, 31))
    pos = query(
        outcome.published_path,
        "select po_number, other_po_number from finops.duplicate_po_candidates order by all",
    )
    assert pos == [("PO-A", "PO-B"), ("PO-A", "PO-C"), ("PO-B", "PO-C")]
    invoices = query(
        outcome.published_path,
        "select invoice_number, other_invoice_number, days_apart from finops.duplicate_invoice_candidates order by all",
    )
    # every V-1 pair is now within 0.02 and a day: 1–2, 1–3 (a day), 1–4, 2–3 (a day, 0.01), 2–4, 3–4 (a day, 0.02)
    assert invoices == [
        ("INV-1", "INV-2", 0), ("INV-1", "INV-3", 1), ("INV-1", "INV-4", 0),
        ("INV-2", "INV-3", 1), ("INV-2", "INV-4", 0), ("INV-3", "INV-4", 1),
    ]  # fmt: skip
