-- grain: charge day × provider × billing account × sub-account × service × billing currency × charge category ×
-- pricing category × commitment (id, type, category, status, unit) × PO (number, status, reason); all charges.
-- The one pass over the charges that the coverage, burn and commitment marts aggregate further.
select
    -- keys
    x_charge_date,
    x_billing_period,
    ProviderName,
    BillingAccountId,
    SubAccountId,
    ServiceName,
    BillingCurrency,
    ChargeCategory,
    PricingCategory,
    CommitmentDiscountId,
    CommitmentDiscountType,
    CommitmentDiscountCategory,
    CommitmentDiscountStatus,
    CommitmentDiscountUnit,
    x_po_number,
    x_po_status,
    x_po_reason,
    -- amounts
    sum(BilledCost) as BilledCost,
    sum(EffectiveCost) as EffectiveCost,
    sum(CommitmentDiscountQuantity) as CommitmentDiscountQuantity,
    count(*) as charge_count
from charges
group by all
