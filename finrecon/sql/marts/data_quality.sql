-- grain: provider × billing period × quality flag (x_quality_flags of the charges up to as_of)
-- How many charges and how much cost carry each flag; the values themselves are never corrected
with flagged as (
    select ProviderName, x_billing_period, unnest(x_quality_flags) as quality_flag, BilledCost, EffectiveCost
    from charges
    where len(x_quality_flags) > 0
        and x_charge_date <= getvariable('as_of')
)

select
    ProviderName as provider_name,
    x_billing_period as billing_period,
    quality_flag,
    count(*) as charge_count,
    sum(BilledCost) as billed_cost,
    sum(EffectiveCost) as effective_cost,
    getvariable('as_of') as as_of
from flagged
group by all
