-- grain: one resource (the service where a charge names no resource) × PO status × reason, among charges
-- without a valid PO up to as_of; the report.untagged_top_n largest by Σ EffectiveCost, then Σ BilledCost;
-- *_reporting: converted per charge day (NULL when a day's rate is missing)
with unallocated as (
    select charges.*, reporting_fx_rates.fx_rate as reporting_fx_rate
    from charges
    left join reporting_fx_rates
        on reporting_fx_rates.rate_day = charges.x_charge_date
        and reporting_fx_rates.from_currency = charges.BillingCurrency
    where charges.x_po_status in ('untagged', 'invalid')
        and charges.x_charge_date <= getvariable('as_of')
),

per_resource as (
    select
        ProviderName as provider_name,
        BillingAccountId as billing_account_id,
        SubAccountId as sub_account_id,
        ServiceName as service_name,
        coalesce(ResourceId, '(no resource id)') as resource_id,
        max(ResourceName) as resource_name,
        x_po_status as po_status,
        x_po_reason as po_reason,
        max(x_po_tag_value) as po_tag_value,
        list(distinct Tags) as distinct_tags,
        max(BillingCurrency) as billing_currency,
        sum(EffectiveCost) as effective_cost,
        sum(BilledCost) as billed_cost,
        strict_sum(EffectiveCost * reporting_fx_rate) as effective_cost_reporting,
        strict_sum(BilledCost * reporting_fx_rate) as billed_cost_reporting,
        count(*) as charge_count,
        min(x_charge_date) as first_charge_date,
        max(x_charge_date) as last_charge_date
    from unallocated
    group by provider_name, billing_account_id, sub_account_id, service_name, resource_id, po_status, po_reason
),

ranked as (
    select
        row_number() over (
            order by effective_cost desc, billed_cost desc, provider_name, resource_id, po_reason
        ) as rank,
        *
    from per_resource
    qualify rank <= getvariable('untagged_top_n')
)

select
    rank,
    provider_name,
    billing_account_id,
    sub_account_id,
    service_name,
    resource_id,
    resource_name,
    po_status,
    po_reason,
    po_tag_value,
    -- tag keys parsed only for the ranked resources' distinct Tags values
    list_sort(list_distinct(flatten(list_transform(distinct_tags, lambda t: coalesce(json_keys(t), []))))) as tag_keys,
    billing_currency,
    effective_cost,
    billed_cost,
    getvariable('reporting_currency') as reporting_currency,
    effective_cost_reporting,
    billed_cost_reporting,
    charge_count,
    first_charge_date,
    last_charge_date,
    getvariable('as_of') as as_of
from ranked
order by rank
