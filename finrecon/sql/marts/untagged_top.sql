-- grain: one resource (the service where a charge names no resource) × PO status × reason, among charges
-- without a valid PO up to as_of; the report.untagged_top_n largest by Σ EffectiveCost, then Σ BilledCost
with unallocated as (
    select *
    from charges
    where x_po_status in ('untagged', 'invalid')
        and x_charge_date <= getvariable('as_of')
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
        list_sort(list_distinct(flatten(list(coalesce(json_keys(Tags), []))))) as tag_keys,
        max(BillingCurrency) as billing_currency,
        sum(EffectiveCost) as effective_cost,
        sum(BilledCost) as billed_cost,
        count(*) as charge_count,
        min(x_charge_date) as first_charge_date,
        max(x_charge_date) as last_charge_date
    from unallocated
    group by provider_name, billing_account_id, sub_account_id, service_name, resource_id, po_status, po_reason
)

select
    row_number() over (
        order by effective_cost desc, billed_cost desc, provider_name, resource_id, po_reason
    ) as rank,
    *,
    getvariable('as_of') as as_of
from per_resource
qualify rank <= getvariable('untagged_top_n')
order by rank
