"""Blanket POs and their releases: po_releases and blanket_po_releases (hand-worked figures)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _po(number: str, total: str, currency: str = "USD", **values: Any) -> dict[str, Any]:
    """A PO row with every optional column this test uses (a CSV takes its header from the first row)."""
    row = {"po_type": "standard", "parent_po_number": None, "issued_at": "2023-12-15", **values}
    return po(number, total_amount=total, currency=currency, **row)


POS = [
    _po("BL-1", "1000.00", po_type="blanket"),
    _po("R1", "600.00", parent_po_number="BL-1", issued_at="2024-02-01"),
    # EUR release issued 2024-03-15: EUR→USD on or before that day is 2024-03-01's 1.10
    _po("R2", "400.00", currency="EUR", parent_po_number="bl 1", issued_at="2024-03-15"),
    _po("R3", "500.00", status="cancelled", parent_po_number="BL-1", issued_at="2024-04-01"),
    # a GBP blanket whose USD release has no USD/GBP rate at all
    _po("BL-2", "100.00", currency="GBP", po_type="blanket"),
    _po("R4", "50.00", parent_po_number="BL-2", issued_at="2024-02-01"),
    # broken links: an unknown parent, and a parent that is not a blanket
    _po("R8", "10.00", parent_po_number="PO-STD"),
    _po("R9", "10.00", parent_po_number="BL-404"),
    _po("PO-STD", "10.00"),
]
FX = [
    {"rate_date": "2024-03-01", "from_currency": "EUR", "to_currency": "USD", "rate": "1.10"},
    {"rate_date": "2024-03-20", "from_currency": "EUR", "to_currency": "USD", "rate": "1.20"},
]
CHARGES = [
    charge("2024-06-01", BilledCost="100.00", Tags={"po": "BL-1"}),  # the blanket itself
    charge("2024-06-02", BilledCost="50.00", Tags={"po": "R1"}),
    # billed in EUR to the EUR release: 10 EUR, 12 USD in the blanket's currency (2024-03-20's 1.20)
    charge("2024-06-03", BilledCost="10.00", BillingCurrency="EUR", Tags={"po": "R2"}),
    charge("2024-06-04", BilledCost="70.00", Tags={"po": "R3"}),  # cancelled release: invalid, not counted
    charge("2024-07-01", BilledCost="999.00", Tags={"po": "R1"}),  # after as_of
]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    root = tmp_path_factory.mktemp("blankets")
    config = make_project(root, {"a.csv": CHARGES}, POS, fx=FX)
    return Path(run_flow(config, as_of=date(2024, 6, 30)).published_path)


def test_each_release_is_linked_and_converted_to_its_blanket_currency(published: Path) -> None:
    rows = query(
        published,
        "select po_number, parent_po_number, link_status, release_amount, fx_rate, fx_rate_date, "
        "release_amount_parent_currency, counts_against_ceiling from po_releases order by po_number",
    )
    assert rows == [
        ("R1", "BL-1", "ok", 600.0, 1.0, None, 600.0, True),
        # 400 EUR × 1.10 = 440 USD (the rate of 2024-03-01, the latest on or before the issue date 2024-03-15);
        # the ERP wrote the parent as "bl 1": matched by the comparison key, shown as the ERP numbers it
        ("R2", "BL-1", "ok", 400.0, 1.10, date(2024, 3, 1), pytest.approx(440.0), True),
        ("R3", "BL-1", "ok", 500.0, 1.0, None, 500.0, False),  # cancelled: gives its amount back
        ("R4", "BL-2", "ok", 50.0, None, None, None, True),  # no USD→GBP rate: NULL, never 1.0
        ("R8", "PO-STD", "parent_not_blanket", 10.0, 1.0, None, 10.0, False),
        ("R9", "BL-404", "parent_unknown", 10.0, None, None, None, False),
    ]


def test_a_blanket_with_two_releases_exceeding_its_ceiling(published: Path) -> None:
    rows = query(
        published,
        "select po_number, po_currency, ceiling_amount, release_count, released_amount, remaining_ceiling_amount, "
        "releases_exceed_ceiling, excess_amount, blanket_consumed_amount, releases_consumed_amount, "
        "releases_charge_count, total_consumed_amount, consumed_ratio, consumption_exceeds_ceiling, fx_missing "
        "from blanket_po_releases order by po_number",
    )
    assert rows == [
        (
            "BL-1",
            "USD",
            1000.0,
            2,  # R1 and R2; R3 is cancelled
            pytest.approx(1040.0),  # 600 + 400 EUR × 1.10 = 600 + 440
            pytest.approx(-40.0),  # 1000 − 1040
            True,
            pytest.approx(40.0),  # 1040 − 1000
            100.0,  # the blanket's own tagged charge
            pytest.approx(
                62.0
            ),  # R1 50 USD + R2 10 EUR × 1.20 = 50 + 12 (R3's 70 is invalid, 999 after as_of)
            2,
            pytest.approx(162.0),  # 100 + 62
            pytest.approx(0.162),  # 162 / 1000
            False,
            False,
        ),
        # R4's 50 USD cannot be put in GBP: the ceiling figures are NULL and flagged, not guessed
        ("BL-2", "GBP", 100.0, 1, None, None, None, None, 0.0, 0.0, 0, 0.0, 0.0, False, True),
    ]


def test_a_release_burns_on_its_own_as_well(published: Path) -> None:
    rows = query(
        published,
        "select po_number, po_currency, committed_amount, consumed_amount from po_burn "
        "where po_number in ('R1', 'R2') order by po_number",
    )
    # po_burn keeps each release's own figures in its own currency: R2 consumed 10 EUR billed in EUR
    assert rows == [("R1", "USD", 600.0, 50.0), ("R2", "EUR", 400.0, 10.0)]
