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
