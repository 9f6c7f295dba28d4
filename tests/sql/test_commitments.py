"""Commitments in full (hand-worked): coverage over an explicit eligibility map on an on-demand-equivalent basis,
utilisation by cost and by quantity, the commitment inventory (term, expiry, funding PO), and the reporting
currency of these marts, with a missing FX rate flagged rather than read as 1.0."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from support import charge, make_project, po, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")

AS_OF = date(2024, 9, 30)
EC2 = "Amazon Elastic Compute Cloud"
RDS = "Amazon Relational Database Service"
S3 = "Amazon Simple Storage Service"
RI = "ri-1"
SP = "sp-1"
GBP_ACCOUNT = "444444444444"


def _row(day: str, **values: Any) -> dict[str, Any]:
    """A charge with the commitment columns these marts read (every row needs every key)."""
    defaults = {"ContractedCost": None, "CommitmentDiscountQuantity": None, "CommitmentDiscountUnit": None}
    return charge(day, **{**defaults, **values})


def _covered(
    day: str, commitment: str, effective: str, contracted: str | None, quantity: str, **kw: Any
) -> dict:
    return _row(day, ServiceName=EC2, BilledCost="0", EffectiveCost=effective, ContractedCost=contracted,
                CommitmentDiscountId=commitment, CommitmentDiscountStatus="Used", PricingCategory="Committed",
                CommitmentDiscountQuantity=quantity, CommitmentDiscountUnit="Hours", **kw)  # fmt: skip


CHARGES = [
    # ri-1: used 3 h (paid 6, on-demand equivalent 10), unused 2 h (paid 2)
    _covered("2024-09-10", RI, "6", "10", "3", CommitmentDiscountType="Reserved Instance"),
    _row(
        "2024-09-30",
        ServiceName=EC2,
        BilledCost="0",
        EffectiveCost="2",
        CommitmentDiscountId=RI,
        CommitmentDiscountStatus="Unused",
        CommitmentDiscountType="Reserved Instance",
        PricingCategory="Committed",
        CommitmentDiscountQuantity="2",
        CommitmentDiscountUnit="Hours",
    ),
    _row(
        "2024-09-01",
        ChargeCategory="Purchase",
        ServiceName=EC2,
        BilledCost="100",
        EffectiveCost="0",
        CommitmentDiscountId=RI,
        CommitmentDiscountType="Reserved Instance",
    ),
    # sp-1: used (paid 4, on-demand equivalent 6), bought with PO-3001's tag
    _covered("2024-09-15", SP, "4", "6", "4", CommitmentDiscountType="Savings Plan"),
    _row(
        "2024-09-01",
        ChargeCategory="Purchase",
        ServiceName="AWS Savings Plans",
        BilledCost="50",
        EffectiveCost="0",
        CommitmentDiscountId=SP,
        CommitmentDiscountType="Savings Plan",
        Tags={"po": "PO-3001"},
    ),
    # on-demand EC2 30 (contracted 30), Spot EC2 5 (contracted 12: not eligible), RDS 8 (no contracted, no list)
    _row("2024-09-10", ServiceName=EC2, BilledCost="30", EffectiveCost="30", ContractedCost="30"),
    _row(
        "2024-09-10",
        ServiceName=EC2,
        BilledCost="5",
        EffectiveCost="5",
        ContractedCost="12",
        PricingCategory="Dynamic",
    ),
    _row("2024-09-12", ServiceName=RDS, BilledCost="8", EffectiveCost="8"),
    # S3 is not in the eligibility map
    _row("2024-09-10", ServiceName=S3, BilledCost="40", EffectiveCost="40", ContractedCost="40"),
    # another billing account billed in GBP, for which the ERP has no rate to EUR
    _row(
        "2024-09-10",
        ServiceName=EC2,
        BilledCost="10",
        EffectiveCost="10",
        ContractedCost="10",
        BillingAccountId=GBP_ACCOUNT,
        BillingCurrency="GBP",
    ),
]

COMMITMENTS = [
    {"commitment_discount_id": RI, "term_start": "2023-10-15", "term_end": "2024-10-14", "po_number": "PO-3002",
     "description": "EC2 RI m5.large 1y"},
    {"commitment_discount_id": SP, "term_start": "2024-01-02", "term_end": "2027-01-01", "po_number": None,
     "description": "Compute SP 3y"},
    {"commitment_discount_id": "ri-old", "term_start": "2023-09-01", "term_end": "2024-08-31",
     "po_number": "PO-9999", "description": "expired RI"},
]  # fmt: skip

FX = [
    {"rate_date": "2024-09-01", "from_currency": "USD", "to_currency": "EUR", "rate": "0.9"},
    {"rate_date": "2024-09-12", "from_currency": "USD", "to_currency": "EUR", "rate": "0.8"},
]

CONFIG = """
[report]
currency = "EUR"

