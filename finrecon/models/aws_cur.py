"""AWS Cost and Usage Report shapes: the CUR 2.0 columns staging reads, and legacy CUR names mapped onto them.

Legacy CUR columns drift month to month (the manifest's column list is the truth) and are named two ways:
`lineItem/UnblendedCost` in CSV, `line_item_unblended_cost` in Parquet. Both become the CUR 2.0 snake-case
name; resource tags (`resourceTags/user:CostCenter`, `resource_tags_user_cost_center`) are gathered into one
`resource_tags` object as CUR 2.0 delivers it.
"""

from __future__ import annotations

import re

# Every CUR 2.0 column `sql/staging/stg_aws__cur2.sql` reads. A delivery without one gets it as NULL, so a month
# without Savings Plans (whose CUR has no savings_plan_* columns) still maps.
CUR2_COLUMNS: tuple[str, ...] = (
    "bill_billing_period_start_date",
    "bill_billing_period_end_date",
    "bill_invoice_id",
    "bill_invoicing_entity",
    "bill_payer_account_id",
    "bill_payer_account_name",
    "line_item_availability_zone",
    "line_item_currency_code",
    "line_item_line_item_description",
    "line_item_line_item_type",
    "line_item_product_code",
    "line_item_resource_id",
    "line_item_unblended_cost",
    "line_item_usage_account_id",
    "line_item_usage_account_name",
    "line_item_usage_amount",
    "line_item_usage_end_date",
    "line_item_usage_start_date",
    "pricing_public_on_demand_cost",
    "pricing_term",
    "pricing_unit",
    "product",  # CUR 2.0's map of product attributes (JSON text once read): ServiceName from `product_name`
    "product_product_name",  # legacy CUR's product/ProductName; CUR 2.0 has it only in `product`
    "product_region_code",
    "product_sku",
    "reservation_effective_cost",
    "reservation_reservation_a_r_n",
    "reservation_unused_amortized_upfront_fee_for_billing_period",
    "reservation_unused_recurring_fee",
    "resource_tags",
    "savings_plan_savings_plan_a_r_n",
    "savings_plan_savings_plan_effective_cost",
    "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment",
)

# Legacy CSV categories whose snake-case prefix is not simply the category split at capitals.
_LEGACY_CATEGORIES = {"lineItem": "line_item", "savingsPlan": "savings_plan", "costCategory": "cost_category"}
_TAG_CSV = re.compile(r"^resourceTags/(?P<key>.+)$")
_TAG_PARQUET = re.compile(r"^resource_tags_(?P<key>.+)$")


def _snake(word: str) -> str:
    """`UnblendedCost` → `unblended_cost`, `ARN` → `a_r_n` (AWS's own Parquet spelling of acronyms)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", word).lower()


def legacy_column(name: str) -> str:
    """The CUR 2.0 snake-case name of a legacy CUR column (CSV `category/Name` or Parquet snake case)."""
    if "/" not in name:
        return name
    category, _, field = name.partition("/")
    prefix = _LEGACY_CATEGORIES.get(category, _snake(category))
    return f"{prefix}_{_snake(field)}"


def legacy_tag_key(name: str) -> str | None:
    """The tag key a legacy resource-tag column carries, in AWS's `user:` / `aws:` namespace form; else None.

    CSV keeps the key as typed (`resourceTags/user:CostCenter` → `user:CostCenter`); Parquet has only the
    lower-cased form (`resource_tags_user_cost_center` → `user:cost_center`).
    """
    csv_match = _TAG_CSV.match(name)
    if csv_match:
        return csv_match.group("key")
    parquet_match = _TAG_PARQUET.match(name)
    if parquet_match:
        key = parquet_match.group("key")
        for namespace in ("user", "aws"):
            if key.startswith(namespace + "_"):
                return f"{namespace}:{key.removeprefix(namespace + '_')}"
        return key
    return None
