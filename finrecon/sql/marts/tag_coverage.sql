-- grain: charge day × provider × billing account × sub-account × service × billing currency, up to as_of;
-- costs are Σ EffectiveCost (billed_* columns: the same split of Σ BilledCost)
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
    -- counts
    sum(charge_count) as charge_count,
    getvariable('as_of') as as_of
from charges_to_date
group by all
order by charge_date, provider_name, billing_account_id, sub_account_id, service_name, billing_currency
