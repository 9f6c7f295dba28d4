-- grain: charge day × provider × billing account × sub-account × service × billing currency, up to as_of;
-- costs are Σ EffectiveCost (billed_* columns: the same split of Σ BilledCost); *_reporting: the same in the
-- reporting currency at the day's rate (reporting_fx_rate, reporting_fx_rate_date; NULL when missing)
with charges_to_date as (
    select *
    from charges_daily
    where x_charge_date <= getvariable('as_of')
)

select
    -- keys
    x_charge_date as charge_date,
    ProviderName as provider_name,
    BillingAccountId as billing_account_id,
    SubAccountId as sub_account_id,
    ServiceName as service_name,
    BillingCurrency as billing_currency,
    -- effective cost split by PO status
    sum(EffectiveCost) as total_cost,
    coalesce(sum(EffectiveCost) filter (where x_po_status = 'valid'), 0) as valid_po_cost,
    coalesce(sum(EffectiveCost) filter (where x_po_status = 'invalid'), 0) as invalid_po_cost,
    coalesce(sum(EffectiveCost) filter (where x_po_status = 'untagged'), 0) as untagged_cost,
    case when sum(EffectiveCost) <> 0 then valid_po_cost / sum(EffectiveCost) end as coverage_ratio,
    -- billed cost split by PO status
    sum(BilledCost) as total_billed_cost,
    coalesce(sum(BilledCost) filter (where x_po_status = 'valid'), 0) as valid_po_billed_cost,
    coalesce(sum(BilledCost) filter (where x_po_status = 'invalid'), 0) as invalid_po_billed_cost,
    coalesce(sum(BilledCost) filter (where x_po_status = 'untagged'), 0) as untagged_billed_cost,
    -- reporting currency
    any_value(x_reporting_currency) as reporting_currency,
    any_value(x_reporting_fx_rate) as reporting_fx_rate,
    any_value(x_reporting_fx_rate_date) as reporting_fx_rate_date,
    any_value(x_reporting_fx_rate) is null as reporting_fx_missing,
    strict_sum(x_effective_cost_reporting) as total_cost_reporting,
    strict_sum(case when x_po_status = 'valid' then x_effective_cost_reporting else 0 end)
        as valid_po_cost_reporting,
    strict_sum(case when x_po_status = 'invalid' then x_effective_cost_reporting else 0 end)
        as invalid_po_cost_reporting,
    strict_sum(case when x_po_status = 'untagged' then x_effective_cost_reporting else 0 end)
        as untagged_cost_reporting,
    strict_sum(x_billed_cost_reporting) as total_billed_cost_reporting,
    strict_sum(case when x_po_status = 'valid' then x_billed_cost_reporting else 0 end)
        as valid_po_billed_cost_reporting,
    strict_sum(case when x_po_status = 'invalid' then x_billed_cost_reporting else 0 end)
        as invalid_po_billed_cost_reporting,
    strict_sum(case when x_po_status = 'untagged' then x_billed_cost_reporting else 0 end)
        as untagged_billed_cost_reporting,
    -- counts
    sum(charge_count) as charge_count,
    getvariable('as_of') as as_of
from charges_to_date
group by all
order by charge_date, provider_name, billing_account_id, sub_account_id, service_name, billing_currency
