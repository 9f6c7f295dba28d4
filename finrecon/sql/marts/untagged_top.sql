-- grain: one resource (the service where a charge names no resource) × PO status × reason, among charges
-- without a valid PO up to as_of; the report.untagged_top_n largest by Σ EffectiveCost, then Σ BilledCost;
-- *_reporting: converted per charge day (NULL when a day's rate is missing)
with unallocated as (
    select
        -- ids
        charges.ProviderName,
        charges.BillingAccountId,
        charges.SubAccountId,
        charges.ServiceName,
        charges.ResourceId,
        charges.ResourceName,
        charges.Tags,
        -- PO resolution
        charges.x_po_status,
        charges.x_po_reason,
        charges.x_po_tag_value,
        -- amounts
        charges.BillingCurrency,
        charges.EffectiveCost,
        charges.BilledCost,
        reporting_fx_rates.fx_rate as reporting_fx_rate,
        -- dates
        charges.x_charge_date
    from charges
    left join reporting_fx_rates
        on reporting_fx_rates.rate_day = charges.x_charge_date
        and reporting_fx_rates.from_currency = charges.BillingCurrency
    where charges.x_po_status in ('untagged', 'invalid')
        and charges.x_charge_date <= getvariable('as_of')
),

-- grain: resource × PO status × reason × Tags value. One aggregation over the charges: a resource has few
-- distinct Tags values, so grouping by them costs little and leaves no distinct aggregate over every charge
per_resource_tags as (
    select
        ProviderName as provider_name,
        BillingAccountId as billing_account_id,
        SubAccountId as sub_account_id,
        ServiceName as service_name,
        coalesce(ResourceId, '(no resource id)') as resource_id,
        x_po_status as po_status,
        x_po_reason as po_reason,
        Tags,
        max(ResourceName) as resource_name,
        max(x_po_tag_value) as po_tag_value,
        max(BillingCurrency) as billing_currency,
        sum(EffectiveCost) as effective_cost,
        sum(BilledCost) as billed_cost,
        strict_sum(EffectiveCost * reporting_fx_rate) as effective_cost_reporting,
        strict_sum(BilledCost * reporting_fx_rate) as billed_cost_reporting,
        count(*) as charge_count,
        min(x_charge_date) as first_charge_date,
        max(x_charge_date) as last_charge_date
    from unallocated
    group by provider_name, billing_account_id, sub_account_id, service_name, resource_id, po_status, po_reason, Tags
),

-- strict_sum of strict_sums: NULL when any charge lacked its rate, as over the charges themselves
per_resource as (
    select
        provider_name,
        billing_account_id,
        sub_account_id,
        service_name,
        resource_id,
        max(resource_name) as resource_name,
        po_status,
        po_reason,
        max(po_tag_value) as po_tag_value,
        list(Tags) as distinct_tags,
        max(billing_currency) as billing_currency,
        sum(effective_cost) as effective_cost,
        sum(billed_cost) as billed_cost,
        strict_sum(effective_cost_reporting) as effective_cost_reporting,
        strict_sum(billed_cost_reporting) as billed_cost_reporting,
        cast(sum(charge_count) as bigint) as charge_count,  -- count(*)'s type, not sum's HUGEINT
        min(first_charge_date) as first_charge_date,
        max(last_charge_date) as last_charge_date
    from per_resource_tags
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
