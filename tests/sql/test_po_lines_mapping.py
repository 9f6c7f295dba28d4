"""po_cloud_mapping: spend mapped to PO lines (charges.x_po_line_number) and po_line_burn (hand-worked)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support import PO_LINE_COLUMNS, charge, make_project, po, query, run_flow, write_csv

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _charge(resource: str, day: str, cost: str, tags: dict[str, str] | None = None, **values: Any) -> dict:
    """A USD charge named by its ResourceId; every row carries InvoiceIssuerName (a CSV has one header)."""
    return charge(day, ResourceId=resource, BilledCost=cost, EffectiveCost=cost, Tags=tags,
                  InvoiceIssuerName=values.pop("InvoiceIssuerName", "Amazon Web Services, Inc."), **values)  # fmt: skip


CHARGES = [
    _charge("a", "2024-06-10", "10.00", {"po": "PO-1", "app": "web"}),  # tag; line 1 by tag:app
    _charge("b", "2024-06-10", "20.00", {"po": "PO-1"}, SubAccountId="333"),  # tag; line 2 by SubAccountId
    _charge("c", "2024-06-10", "5.00", {"po": "PO-1"}),  # tag; no row of PO-1 matches: no line
    _charge("d", "2024-06-10", "40.00", SubAccountId="333"),  # no tag: the mapping allocates PO-1 line 2
    # sub-account 333 (PO-1/2, rank 3) and commitment cd-1 (PO-2/1, rank 1): the commitment is more specific
    _charge("e", "2024-06-10", "8.00", SubAccountId="333", CommitmentDiscountId="cd-1"),
    _charge("f", "2024-06-10", "7.00", {"app": "batch"}),  # PO-1 line 3, which po_lines does not have
    # billing account 999: mapped to PO-2/1 from 2024-06-01 only; before that the allocation rule applies
    _charge("g", "2024-05-15", "3.00", BillingAccountId="999"),
    _charge("h", "2024-06-10", "6.00", BillingAccountId="999"),  # mapping beats the allocation rule
    # tagged PO-2 in sub-account 333: the tag wins over PO-1's row, and no row of PO-2 matches: no line
    _charge("i", "2024-06-05", "9.00", {"po": "PO-2"}, SubAccountId="333"),
    _charge("k", "2024-06-10", "4.00", InvoiceIssuerName="Reseller Ltd"),  # PO-1 line 1 by the issuer
]
MAPPING = [
    {"po_number": "PO-1", "line_number": "1", "match_column": "tag:App", "match_value": "web",
     "valid_from": "2024-01-01", "valid_to": "2024-12-31"},
    {"po_number": "PO-1", "line_number": "2", "match_column": "subaccountid", "match_value": "333",
     "valid_from": None, "valid_to": None},
    {"po_number": "PO-1", "line_number": "3", "match_column": "tag:app", "match_value": "batch",
     "valid_from": None, "valid_to": None},
    {"po_number": "PO-1", "line_number": "1", "match_column": "InvoiceIssuerName", "match_value": "Reseller Ltd",
     "valid_from": None, "valid_to": None},
    {"po_number": "PO-2", "line_number": "1", "match_column": "BillingAccountId", "match_value": "999",
     "valid_from": "2024-06-01", "valid_to": None},
    {"po_number": "PO-2", "line_number": "1", "match_column": "CommitmentDiscountId", "match_value": "cd-1",
     "valid_from": None, "valid_to": None},
    # bad rows, quarantined (rows 7 and 8): a column the mapping cannot match on, a line that is not a number
    {"po_number": "PO-1", "line_number": "1", "match_column": "ResourceId", "match_value": "x",
     "valid_from": None, "valid_to": None},
    {"po_number": "PO-1", "line_number": "two", "match_column": "SubAccountId", "match_value": "444",
     "valid_from": None, "valid_to": None},
]  # fmt: skip
LINES = [
    {"po_number": "PO-1", "line_number": "1", "description": "web", "amount": "100.00"},
    {"po_number": "PO-1", "line_number": "2", "description": "shared", "amount": "200.00"},
    {"po_number": "po 2", "line_number": "1", "description": "EUR line", "amount": "100.00"},
]
RULE = """
[[allocation_rules]]
name = "acct-999"
po = "PO-1"
match = { BillingAccountId = "999" }
"""


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    root = tmp_path_factory.mktemp("po_lines_mapping")
    pos = [po("PO-1", total_amount="300.00"), po("PO-2", currency="EUR", total_amount="100.00")]
    fx = [{"rate_date": "2024-06-01", "from_currency": "USD", "to_currency": "EUR", "rate": "0.90"}]
    config = make_project(
        root, {"a.csv": CHARGES}, pos, fx=fx, extra_toml=RULE, erp_tables={"po_cloud_mapping": MAPPING}
    )
    write_csv(root / "erp" / "po_lines.csv", LINES, PO_LINE_COLUMNS)
    return Path(run_flow(config, as_of=date(2024, 6, 30)).published_path)


def test_each_charge_gets_one_po_and_line_by_precedence(published: Path) -> None:
    rows = query(
        published,
        "select ResourceId, x_po_number, x_po_reason, x_po_line_number, x_po_line_match from charges order by 1",
    )
    assert rows == [
        ("a", "PO-1", "tag", 1, "tag:App=web"),
        ("b", "PO-1", "tag", 2, "SubAccountId=333"),
        ("c", "PO-1", "tag", None, None),
        ("d", "PO-1", "mapping:PO-1/2", 2, "SubAccountId=333"),
        ("e", "PO-2", "mapping:PO-2/1", 1, "CommitmentDiscountId=cd-1"),
        ("f", "PO-1", "mapping:PO-1/3", 3, "tag:app=batch"),
        ("g", "PO-1", "rule:acct-999", None, None),
        ("h", "PO-2", "mapping:PO-2/1", 1, "BillingAccountId=999"),
        ("i", "PO-2", "tag", None, None),
        ("k", "PO-1", "mapping:PO-1/1", 1, "InvoiceIssuerName=Reseller Ltd"),
    ]


def test_line_burn_adds_up_to_the_po_burn(published: Path) -> None:
    rows = query(
        published,
        "select po_number, line_number, line_state, po_currency, line_amount, consumed_amount, remaining_amount, "
        "consumed_ratio, charge_count from po_line_burn order by po_number, line_number nulls last",
    )
    assert rows == [
        ("PO-1", 1, "line", "USD", 100.0, 14.0, 86.0, 0.14, 2),  # a 10 + k 4
        ("PO-1", 2, "line", "USD", 200.0, 60.0, 140.0, 0.3, 2),  # b 20 + d 40
        ("PO-1", 3, "unknown_line", "USD", None, 7.0, None, None, 1),  # f, a line po_lines lacks
        ("PO-1", None, "unallocated", "USD", None, 8.0, None, None, 2),  # c 5 + g 3
        # USD → EUR at 0.90 (2024-06-01): e 8 × 0.9 + h 6 × 0.9 = 7.2 + 5.4; "po 2" in po_lines is PO-2
        ("PO-2", 1, "line", "EUR", 100.0, pytest.approx(12.6), pytest.approx(87.4), pytest.approx(0.126), 2),
        ("PO-2", None, "unallocated", "EUR", None, pytest.approx(8.1), None, None, 1),  # i 9 × 0.9
    ]
    burn = query(published, "select po_number, consumed_amount from po_burn order by po_number")
    # 14 + 60 + 7 + 8 = 89; 12.6 + 8.1 = 20.7
    assert burn == [("PO-1", 89.0), ("PO-2", pytest.approx(20.7))]


def test_bad_mapping_rows_are_quarantined_naming_row_and_column(published: Path) -> None:
    rows = query(
        published,
        "select file_path, row_number, column_name, check_name, raw_value from quarantine order by row_number",
    )
    assert rows == [
        ("erp/po_cloud_mapping.csv", 7, "match_column", "is_mapping_match_column", "ResourceId"),
        ("erp/po_cloud_mapping.csv", 8, "line_number", "is_integer", "two"),
    ]
