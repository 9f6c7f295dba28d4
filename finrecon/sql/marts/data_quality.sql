-- grain: provider × billing period × quality flag (x_quality_flags of the charges up to as_of)
-- How many charges and how much cost carry each flag; the values themselves are never corrected
with flagged as (
    select
        charges.ProviderName,
        charges.x_billing_period,
        unnest(charges.x_quality_flags) as quality_flag,
        charges.BilledCost,
        charges.EffectiveCost,
        reporting_fx_rates.fx_rate as reporting_fx_rate
    from charges
    left join reporting_fx_rates
        on reporting_fx_rates.rate_day = charges.x_charge_date
        and reporting_fx_rates.from_currency = charges.BillingCurrency
    where len(charges.x_quality_flags) > 0
        and charges.x_charge_date <= getvariable('as_of')
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
