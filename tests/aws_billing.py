"""AWS billing rendered as AWS writes it: one hand-written truth as CUR 2.0 line items or as AWS's FOCUS export.

Test helpers only: the semantics here are written out independently of the code under test (AWS's column
meanings, not the pipeline's mapping), so that a test comparing the two renderings checks the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from support import make_project, po

BUCKET = "billing-bucket"
PAYER = "111111111111"
TEAM_A = "222222222222"
TEAM_B = "333333333333"
RI_1 = "arn:aws:ec2:us-east-1:111111111111:reserved-instances/ri-0001"
RI_2 = "arn:aws:ec2:us-east-1:111111111111:reserved-instances/ri-0002"
SP_1 = "arn:aws:savingsplans::111111111111:savingsplan/sp-0001"
EC2 = "Amazon Elastic Compute Cloud"
# The product code AWS writes beside each product name (legacy CUR's lineItem/ProductCode and product/ProductName).
PRODUCT_CODES = {
    EC2: "AmazonEC2",
    "Amazon Simple Storage Service": "AmazonS3",
    "Amazon Relational Database Service": "AmazonRDS",
    "Savings Plans for AWS Compute usage": "ComputeSavingsPlans",
}


@dataclass(frozen=True)
class Item:
    """One thing that happened in the month, independent of how AWS writes it down."""

    kind: str  # usage | ri_usage | ri_fee | ri_upfront | sp_usage | sp_fee | tax | credit
    day: int
    account: str
    service: str
    po: str | None
    amount: float  # usage: on-demand cost; fees: the fee; tax/credit: the amount
    effective: float = 0.0  # ri/sp usage: the commitment's effective cost; ri/sp fee: the unused part
    commitment: str | None = None


def _stamp(day: int) -> str:
    return f"2024-11-{day:02d}T00:00:00Z"


def cur2_rows(items: list[Item]) -> list[dict[str, Any]]:
    """TRUTH as CUR 2.0 line items (AWS's column semantics, written out here independently of the code)."""
    rows = []
    for item in items:
        base: dict[str, Any] = {
            "bill_payer_account_id": PAYER,
            "bill_payer_account_name": "payer",
            "bill_billing_period_start_date": "2024-11-01T00:00:00Z",
            "bill_billing_period_end_date": "2024-12-01T00:00:00Z",
            "bill_invoice_id": "INV-2024-11",
            "bill_invoicing_entity": "Amazon Web Services, Inc.",
            "line_item_usage_account_id": item.account,
            "line_item_usage_account_name": {TEAM_A: "team-a", TEAM_B: "team-b"}.get(item.account, "payer"),
            "line_item_usage_start_date": _stamp(item.day),
            "line_item_usage_end_date": _stamp(item.day).replace("T00", "T01"),
            "line_item_currency_code": "USD",
            "line_item_product_code": PRODUCT_CODES[item.service],
            # CUR 2.0 has no product_product_name column: the name is a key of the `product` map
            "product": {"product_name": item.service, "servicename": item.service},
            "product_servicecode": PRODUCT_CODES[item.service],
            "resource_tags": {"user_po": item.po} if item.po else {},
            "line_item_unblended_cost": item.amount,
            "pricing_public_on_demand_cost": item.amount,
            "reservation_reservation_a_r_n": "",
            "reservation_effective_cost": 0.0,
            "reservation_unused_amortized_upfront_fee_for_billing_period": 0.0,
            "reservation_unused_recurring_fee": 0.0,
            "savings_plan_savings_plan_a_r_n": "",
            "savings_plan_savings_plan_effective_cost": 0.0,
            "savings_plan_total_commitment_to_date": 0.0,
            "savings_plan_used_commitment": 0.0,
        }
        kind = item.kind
        if kind == "usage":
            rows.append(base | {"line_item_line_item_type": "Usage"})
        elif kind == "ri_usage":  # unblended 0: the usage is paid through the reservation
            rows.append(base | {"line_item_line_item_type": "DiscountedUsage", "line_item_unblended_cost": 0.0,
                                "reservation_reservation_a_r_n": item.commitment,
                                "reservation_effective_cost": item.effective})  # fmt: skip
        elif kind == "ri_fee":  # the month's recurring fee; its unused part split into upfront and recurring
            rows.append(base | {"line_item_line_item_type": "RIFee", "reservation_reservation_a_r_n": item.commitment,
                                "reservation_unused_amortized_upfront_fee_for_billing_period": item.effective * 0.8,
                                "reservation_unused_recurring_fee": item.effective * 0.2})  # fmt: skip
        elif kind == "ri_upfront":
            rows.append(
                base | {"line_item_line_item_type": "Fee", "reservation_reservation_a_r_n": item.commitment}
            )
        elif kind == "sp_usage":  # billed at on-demand, then negated
            covered = {"savings_plan_savings_plan_a_r_n": item.commitment,
                       "savings_plan_savings_plan_effective_cost": item.effective}  # fmt: skip
            rows.append(base | covered | {"line_item_line_item_type": "SavingsPlanCoveredUsage"})
            rows.append(base | covered | {"line_item_line_item_type": "SavingsPlanNegation",
                                          "line_item_unblended_cost": -item.amount,
                                          "savings_plan_savings_plan_effective_cost": 0.0})  # fmt: skip
        elif kind == "sp_fee":
            rows.append(base | {"line_item_line_item_type": "SavingsPlanRecurringFee",
                                "savings_plan_savings_plan_a_r_n": item.commitment,
                                "savings_plan_total_commitment_to_date": item.amount,
                                "savings_plan_used_commitment": item.amount - item.effective})  # fmt: skip
        elif kind == "tax":
            rows.append(base | {"line_item_line_item_type": "Tax"})
        elif kind == "credit":
            rows.append(base | {"line_item_line_item_type": "Credit"})
    return rows


_CUR2_TEXT = """bill_payer_account_id bill_payer_account_name bill_invoice_id bill_invoicing_entity
line_item_usage_account_id line_item_usage_account_name line_item_currency_code line_item_product_code
product_servicecode line_item_line_item_type reservation_reservation_a_r_n savings_plan_savings_plan_a_r_n"""
_CUR2_TIMESTAMPS = """bill_billing_period_start_date bill_billing_period_end_date line_item_usage_start_date
line_item_usage_end_date"""
_CUR2_AMOUNTS = """line_item_unblended_cost pricing_public_on_demand_cost reservation_effective_cost
reservation_unused_amortized_upfront_fee_for_billing_period reservation_unused_recurring_fee
savings_plan_savings_plan_effective_cost savings_plan_total_commitment_to_date savings_plan_used_commitment"""
CUR2_SCHEMA = pa.schema(
    [(name, pa.string()) for name in _CUR2_TEXT.split()]
    + [(name, pa.timestamp("ms", tz="UTC")) for name in _CUR2_TIMESTAMPS.split()]
    + [(name, pa.map_(pa.string(), pa.string())) for name in ("product", "resource_tags")]
    + [(name, pa.float64()) for name in _CUR2_AMOUNTS.split()]
)


def usage_in_period(period: str, amount: float, **extra: Any) -> list[dict[str, Any]]:
    """One usage line item of `amount` in `period` (YYYY-MM)."""
    row = cur2_rows([Item("usage", 3, TEAM_A, EC2, None, amount)])[0]
    year, month = int(period[:4]), int(period[5:])
    row |= {
        "bill_billing_period_start_date": f"{period}-01T00:00:00Z",
        "bill_billing_period_end_date": f"{year + month // 12}-{month % 12 + 1:02d}-01T00:00:00Z",
        "line_item_usage_start_date": f"{period}-03T00:00:00Z",
        "line_item_usage_end_date": f"{period}-03T01:00:00Z",
    }
    return [row | extra]


def cur2_table(rows: list[dict[str, Any]]) -> pa.Table:
    converted = []
    for row in rows:
        typed = dict(row)
        for name in CUR2_SCHEMA.names:
            if pa.types.is_timestamp(CUR2_SCHEMA.field(name).type):
                typed[name] = datetime.fromisoformat(str(row[name]).replace("Z", "+00:00"))
        typed["product"] = list(row["product"].items())
        typed["resource_tags"] = list(row["resource_tags"].items())
        converted.append(typed)
    return pa.Table.from_pylist(converted, schema=CUR2_SCHEMA)


def focus_rows(items: list[Item]) -> list[dict[str, Any]]:
    """TRUTH as AWS's FOCUS export states it: covered usage billed 0 at its effective cost; the unused part of a
    recurring commitment fee as an `Unused` usage row carrying the fee; upfront fees as One-Time purchases."""
    rows = []
    for item in items:
        row: dict[str, Any] = {
            "BillingAccountId": PAYER,
            "BillingAccountName": "payer",
            "BillingCurrency": "USD",
            "BillingPeriodStart": "2024-11-01T00:00:00Z",
            "BillingPeriodEnd": "2024-12-01T00:00:00Z",
            "ChargePeriodStart": _stamp(item.day),
            "ChargePeriodEnd": _stamp(item.day).replace("T00", "T01"),
            "ProviderName": "AWS",
            "InvoiceIssuerName": "Amazon Web Services, Inc.",
            "SubAccountId": item.account,
            "ServiceName": item.service,
            "Tags": f'{{"user:po": "{item.po}"}}' if item.po else None,
            "BilledCost": item.amount,
            "EffectiveCost": item.amount,
            "ChargeCategory": "Usage",
            "CommitmentDiscountId": item.commitment,
            "CommitmentDiscountStatus": None,
            "CommitmentDiscountType": None,
        }
        commitment_type = "Savings Plan" if item.commitment == SP_1 else "Reserved Instance"
        if item.kind in ("ri_usage", "sp_usage"):
            row |= {"BilledCost": 0.0, "EffectiveCost": item.effective, "CommitmentDiscountStatus": "Used",
                    "CommitmentDiscountType": commitment_type}  # fmt: skip
        elif item.kind in ("ri_fee", "sp_fee"):
            row |= {"EffectiveCost": item.effective, "CommitmentDiscountStatus": "Unused",
                    "CommitmentDiscountType": commitment_type}  # fmt: skip
        elif item.kind == "ri_upfront":
            row |= {
                "ChargeCategory": "Purchase",
                "EffectiveCost": 0.0,
                "CommitmentDiscountType": commitment_type,
            }
        elif item.kind == "tax":
            row["ChargeCategory"] = "Tax"
        elif item.kind == "credit":
            row["ChargeCategory"] = "Credit"
        rows.append(row)
    return rows


def focus_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows)


def aws_source_toml(
    endpoint: str, export_type: str, export_name: str, prefix: str = "exports", extra: str = ""
) -> str:
    return f"""
[[sources]]
kind = "aws_cur"
name = "aws"
export_type = "{export_type}"
bucket = "{BUCKET}"
prefix = "{prefix}"
export_name = "{export_name}"
region = "us-east-1"
endpoint_url = "{endpoint}"
max_attempts = 2
{extra}
"""


def aws_project(root: Path, endpoint: str, export_type: str, export_name: str, extra: str = "") -> Path:
    pos = [po("PO-1001", total_amount="100.00"), po("PO-1002", total_amount="50.00")]
    sources = aws_source_toml(endpoint, export_type, export_name, extra=extra)
    return make_project(root, {}, pos, sources_toml=sources)
