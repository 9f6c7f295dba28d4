"""invoice_match: two-way, three-way and cloud-side matching of supplier invoices, every status hand-worked.

Tolerances are the defaults: a difference counts as equal within max(0.01, 1 % of the reference).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")

INVOICE_COLUMNS = (
    "invoice_number", "vendor_id", "po_number", "po_line_number", "invoice_date", "currency", "amount",
    "quantity", "unit_price", "cloud_invoice_id", "billing_period", "provider_name",
)  # fmt: skip
RECEIPT_COLUMNS = ("receipt_number", "po_number", "po_line_number", "receipt_date", "quantity", "amount",
                   "currency")  # fmt: skip


def invoice(number: str, po_number: str | None, day: str, amount: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(INVOICE_COLUMNS)
    row.update(invoice_number=number, vendor_id="V-1", po_number=po_number, invoice_date=day, currency="USD",
               amount=amount)  # fmt: skip
    row.update(values)
    return row


def receipt(number: str, po_number: str, day: str, amount: str, line: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(RECEIPT_COLUMNS)
    row.update(
        receipt_number=number, po_number=po_number, po_line_number=line, receipt_date=day, amount=amount
    )
    return row


def _lines(root: Path) -> None:
    """PO-A: line 1 = 10 × 5.00, line 2 = 1 × 50.00 (make_project writes an empty po_lines.csv)."""
    (root / "erp" / "po_lines.csv").write_text(
        "po_number,line_number,description,quantity,unit_price,amount\n"
        "PO-A,1,compute,10,5.00,50.00\n"
        "PO-A,2,support,1,50.00,50.00\n",
        encoding="utf-8",
    )


def _charges() -> list[dict[str, Any]]:
    tagged = [charge("2024-01-10", BilledCost="25.00", Tags={"po": "PO-B"}, InvoiceId=None),
              charge("2024-01-20", BilledCost="15.00", Tags={"po": "PO-B"}, InvoiceId=None)]  # fmt: skip
    invoiced = [
        charge("2024-02-03", BilledCost="200.00", InvoiceId="AWS-INV-1"),
        charge("2024-02-04", BilledCost="100.50", InvoiceId="AWS-INV-1"),
        charge("2024-02-05", BilledCost="100.00", InvoiceId="AWS-INV-2"),
        charge("2024-02-06", BilledCost="50.00", InvoiceId="AWS-INV-3"),
    ]
    return tagged + invoiced


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    root = tmp_path_factory.mktemp("invoice_match")
    pos = [
        po("PO-A", total_amount="100.00"),
        po("PO-B", total_amount="40.00"),
        po("PO-C", total_amount="1000.00"),
        po("PO-E", currency="EUR", total_amount="90.00"),
    ]
    invoices = [
        invoice("INV-01", "PO-A", "2024-02-15", "30.00", po_line_number="1", quantity="6"),
        invoice("INV-02", "PO-A", "2024-02-20", "12.00", po_line_number="1", quantity="2"),
        invoice("INV-03", "PO-A", "2024-03-01", "50.00", po_line_number="2", unit_price="50.40"),
        invoice("INV-04", "PO-A", "2024-03-05", "9.50"),
        invoice("INV-05", None, "2024-03-06", "10.00"),
        invoice("INV-06", "PO-404", "2024-03-07", "10.00"),
        invoice("INV-07", "PO-A", "2024-03-31", "1.00", po_line_number="9"),
        invoice("INV-08", "PO-B", "2024-02-01", "40.00", billing_period="2024-01", provider_name="aws"),
        invoice("INV-09", "PO-C", "2024-02-10", "300.00", cloud_invoice_id="AWS-INV-1"),
        invoice("INV-10", "PO-C", "2024-02-12", "120.00", cloud_invoice_id="AWS-INV-2"),
        invoice("INV-11", "PO-E", "2024-02-15", "55.00"),
        invoice("INV-12", "PO-E", "2024-02-20", "10.00", currency="GBP"),
        invoice("INV-13", "PO-E", "2024-02-25", "45.00", currency="EUR", cloud_invoice_id="AWS-INV-3"),
    ]
    receipts = [
        receipt("GR-1", "PO-A", "2024-02-10", "30.00", line="1"),
        receipt("GR-2", "PO-A", "2024-02-28", "50.00", line="2"),
        receipt("GR-3", "PO-C", "2024-02-01", "500.00"),
        receipt("GR-4", "PO-E", "2024-02-14", "49.50"),  # no currency: the PO's (EUR)
    ]
    fx = [{"rate_date": "2024-02-01", "from_currency": "USD", "to_currency": "EUR", "rate": "0.90"}]
    config = make_project(
        root, {"a.csv": _charges()}, pos, fx=fx, erp_tables={"invoices": invoices, "goods_receipts": receipts}
    )
    _lines(root)
    return Path(run_flow(config, as_of=date(2024, 3, 31)).published_path)


def _matches(published: Path, match_type: str) -> dict[str, tuple[Any, ...]]:
    rows = query(
        published,
        "select invoice_number, status, comparison, round(compared_amount, 6), round(reference_amount, 6), "
        "round(difference, 6), round(tolerance, 6) from invoice_match where match_type = ? order by 1",
        [match_type],
    )
    return {row[0]: row[1:] for row in rows}


def test_two_way_against_po_total_and_line_price(published: Path) -> None:
    found = _matches(published, "two_way")
    # PO-A (100.00): invoiced to date 30 → 42 → 92 → 101.50; tolerance of the total max(0.01, 1.00) = 1.00
    assert found["INV-01"] == ("matched", "invoice_vs_quantity_x_po_price", 30.0, 30.0, 0.0, 0.3)  # 6 × 5.00
    assert found["INV-02"] == (
        "amount_mismatch",
        "invoice_vs_quantity_x_po_price",
        12.0,
        10.0,
        2.0,
        0.1,
    )  # 2 × 5.00
    # no quantity: unit price 50.40 vs 50.00, within max(0.01, 0.50)
    assert found["INV-03"] == ("matched", "unit_price_vs_po_price", 50.4, 50.0, 0.4, 0.5)
    # 30 + 12 + 50 + 9.50 = 101.50 > 100.00 + 1.00
    assert found["INV-04"] == ("over_po", "invoiced_to_date_vs_po_total", 101.5, 100.0, 1.5, 1.0)
    for number in ("INV-05", "INV-06", "INV-07"):
        assert found[number] == ("missing_po_reference", None, None, None, None, None)
    assert found["INV-08"] == ("matched", "invoiced_to_date_vs_po_total", 40.0, 40.0, 0.0, 0.4)
    assert found["INV-09"] == ("matched", "invoiced_to_date_vs_po_total", 300.0, 1000.0, -700.0, 10.0)
    assert found["INV-10"] == (
        "matched",
        "invoiced_to_date_vs_po_total",
        420.0,
        1000.0,
        -580.0,
        10.0,
    )  # 300 + 120
    # 55.00 USD × 0.90 = 49.50 EUR against the EUR PO of 90.00 (tolerance 0.90)
    assert found["INV-11"] == ("matched", "invoiced_to_date_vs_po_total", 49.5, 90.0, -40.5, 0.9)
    # GBP → EUR: no rate, so nothing is invoiced to date that can be compared (never at 1.0)
    assert found["INV-12"] == ("fx_missing", "invoiced_to_date_vs_po_total", None, 90.0, None, 0.9)
    # in EUR itself, but INV-12 before it cannot be valued: PO-E's invoiced to date is unknown
    assert found["INV-13"] == ("fx_missing", "invoiced_to_date_vs_po_total", None, 90.0, None, 0.9)


def test_three_way_against_receipts(published: Path) -> None:
    found = _matches(published, "three_way")
    # PO-A line 1: received 30.00; invoiced on the line 30, then 30 + 12 = 42 (tolerance 0.30)
    assert found["INV-01"] == ("matched", "line_invoiced_to_date_vs_line_received", 30.0, 30.0, 0.0, 0.3)
    assert found["INV-02"] == (
        "amount_mismatch",
        "line_invoiced_to_date_vs_line_received",
        42.0,
        30.0,
        12.0,
        0.3,
    )
    assert found["INV-03"] == ("matched", "line_invoiced_to_date_vs_line_received", 50.0, 50.0, 0.0, 0.5)
    # no line: the whole PO, invoiced 101.50 against received 30 + 50 = 80 (tolerance 0.80)
    assert found["INV-04"] == ("amount_mismatch", "invoiced_to_date_vs_received", 101.5, 80.0, 21.5, 0.8)
    for number in ("INV-05", "INV-06", "INV-07"):
        assert found[number] == ("missing_po_reference", None, None, None, None, None)
    assert found["INV-08"] == ("missing_receipt", "invoiced_to_date_vs_received", None, None, None, None)
    # PO-C received 500.00: invoiced below what was received is normal (tolerance 5.00)
    assert found["INV-09"] == ("matched", "invoiced_to_date_vs_received", 300.0, 500.0, -200.0, 5.0)
    assert found["INV-10"] == ("matched", "invoiced_to_date_vs_received", 420.0, 500.0, -80.0, 5.0)
    assert found["INV-11"] == ("matched", "invoiced_to_date_vs_received", 49.5, 49.5, 0.0, 0.495)
    assert found["INV-12"] == ("fx_missing", "invoiced_to_date_vs_received", None, 49.5, None, 0.495)
    assert found["INV-13"] == ("fx_missing", "invoiced_to_date_vs_received", None, 49.5, None, 0.495)


def test_cloud_against_provider_invoice_and_po_period(published: Path) -> None:
    found = _matches(published, "cloud")
    # PO-B's charges of 2024-01 (AWS): 25.00 + 15.00 = 40.00 (tolerance 0.40)
    assert found["INV-08"] == ("matched", "invoice_vs_po_period_charges", 40.0, 40.0, 0.0, 0.4)
    # InvoiceId AWS-INV-1: 200.00 + 100.50 = 300.50, within max(0.01, 3.005)
    assert found["INV-09"] == ("matched", "invoice_vs_provider_invoice", 300.0, 300.5, -0.5, 3.005)
    # InvoiceId AWS-INV-2: 100.00 billed, 120.00 invoiced
    assert found["INV-10"] == ("amount_mismatch", "invoice_vs_provider_invoice", 120.0, 100.0, 20.0, 1.0)
    # a EUR invoice for AWS-INV-3, billed 50.00 USD: × 0.90 (the rate on or before 2024-02-25) = 45.00 EUR
    assert found["INV-13"] == ("matched", "invoice_vs_provider_invoice", 45.0, 45.0, 0.0, 0.45)
    not_applicable = ("not_applicable", None, None, None, None, None)
    assert {n for n, row in found.items() if row == not_applicable} == {
        "INV-01", "INV-02", "INV-03", "INV-04", "INV-05", "INV-06", "INV-07", "INV-11", "INV-12",
    }  # fmt: skip


def test_reasons_currency_and_receipt_context(published: Path) -> None:
    reasons = query(
        published,
        "select invoice_number, reason from invoice_match where match_type = 'two_way' and reason is not null "
        "order by 1",
    )
    assert reasons == [
        ("INV-02", "invoice amount differs from quantity × the PO line unit price"),
        ("INV-04", "invoiced to date exceeds the PO total"),
        ("INV-05", "no PO number on the invoice"),
        ("INV-06", "PO PO-404 is not in the ERP"),
        ("INV-07", "line 9 is not a line of PO PO-A"),
        ("INV-12", "no FX rate GBP->EUR on or before 2024-02-20"),
        ("INV-13", "an earlier invoice against the PO has no FX rate"),
    ]
    context = query(
        published,
        "select invoice_number, match_type, currency, invoice_currency, fx_rate, fx_rate_date::varchar, "
        "receipt_count, first_receipt_date::varchar from invoice_match "
        "where invoice_number in ('INV-04', 'INV-11', 'INV-13') and match_type <> 'three_way' order by 1, 2",
    )
    assert context == [
        ("INV-04", "cloud", "USD", "USD", None, None, None, None),  # not applicable
        ("INV-04", "two_way", "USD", "USD", 1.0, None, None, None),
        ("INV-11", "cloud", "USD", "USD", None, None, None, None),
        ("INV-11", "two_way", "EUR", "USD", 0.9, "2024-02-01", None, None),  # invoice USD → PO EUR
        ("INV-13", "cloud", "EUR", "EUR", 0.9, "2024-02-01", None, None),  # billed USD → invoice EUR
        ("INV-13", "two_way", "EUR", "EUR", 1.0, None, None, None),
    ]
    receipts = query(
        published,
        "select invoice_number, receipt_count, first_receipt_date::varchar, received_amount from invoice_match "
        "where match_type = 'three_way' and invoice_number in ('INV-03', 'INV-04', 'INV-08') order by 1",
    )
    # INV-03 names line 2 (GR-2 only); INV-04 the whole PO-A (GR-1 30.00 + GR-2 50.00); PO-B has none
    assert receipts == [
        ("INV-03", 1, "2024-02-28", 50.0),
        ("INV-04", 2, "2024-02-10", 80.0),
        ("INV-08", 0, None, None),
    ]


def test_bad_invoice_and_receipt_rows_are_quarantined_not_fatal(tmp_path: Path) -> None:
    bad = [
        invoice("INV-1", "PO-A", "2024-02-30", "10.00"),  # no such day
        invoice("INV-2", "PO-A", "2024-02-10", "ten"),
        invoice("INV-3", "PO-A", "2024-02-10", "10.00", billing_period="2024-13"),
        invoice("INV-4", "PO-A", "2024-02-10", "10.00"),
        invoice("INV-5", "PO-A", "2024-02-11", "10.00"),
        invoice("INV-5", "PO-A", "2024-02-12", "11.00"),  # the same vendor and number twice: both held back
    ]
    receipts = [
        receipt("GR-1", "PO-A", "2024-02-01", "10.00", line="one"),
        receipt("GR-2", "PO-A", "2024-02-01", "10.00"),
    ]
    tables = {"invoices": bad, "goods_receipts": receipts}
    # 5 of 6 invoices quarantined would hold the extract back (validation.max_failure_ratio): not tested here
    lenient = "[validation]\nmax_failure_ratio = 1.0"
    config = make_project(tmp_path, {"a.csv": [charge("2024-02-01")]}, [po("PO-A")], erp_tables=tables,
                          extra_toml=lenient)  # fmt: skip
    outcome = run_flow(config, as_of=date(2024, 3, 31))
    failures = query(
        outcome.published_path,
        "select file_path, row_number, column_name, check_name from quarantine where file_path like 'erp/%' "
        "order by 1, 2",
    )
    assert failures == [
        ("erp/goods_receipts.csv", 1, "po_line_number", "is_integer"),
        ("erp/invoices.csv", 1, "invoice_date", "is_date"),
        ("erp/invoices.csv", 2, "amount", "is_decimal"),
        ("erp/invoices.csv", 3, "billing_period", "is_billing_period_yyyy_mm"),
        ("erp/invoices.csv", 5, "vendor_id,invoice_number", "multiple_fields_uniqueness"),
        ("erp/invoices.csv", 6, "vendor_id,invoice_number", "multiple_fields_uniqueness"),
    ]
    found = query(
        outcome.published_path, "select invoice_number, match_type, status from invoice_match order by 2"
    )
    # INV-4 (10.00 ≤ PO 100.00) against the one valid receipt GR-2 (10.00)
    assert found == [("INV-4", "cloud", "not_applicable"), ("INV-4", "three_way", "matched"),
                     ("INV-4", "two_way", "matched")]  # fmt: skip