[commitments]
expiring_within_days = 30

[commitments.eligible_services]
AWS = ["Amazon Elastic Compute Cloud", "Amazon Relational Database Service"]
"""


@pytest.fixture(scope="module")
def published(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("commitments_full")
    pos = [po("PO-3001", total_amount="5000.00"), po("PO-3002", total_amount="200.00", currency="EUR")]
    config = make_project(root, {"aws.csv": CHARGES}, pos, fx=FX, extra_toml=CONFIG,
                          erp_tables={"commitments": COMMITMENTS})  # fmt: skip
    outcome = run_flow(config, as_of=AS_OF)
    assert outcome.failed_files == []
    return Path(outcome.published_path)


def _rows(db: Path, sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def _coverage(db: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    rows = _rows(db, "select * from commitment_coverage")
    return {(r["billing_account_id"], r["service_name"], r["billing_currency"]): r for r in rows}


def test_coverage_uses_the_eligibility_map_and_on_demand_equivalent_cost(published: Path) -> None:
    coverage = _coverage(published)
    # S3 is not eligible; GBP account's EC2 is
    assert set(coverage) == {
        ("111111111111", EC2, "USD"),
        ("111111111111", RDS, "USD"),
        (GBP_ACCOUNT, EC2, "GBP"),
    }
    ec2 = coverage[("111111111111", EC2, "USD")]
    assert ec2["covered_cost"] == pytest.approx(16.0)  # contracted 10 (ri-1) + 6 (sp-1)
    assert ec2["uncovered_cost"] == pytest.approx(30.0)  # on-demand, contracted 30; Spot is not eligible
    assert ec2["eligible_cost"] == pytest.approx(46.0)
    assert ec2["coverage_ratio"] == pytest.approx(16 / 46)  # not 10 / (10 + 30 + 5 + 40 ...) of spend
    assert ec2["committed_cost"] == pytest.approx(10.0)  # paid: 6 + 4
    assert ec2["on_demand_cost"] == pytest.approx(30.0)
    assert ec2["unused_commitment_cost"] == pytest.approx(2.0)
    assert ec2["not_eligible_cost"] == pytest.approx(5.0)  # Spot
    rds = coverage[("111111111111", RDS, "USD")]
    # no ContractedCost or ListCost: EffectiveCost 8 is the on-demand equivalent
    assert (rds["covered_cost"], rds["uncovered_cost"], rds["coverage_ratio"]) == (
        0.0,
        pytest.approx(8.0),
        0.0,
    )


def test_coverage_in_the_reporting_currency(published: Path) -> None:
    coverage = _coverage(published)
    ec2 = coverage[("111111111111", EC2, "USD")]
    assert ec2["reporting_currency"] == "EUR"
    # ri-1 on 09-10 at 0.9 (rate of 09-01): 10 × 0.9 = 9; sp-1 on 09-15 at 0.8 (rate of 09-12): 6 × 0.8 = 4.8
    assert ec2["covered_cost_reporting"] == pytest.approx(13.8)
    assert ec2["uncovered_cost_reporting"] == pytest.approx(27.0)  # 30 × 0.9
    assert ec2["unused_commitment_cost_reporting"] == pytest.approx(1.6)  # 2 on 09-30 × 0.8
    assert ec2["reporting_fx_rate_date"] == date(2024, 9, 12)
    assert ec2["reporting_fx_missing"] is False
    gbp = coverage[(GBP_ACCOUNT, EC2, "GBP")]
    # no GBP rate: flagged and NULL, never converted at 1.0; nothing was covered, which is 0 in any currency
    assert gbp["reporting_fx_missing"] is True
    assert gbp["uncovered_cost_reporting"] is None
    assert gbp["covered_cost_reporting"] == 0.0
    assert gbp["uncovered_cost"] == pytest.approx(10.0)


def test_utilisation_by_cost_and_by_quantity(published: Path) -> None:
    rows = _rows(published, "select * from commitment_utilization where commitment_discount_id = 'ri-1'")
    assert len(rows) == 1
    ri = rows[0]
    assert (ri["used_cost"], ri["unused_cost"]) == (pytest.approx(6.0), pytest.approx(2.0))
    assert ri["cost_utilization_ratio"] == pytest.approx(0.75)  # 6 / (6 + 2)
    assert (ri["used_quantity"], ri["unused_quantity"]) == (pytest.approx(3.0), pytest.approx(2.0))
    assert ri["quantity_utilization_ratio"] == pytest.approx(0.6)  # 3 h / (3 + 2) h
    assert ri["commitment_discount_unit"] == "Hours"
    assert ri["purchase_billed_cost"] == pytest.approx(100.0)
    # reporting: used 6 on 09-10 × 0.9 = 5.4; unused 2 on 09-30 × 0.8 = 1.6; purchase 100 on 09-01 × 0.9 = 90
    assert ri["used_cost_reporting"] == pytest.approx(5.4)
    assert ri["unused_cost_reporting"] == pytest.approx(1.6)
    assert ri["purchase_billed_cost_reporting"] == pytest.approx(90.0)


def test_inventory_terms_expiry_and_funding(published: Path) -> None:
    rows = {r["commitment_discount_id"]: r for r in _rows(published, "select * from commitment_inventory")}
    assert set(rows) == {RI, SP, "ri-old"}
    ri, sp, old = rows[RI], rows[SP], rows["ri-old"]
    # 2024-10-14 − 2024-09-30 = 14 days ≤ 30: expiring
    assert (ri["days_to_expiry"], ri["term_state"]) == (14, "expiring")
    # 2024-09-30 → 2026-09-30 is 730 days, → 2027-01-01 is 31 + 30 + 31 + 1 = 93 more
    assert (sp["days_to_expiry"], sp["term_state"]) == (823, "active")
    assert (old["days_to_expiry"], old["term_state"]) == (-30, "expired")
    # ri-1's purchase carries no PO: the extract's PO-3002 (known to the ERP); sp-1's purchase is tagged PO-3001
    assert (ri["funded_po_number"], ri["funded_po_status"], ri["funding_source"]) == (
        "PO-3002", "valid", "commitments_extract")  # fmt: skip
    assert (sp["funded_po_number"], sp["funded_po_status"], sp["funding_source"]) == (
        "PO-3001", "valid", "purchase_charge:tag")  # fmt: skip
    assert (old["funded_po_number"], old["funded_po_status"]) == ("PO-9999", "invalid")
    assert old["provider_name"] is None and old["used_cost"] == 0.0  # no charges in the data
    assert ri["cost_utilization_ratio"] == pytest.approx(0.75)
    assert ri["unused_cost_reporting"] == pytest.approx(1.6)


def test_po_burn_in_po_billing_and_reporting_currency(published: Path) -> None:
    rows = {r["po_number"]: r for r in _rows(published, "select * from po_burn")}
    usd, eur = rows["PO-3001"], rows["PO-3002"]
    # PO-3001 (USD) consumed by sp-1's purchase, 50 USD; as_of 09-30 uses the 09-12 rate 0.8
    assert (usd["consumed_amount"], usd["billing_currency"], usd["consumed_billed_cost"]) == (
        pytest.approx(50.0), "USD", pytest.approx(50.0))  # fmt: skip
    assert (usd["reporting_fx_rate"], usd["reporting_fx_rate_date"]) == (
        pytest.approx(0.8),
        date(2024, 9, 12),
    )
    assert usd["committed_amount_reporting"] == pytest.approx(4000.0)  # 5000 × 0.8
    assert usd["consumed_amount_reporting"] == pytest.approx(40.0)  # 50 × 0.8
    assert usd["remaining_amount_reporting"] == pytest.approx(3960.0)  # 4950 × 0.8
    # PO-3002 is in the reporting currency: rate 1.0, no rate date; nothing consumed, no billing currency
    assert (eur["reporting_fx_rate"], eur["reporting_fx_rate_date"]) == (1.0, None)
    assert eur["committed_amount_reporting"] == pytest.approx(200.0)
    assert eur["billing_currency"] is None


def test_reporting_rates_are_published(published: Path) -> None:
    rates = {
        (r["rate_day"], r["from_currency"]): (r["fx_rate"], r["fx_rate_date"], r["fx_missing"])
        for r in _rows(published, "select * from reporting_fx_rates")
    }
    assert rates[(date(2024, 9, 10), "USD")] == (pytest.approx(0.9), date(2024, 9, 1), False)
    assert rates[(date(2024, 9, 12), "USD")] == (pytest.approx(0.8), date(2024, 9, 12), False)
    assert rates[(date(2024, 9, 10), "GBP")] == (None, None, True)
    assert rates[(AS_OF, "EUR")] == (1.0, None, False)  # PO-3002's currency on as_of
