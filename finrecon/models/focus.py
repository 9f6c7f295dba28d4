"""The FOCUS column catalogue: the canonical charge columns and their logical types.

Every landed charge carries all of these columns (FOCUS 1.2 names; absent optional columns are NULL), so files
of FOCUS 1.0, 1.1 and 1.2 land into one uniform lake schema.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    STRING = "string"
    DECIMAL = "decimal"
    TIMESTAMP = "timestamp"
    JSON = "json"


FOCUS_COLUMNS: dict[str, Kind] = {
    "AvailabilityZone": Kind.STRING,
    "BilledCost": Kind.DECIMAL,
    "BillingAccountId": Kind.STRING,
    "BillingAccountName": Kind.STRING,
    "BillingAccountType": Kind.STRING,
    "BillingCurrency": Kind.STRING,
    "BillingPeriodEnd": Kind.TIMESTAMP,
    "BillingPeriodStart": Kind.TIMESTAMP,
    "CapacityReservationId": Kind.STRING,
    "CapacityReservationStatus": Kind.STRING,
    "ChargeCategory": Kind.STRING,
    "ChargeClass": Kind.STRING,
    "ChargeDescription": Kind.STRING,
    "ChargeFrequency": Kind.STRING,
    "ChargePeriodEnd": Kind.TIMESTAMP,
    "ChargePeriodStart": Kind.TIMESTAMP,
    "CommitmentDiscountCategory": Kind.STRING,
    "CommitmentDiscountId": Kind.STRING,
    "CommitmentDiscountName": Kind.STRING,
    "CommitmentDiscountQuantity": Kind.DECIMAL,
    "CommitmentDiscountStatus": Kind.STRING,
    "CommitmentDiscountType": Kind.STRING,
    "CommitmentDiscountUnit": Kind.STRING,
    "ConsumedQuantity": Kind.DECIMAL,
    "ConsumedUnit": Kind.STRING,
    "ContractedCost": Kind.DECIMAL,
    "ContractedUnitPrice": Kind.DECIMAL,
    "EffectiveCost": Kind.DECIMAL,
    "InvoiceId": Kind.STRING,
    "InvoiceIssuerName": Kind.STRING,
    "ListCost": Kind.DECIMAL,
    "ListUnitPrice": Kind.DECIMAL,
    "PricingCategory": Kind.STRING,
    "PricingCurrency": Kind.STRING,
    "PricingCurrencyContractedUnitPrice": Kind.DECIMAL,
    "PricingCurrencyEffectiveCost": Kind.DECIMAL,
    "PricingCurrencyListUnitPrice": Kind.DECIMAL,
    "PricingQuantity": Kind.DECIMAL,
    "PricingUnit": Kind.STRING,
    "ProviderName": Kind.STRING,
    "PublisherName": Kind.STRING,
    "RegionId": Kind.STRING,
    "RegionName": Kind.STRING,
    "ResourceId": Kind.STRING,
    "ResourceName": Kind.STRING,
    "ResourceType": Kind.STRING,
    "ServiceCategory": Kind.STRING,
    "ServiceName": Kind.STRING,
    "ServiceSubcategory": Kind.STRING,
    "SkuId": Kind.STRING,
    "SkuMeter": Kind.STRING,
    "SkuPriceDetails": Kind.JSON,
    "SkuPriceId": Kind.STRING,
    "SubAccountId": Kind.STRING,
    "SubAccountName": Kind.STRING,
    "SubAccountType": Kind.STRING,
    "Tags": Kind.JSON,
}

# Columns a file must have (else the whole file fails, naming the column) and whose values may not be NULL.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
    "ChargePeriodStart",
    "ChargeCategory",
    "ProviderName",
    "BillingAccountId",
)

# Renamed columns across FOCUS versions: older/newer name -> the name we store.
COLUMN_ALIASES: dict[str, str] = {
    "ServiceProviderName": "ProviderName",  # 1.3 replaces ProviderName
}

# Enumerations we depend on, canonical spelling; input is matched case-insensitively.
ENUMS: dict[str, tuple[str, ...]] = {
    "ChargeCategory": ("Usage", "Purchase", "Tax", "Credit", "Adjustment"),
    "CommitmentDiscountStatus": ("Used", "Unused"),
    "ChargeFrequency": ("One-Time", "Recurring", "Usage-Based"),
    "CommitmentDiscountCategory": ("Spend", "Usage"),
    "PricingCategory": ("Standard", "Dynamic", "Committed", "Other"),
}
# Of those, the ones where an unknown value quarantines the row (the marts depend on them).
STRICT_ENUMS: tuple[str, ...] = ("ChargeCategory", "CommitmentDiscountStatus")

CURRENCY_COLUMNS: tuple[str, ...] = ("BillingCurrency", "PricingCurrency")

# Extension columns the pipeline itself adds to a landed charge (lineage) or derives in the models (lower case).
# A delivered column of one of these names would shadow the pipeline's own (a spoofed `x_source_file`, a second
# `x_po_number` in the charges view), so a FOCUS file carrying one fails, naming it.
RESERVED_COLUMNS: frozenset[str] = frozenset(
    {
        # lineage, added at landing
        "x_source",
        "x_source_file",
        "x_source_row",
        "x_run_id",
        # derived in the models (staging, the charges view, charges_daily)
        "x_charge_date",
        "x_billing_period",
        "x_po_number",
        "x_po_status",
        "x_po_reason",
        "x_po_source",
        "x_po_tag_key",
        "x_po_tag_value",
        "x_po_line_number",
        "x_po_line_match",
        "x_quality_flags",
        "x_reporting_currency",
        "x_reporting_fx_rate",
        "x_reporting_fx_rate_date",
        "x_billed_cost_reporting",
        "x_effective_cost_reporting",
        "x_on_demand_equivalent_cost",
        "x_on_demand_equivalent_cost_reporting",
    }
)
