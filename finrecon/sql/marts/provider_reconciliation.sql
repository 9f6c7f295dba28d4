-- grain: reference source × scope × day × currency: a provider API's own daily total (today: Azure's Cost
-- Management query API) next to what the exports landed for the same scope and day.
-- Columns: exported_cost = Σ BilledCost (ActualCost reference) or Σ EffectiveCost (AmortizedCost) of the landed
-- charges of that provider, billing account or subscription and day; status 'matched' when within 0.01 (or
-- 0.01 %), else 'mismatch'; 'not_exported' when no charge of the scope landed that day
with reference as (
    select
        source as reference_source,
        scope,
        dataset,
        usage_date,
        currency,
        max(billing_account_id) as billing_account_id,
        max(subscription_id) as subscription_id,
        sum(cost) as reference_cost
    from reference_totals
    group by all
),

exported as (
    select
        reference.reference_source,
        reference.scope,
        reference.usage_date,
        reference.currency,
        sum(case when reference.dataset = 'AmortizedCost' then daily.EffectiveCost else daily.BilledCost end)
            as exported_cost,
        sum(daily.charge_count) as exported_charge_count
    from reference
    inner join charges_daily as daily
        on daily.ProviderName = 'Microsoft'
        and daily.x_charge_date = reference.usage_date
        and daily.BillingCurrency = reference.currency
        and (
            daily.SubAccountId = reference.subscription_id
            or (reference.subscription_id is null and daily.BillingAccountId = reference.billing_account_id)
        )
    group by all
)

select
    reference.reference_source,
    reference.scope,
    reference.dataset,
    reference.usage_date,
    reference.currency,
    reference.reference_cost,
    coalesce(exported.exported_cost, 0) as exported_cost,
    coalesce(exported.exported_cost, 0) - reference.reference_cost as difference,
    coalesce(exported.exported_charge_count, 0) as exported_charge_count,
    case
        when exported.exported_cost is null then 'not_exported'
        when abs(exported.exported_cost - reference.reference_cost)
            <= greatest(0.01, abs(reference.reference_cost) * 0.0001) then 'matched'
        else 'mismatch'
    end as status,
    reporting_fx_rates.reporting_currency,
    reporting_fx_rates.fx_rate as reporting_fx_rate,
    reporting_fx_rates.fx_rate_date as reporting_fx_rate_date,
    reference.reference_cost * reporting_fx_rates.fx_rate as reference_cost_reporting,
    coalesce(exported.exported_cost, 0) * reporting_fx_rates.fx_rate as exported_cost_reporting,
    (coalesce(exported.exported_cost, 0) - reference.reference_cost) * reporting_fx_rates.fx_rate
        as difference_reporting,
    getvariable('as_of') as as_of
from reference
left join reporting_fx_rates
    on reporting_fx_rates.rate_day = reference.usage_date
    and reporting_fx_rates.from_currency = reference.currency
left join exported
    on exported.reference_source = reference.reference_source
    and exported.scope = reference.scope
    and exported.usage_date = reference.usage_date
    and exported.currency = reference.currency
