-- grain: billing period × provider × billing account × billing currency, over every published charge (whatever as_of)
-- What this publication says each billing period cost and how much of it a PO covers: the figures whose every
-- published version `billing_period_history` keeps (see publish.py), so a re-delivered month shows its before
-- and after. Not cut at as_of on purpose: a period's figures change only when its charges (or their PO
-- resolution) do, never because the run looked at another date. Costs are Σ EffectiveCost, billed: Σ BilledCost.
select
    -- keys
    x_billing_period as billing_period,
    ProviderName as provider_name,
    BillingAccountId as billing_account_id,
    BillingCurrency as billing_currency,
    -- effective cost split by PO status
    sum(EffectiveCost) as total_cost,
    coalesce(sum(EffectiveCost) filter (where x_po_status = 'valid'), 0) as valid_po_cost,
    coalesce(sum(EffectiveCost) filter (where x_po_status = 'invalid'), 0) as invalid_po_cost,
    coalesce(sum(EffectiveCost) filter (where x_po_status = 'untagged'), 0) as untagged_cost,
    -- billed cost (what the invoice shows)
    sum(BilledCost) as total_billed_cost,
    -- reporting currency, each day at its rate (not kept in billing_period_history: the rates may change)
    any_value(x_reporting_currency) as reporting_currency,
    bool_or(x_reporting_fx_rate is null) as reporting_fx_missing,
    strict_sum(x_effective_cost_reporting) as total_cost_reporting,
    strict_sum(case when x_po_status = 'valid' then x_effective_cost_reporting else 0 end) as valid_po_cost_reporting,
    strict_sum(case when x_po_status = 'invalid' then x_effective_cost_reporting else 0 end)
        as invalid_po_cost_reporting,
    strict_sum(case when x_po_status = 'untagged' then x_effective_cost_reporting else 0 end)
        as untagged_cost_reporting,
    strict_sum(x_billed_cost_reporting) as total_billed_cost_reporting,
    -- counts
    cast(sum(charge_count) as bigint) as charge_count
from charges_daily
group by billing_period, provider_name, billing_account_id, billing_currency
order by billing_period, provider_name, billing_account_id, billing_currency
