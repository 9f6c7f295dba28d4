-- grain: provider × billing account × billing month × service, for the services the eligibility map
-- (commitments.eligible_services) lists, Usage charges up to as_of.
-- coverage_ratio = covered ÷ eligible, both on-demand-equivalent cost (ContractedCost, else ListCost, else
-- EffectiveCost: what the usage would cost without commitment discounts): covered = usage a commitment paid
-- (CommitmentDiscountStatus Used); eligible = covered + on-demand usage (no commitment, PricingCategory Standard
-- or absent). Spot (Dynamic), unused commitment rows and ineligible services are in neither; never ÷ total spend.
with eligible_usage as (
    select charges_daily.*
    from charges_daily
    inner join cfg_commitment_eligibility
        on cfg_commitment_eligibility.provider_name = charges_daily.ProviderName
        and cfg_commitment_eligibility.service_name = charges_daily.ServiceName
    where charges_daily.ChargeCategory = 'Usage'
        and charges_daily.x_charge_date <= getvariable('as_of')
),

classified as (
    select
        *,
        case
            when CommitmentDiscountStatus = 'Used' then 'covered'
            when CommitmentDiscountId is null and coalesce(PricingCategory, 'Standard') = 'Standard' then 'on_demand'
            when CommitmentDiscountStatus = 'Unused' then 'unused'
            else 'not_eligible'
        end as usage_class
    from eligible_usage
)

select
    -- keys
    ProviderName as provider_name,
    BillingAccountId as billing_account_id,
    x_billing_period as billing_month,
    ServiceName as service_name,
    BillingCurrency as billing_currency,
    -- on-demand-equivalent cost (the coverage basis)
    coalesce(sum(x_on_demand_equivalent_cost) filter (where usage_class = 'covered'), 0) as covered_cost,
    coalesce(sum(x_on_demand_equivalent_cost) filter (where usage_class = 'on_demand'), 0) as uncovered_cost,
    covered_cost + uncovered_cost as eligible_cost,
    case when eligible_cost <> 0 then covered_cost / eligible_cost end as coverage_ratio,
    -- Σ EffectiveCost (what was paid)
    coalesce(sum(EffectiveCost) filter (where usage_class = 'covered'), 0) as committed_cost,
    coalesce(sum(EffectiveCost) filter (where usage_class = 'on_demand'), 0) as on_demand_cost,
    coalesce(sum(EffectiveCost) filter (where usage_class = 'unused'), 0) as unused_commitment_cost,
    coalesce(sum(EffectiveCost) filter (where usage_class = 'not_eligible'), 0) as not_eligible_cost,
    -- reporting currency
    any_value(x_reporting_currency) as reporting_currency,
    bool_or(x_reporting_fx_rate is null) as reporting_fx_missing,
    max(x_reporting_fx_rate_date) as reporting_fx_rate_date,
    strict_sum(case when usage_class = 'covered' then x_on_demand_equivalent_cost_reporting else 0 end)
        as covered_cost_reporting,
    strict_sum(case when usage_class = 'on_demand' then x_on_demand_equivalent_cost_reporting else 0 end)
        as uncovered_cost_reporting,
    strict_sum(case when usage_class in ('covered', 'on_demand') then x_on_demand_equivalent_cost_reporting else 0 end)
        as eligible_cost_reporting,
    strict_sum(case when usage_class = 'covered' then x_effective_cost_reporting else 0 end)
        as committed_cost_reporting,
    strict_sum(case when usage_class = 'on_demand' then x_effective_cost_reporting else 0 end)
        as on_demand_cost_reporting,
    strict_sum(case when usage_class = 'unused' then x_effective_cost_reporting else 0 end)
        as unused_commitment_cost_reporting,
    strict_sum(case when usage_class = 'not_eligible' then x_effective_cost_reporting else 0 end)
        as not_eligible_cost_reporting,
    getvariable('as_of') as as_of
from classified
group by provider_name, billing_account_id, billing_month, service_name, billing_currency
order by provider_name, billing_account_id, billing_month, service_name, billing_currency
