-- grain: provider × billing account × billing month × service, Usage charges up to as_of;
-- coverage_ratio = committed ÷ (committed + on-demand), Σ EffectiveCost
with usage_to_date as (
    select *
    from charges_daily
    where ChargeCategory = 'Usage'
        and x_charge_date <= getvariable('as_of')
)

select
    -- keys
    ProviderName as provider_name,
    BillingAccountId as billing_account_id,
    x_billing_period as billing_month,
    ServiceName as service_name,
    -- amounts
    coalesce(sum(EffectiveCost) filter (where CommitmentDiscountStatus = 'Used'), 0) as committed_cost,
    coalesce(sum(EffectiveCost) filter (where CommitmentDiscountId is null), 0) as on_demand_cost,
    coalesce(sum(EffectiveCost) filter (where CommitmentDiscountStatus = 'Unused'), 0) as unused_commitment_cost,
    case when committed_cost + on_demand_cost <> 0 then committed_cost / (committed_cost + on_demand_cost) end
        as coverage_ratio,
    getvariable('as_of') as as_of
from usage_to_date
group by all
order by provider_name, billing_account_id, billing_month, service_name
