-- grain: provider × billing period × quality flag (x_quality_flags of the charges up to as_of)
-- How many charges and how much cost carry each flag; the values themselves are never corrected. The flags
-- need no PO resolution: read from the landed charges (stg_focus__charges, the same rows as `charges`)
with charge_flags as (
    select
        ProviderName,
        x_billing_period,
        x_charge_date,
        BillingCurrency,
        BilledCost,
        EffectiveCost,
        quality_flags(ChargeCategory, ListCost, ContractedCost, CommitmentDiscountId, EffectiveCost) as x_quality_flags
    from stg_focus__charges
    where x_charge_date <= getvariable('as_of')
),

flagged as (
    select
        charge_flags.ProviderName,
        charge_flags.x_billing_period,
        unnest(charge_flags.x_quality_flags) as quality_flag,
        charge_flags.BilledCost,
        charge_flags.EffectiveCost,
        reporting_fx_rates.fx_rate as reporting_fx_rate
    from charge_flags
    left join reporting_fx_rates
        on reporting_fx_rates.rate_day = charge_flags.x_charge_date
        and reporting_fx_rates.from_currency = charge_flags.BillingCurrency
    where len(charge_flags.x_quality_flags) > 0
)

select
    ProviderName as provider_name,
    x_billing_period as billing_period,
    quality_flag,
    count(*) as charge_count,
    sum(BilledCost) as billed_cost,
    sum(EffectiveCost) as effective_cost,
    getvariable('reporting_currency') as reporting_currency,
    strict_sum(BilledCost * reporting_fx_rate) as billed_cost_reporting,
    strict_sum(EffectiveCost * reporting_fx_rate) as effective_cost_reporting,
    getvariable('as_of') as as_of
from flagged
group by all
