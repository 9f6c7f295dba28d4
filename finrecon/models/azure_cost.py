"""Azure cost-details export shapes (ActualCost / AmortizedCost, EA and MCA): the columns staging reads.

Column names vary in case and by agreement (`benefitId` / `BenefitId`, `SubscriptionId` / `SubscriptionGuid`,
`CostInBillingCurrency` / `Cost` / `PreTaxCost`, `BillingCurrency` / `BillingCurrencyCode`); the connector matches
them case-insensitively to these names and adds the absent ones as NULL.
"""

from __future__ import annotations

AZURE_COST_COLUMNS: tuple[str, ...] = (
    "AvailabilityZone",
    "BenefitId",
    "BenefitName",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingCurrencyCode",
    "BillingPeriodEndDate",
    "BillingPeriodStartDate",
    "ChargeType",
    "ConsumedService",
    "Cost",
    "CostCenter",
    "CostInBillingCurrency",
    "Date",
    "Frequency",
    "InvoiceId",
    "MeterCategory",
    "PreTaxCost",
    "PricingModel",
    "PublisherName",
    "Quantity",
    "ReservationId",
    "ReservationName",
    "ResourceGroup",
    "ResourceId",
    "ResourceLocation",
    "ResourceName",
    "SubscriptionGuid",
    "SubscriptionId",
    "SubscriptionName",
    "Tags",
    "UnitOfMeasure",
)

# FOCUS export columns staging reads beyond the FOCUS catalogue (Microsoft's x_ extensions).
AZURE_FOCUS_EXTRA_COLUMNS: tuple[str, ...] = ("x_ResourceGroupName",)

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
