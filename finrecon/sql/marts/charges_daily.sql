-- grain: charge day × provider × billing account × sub-account × service × billing currency × charge category ×
-- pricing category × commitment (id, type, category, status, unit) × PO (number, status, reason, line); all charges.
-- The one pass over the charges that the coverage, burn and commitment marts aggregate further; costs also in
-- the reporting currency at the day's rate (reporting_fx_rates; NULL when the rate is missing)
with daily as (
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
        x_po_line_number,
        -- amounts
        sum(BilledCost) as BilledCost,
        sum(EffectiveCost) as EffectiveCost,
        -- what the usage would have cost without commitment discounts (ContractedCost, else ListCost, else
        -- EffectiveCost): the common basis of commitment coverage
        sum(coalesce(ContractedCost, ListCost, EffectiveCost)) as x_on_demand_equivalent_cost,
        sum(CommitmentDiscountQuantity) as CommitmentDiscountQuantity,
        count(*) as charge_count
    from charges
    group by all
)

select
    daily.*,
    -- reporting currency
    reporting_fx_rates.reporting_currency as x_reporting_currency,
    reporting_fx_rates.fx_rate as x_reporting_fx_rate,
    reporting_fx_rates.fx_rate_date as x_reporting_fx_rate_date,
    daily.BilledCost * reporting_fx_rates.fx_rate as x_billed_cost_reporting,
    daily.EffectiveCost * reporting_fx_rates.fx_rate as x_effective_cost_reporting,
    daily.x_on_demand_equivalent_cost * reporting_fx_rates.fx_rate as x_on_demand_equivalent_cost_reporting
from daily
left join reporting_fx_rates
    on reporting_fx_rates.rate_day = daily.x_charge_date
    and reporting_fx_rates.from_currency = daily.BillingCurrency
