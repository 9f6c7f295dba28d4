"""Every SQL block of docs/queries.md, run as an analyst would on the bundled publication (runs at as_of
2024-09-15 and 2024-09-30), against figures worked out by hand from data/fixtures/ (README and files)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from finrecon.models.config import PROJECT_ROOT

QUERIES = PROJECT_ROOT / "docs" / "queries.md"


def sql_blocks() -> dict[str, str]:
    """`## title` → the sql block under it."""
    text = QUERIES.read_text(encoding="utf-8")
    blocks = {}
    for section in text.split("\n## ")[1:]:
        title = section.split("\n", 1)[0].strip()
        found = re.search(r"```sql\n(.*?)```", section, re.S)
        assert found, f"no sql block under {title!r}"
        blocks[title] = found.group(1)
    return blocks


def run_block(database: Path, sql: str) -> list[dict[str, Any]]:
    """Run the block's statements in one read-only session; the rows of the last one, by column name."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        statements = [s for s in sql.split(";\n") if s.strip()]
        for statement in statements[:-1]:
            con.execute(statement)
        cursor = con.execute(statements[-1])
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def test_every_block_is_tested() -> None:
    assert set(sql_blocks()) == set(EXPECTED_TITLES)


def test_untagged_spend_by_account_last_month(published: Path) -> None:
    rows = run_block(published, sql_blocks()["Untagged spend by account last month"])
    got = {
        r["provider_name"]: (r["charge_count"], r["untagged_billed_cost"], r["untagged_effective_cost"])
        for r in rows
    }
    # last month: as_of 2024-09-30 is September's last day → 2024-09.
    # AWS (data/fixtures/README.md): 727 rows without a PO key, Σ 1.81182424850, less the 58 rows of sub-account
    # 85742851457 the allocation rule gives PO-1007 (0.26623176180) and the 6 of sub-account 10961396247 that
    # po_cloud_mapping gives PO-1001 (0.01333335250): 663 rows, 1.53225913420; plus the commitment file's 11 usage
    # rows without a PO key (5 Used 0.00 + 3 Unused 0.00 + 3 on-demand 6.25): 674 rows, 7.78225913420
    assert got["AWS"][:2] == (674, pytest.approx(1.81182424850 - 0.26623176180 - 0.01333335250 + 6.25))
    # Microsoft: the 20 rows without "Project": "Foo", Σ BilledCost = Σ EffectiveCost 1.97624517386
    assert got["Microsoft"] == (20, pytest.approx(1.97624517386), pytest.approx(1.97624517386))
    # Oracle (oracle_focus_1.0_2024-09.csv): 6 of its 7 rows are in billing period 2024-09 (the 7th, 0.24, is
    # 2024-10): 0.012 + 0.0 + 0.012 + 0.192 + 0.08 + 0.00107392473; EffectiveCost is 0 on every row
    assert got["Oracle"] == (6, pytest.approx(0.012 + 0.012 + 0.192 + 0.08 + 0.00107392473), 0.0)
    assert [r["provider_name"] for r in rows] == ["AWS", "Microsoft", "Oracle"]  # largest first


def test_pos_that_run_out_before_their_end_date(published: Path) -> None:
    rows = run_block(published, sql_blocks()["POs that will run out before their end date"])
    got = {r["po_number"]: (r["projected_exhaustion_date"], r["valid_to"]) for r in rows}
    # burn rate = consumption of 2024-09-01..09-30 (all of it) / 30; days = ceil(remaining / rate) after 09-30:
    # PO-1001: (18.77 − 15.97143267070) / (15.97143267070 / 30) = 5.26 → 6 days → 2024-10-06 (valid to 2024-12-31)
    # PO-1005: (0.000489 − 0.000269012) / (0.000269012 / 30) = 24.53 → 25 days → 2024-10-25
    # PO-1006: (18.00 − 9.00) / (9.00 / 30) = 30 days → 2024-10-30
    # PO-1002: (0.62 − 0.20761493) / (0.20761493 / 30) = 59.59 → 60 days → 2024-11-29 (EUR)
    # PO-1007 (rule-funded, 0.26623176180 of 5.00): 544 days, after its valid_to 2025-08-31: not listed
    assert got == {
        "PO-1001": (date(2024, 10, 6), date(2024, 12, 31)),
        "PO-1005": (date(2024, 10, 25), date(2025, 8, 31)),
        "PO-1006": (date(2024, 10, 30), date(2026, 12, 31)),
        "PO-1002": (date(2024, 11, 29), date(2025, 6, 30)),
    }
    assert [r["po_number"] for r in rows] == ["PO-1001", "PO-1005", "PO-1006", "PO-1002"]
    first = rows[0]
    assert first["remaining_amount"] == pytest.approx(18.77 - 15.97143267070)
    assert first["days_left_uncovered"] == 86  # 2024-10-06 → 2024-12-31: 25 + 30 + 31


def test_what_did_we_know_po_burn(published: Path) -> None:
    rows = run_block(published, sql_blocks()["What did we know on date X: PO burn"])
    got = {r["po_number"]: r for r in rows}
    assert {r["as_of"] for r in rows} == {date(2024, 9, 15)}
    # PO-1006 funds the RI: its Purchase rows are 0.50 per Normalized Hour; by 2024-09-15 the hours of
    # 09-03 (1 NH), 09-06 (4), 09-10 (3) and 09-13 (3) were bought: 11 × 0.50 = 5.50 of 18.00 (9.00 by 09-30)
    assert got["PO-1006"]["consumed_amount"] == pytest.approx(5.50)
    assert got["PO-1006"]["consumed_ratio"] == pytest.approx(5.50 / 18.00)
    assert got["PO-1006"]["threshold_state"] == "ok"  # 30.6 %, below the first threshold (50 %)
    assert got["PO-1004"]["consumed_amount"] == 0.0  # cancelled: nothing counts
    assert len(rows) == 10


def test_what_did_we_know_billing_period_totals(published: Path) -> None:
    rows = run_block(published, sql_blocks()["What did we know on date X: billing period totals"])
    got = {(r["billing_period"], r["provider_name"]): r for r in rows}
    assert {r["version"] for r in rows} == {1}  # the as_of 2024-09-30 run moved no figure
    # data/fixtures/README.md: AWS Σ EffectiveCost 13.00 (FOCUS sample) + 15.25 (commitments file),
    # Σ BilledCost 18.00663861840 + 15.25, rows 942 + 17
    aws = got[("2024-09", "AWS")]
    assert (aws["total_cost"], aws["total_billed_cost"], aws["charge_count"]) == (
        pytest.approx(13.00 + 15.25),
        pytest.approx(18.00663861840 + 15.25),
        959,
    )
    microsoft = got[("2024-09", "Microsoft")]
    assert (microsoft["total_cost"], microsoft["charge_count"]) == (pytest.approx(1.97651418586), 51)
    # untagged: all but the 31 rows tagged po_1005 (0.00026901200)
    assert microsoft["untagged_cost"] == pytest.approx(1.97651418586 - 0.00026901200)
    # Oracle: 0.53707392473 in all, 0.24 of it on the row billed in 2024-10
    assert got[("2024-10", "Oracle")]["total_billed_cost"] == pytest.approx(0.24)
    assert got[("2024-09", "Oracle")]["total_billed_cost"] == pytest.approx(0.53707392473 - 0.24)


def test_commitment_waste_by_month(published: Path) -> None:
    rows = run_block(published, sql_blocks()["Commitment waste by month"])
    # commitments_focus_1.2_2024-09.csv: 3 Unused rows (hours 09-13: 3 NH × 0.50, 09-17: 1 NH × 0.50,
    # 09-24: 3 NH × 0.50) = 3.50; 5 Used rows = 5.50; utilisation 5.50 / 9.00. The two savings plans of the
    # FOCUS sample have no Used/Unused rows: no waste, not listed.
    assert len(rows) == 1
    row = rows[0]
    assert row["billing_month"] == "2024-09"
    assert row["commitment_discount_id"].endswith("reserved-instances/ri-fixture-0001")
    assert (row["waste"], row["used_cost"], row["cost_utilization_ratio"]) == (
        pytest.approx(1.50 + 0.50 + 1.50),
        pytest.approx(5.50),
        pytest.approx(5.50 / 9.00),
    )
    assert row["funded_po_number"] == "PO-1006"
    assert row["reporting_currency"] == "EUR" and row["waste_reporting"] < row["waste"]  # USD→EUR ≈ 0.90


def test_po_coverage_of_last_months_bill(published: Path) -> None:
    rows = {
        r["provider_name"]: r
        for r in run_block(published, sql_blocks()["PO coverage of last month's bill by provider"])
    }
    # AWS valid BilledCost: PO-1001 tag 15.95809931820 + mapping 0.01333335250, PO-1002 0.23029783980,
    # PO-1003 before its valid_to 0.00001709520 − 0.00001605990, PO-1006 9.00, PO-1007 rule 0.26623176180
    valid = (
        15.95809931820
        + 0.01333335250
        + 0.23029783980
        + (0.00001709520 - 0.00001605990)
        + 9.00
        + 0.26623176180
    )
    assert rows["AWS"]["valid_po_billed_cost"] == pytest.approx(valid)
    assert rows["AWS"]["coverage_ratio"] == pytest.approx(valid / (18.00663861840 + 15.25))
    assert rows["Microsoft"]["coverage_ratio"] == pytest.approx(0.00026901200 / 1.97651418586)
    assert rows["Oracle"]["valid_po_billed_cost"] == 0.0


def test_invoices_that_need_a_person(published: Path) -> None:
    rows = run_block(published, sql_blocks()["Invoices that need a person"])
    # data/fixtures/README.md, "invoices.csv and goods_receipts.csv": every row not matched / not_applicable
    assert [(r["invoice_number"], r["match_type"], r["status"]) for r in rows] == [
        ("AWS-2024-04-0117", "three_way", "amount_mismatch"),
        ("AWS-2024-04-0117", "two_way", "amount_mismatch"),
        ("AWS-2024-09-0950", "three_way", "amount_mismatch"),
        ("AWS-2024-09-0950", "two_way", "over_po"),
        ("AWS-2024-10-0022", "three_way", "missing_receipt"),
        ("AWS-2024-10-0035", "cloud", "amount_mismatch"),
        ("ORCL-77120", "cloud", "missing_po_reference"),
        ("ORCL-77120", "three_way", "missing_po_reference"),
        ("ORCL-77120", "two_way", "missing_po_reference"),
    ]
    assert all(r["reason"] for r in rows)


EXPECTED_TITLES = (
    "Untagged spend by account last month",
    "POs that will run out before their end date",
    "What did we know on date X: PO burn",
    "What did we know on date X: billing period totals",
    "Commitment waste by month",
    "PO coverage of last month's bill by provider",
    "Invoices that need a person",
)
