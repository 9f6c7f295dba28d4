-- grain: one resource (provider × ResourceId) × billing currency whose PO allocation drifted up to as_of: it carried a valid PO,
-- then (on every later charge day, to its last) no PO tag (`lost`), a valid other PO (`changed`), or a PO that
-- cannot pay (`became_invalid`, with the reason). Judged per charge day: a day's allocation is the one most of
-- the resource's BilledCost that day carried. The signal that provisioning bypassed tag enforcement.
-- spend since: Σ BilledCost from the first drifted day to as_of, in the billing currency
with resource_days as (
    select
        ProviderName as provider_name,
        ResourceId as resource_id,
        x_charge_date as charge_date,
        x_po_number as po_number,
        x_po_status as po_status,
        x_po_reason as po_reason,
        max(SubAccountId) as sub_account_id,
        max(ServiceName) as service_name,
        max(ResourceName) as resource_name,
        BillingCurrency as billing_currency,
        sum(BilledCost) as billed_cost
    from charges
    where ResourceId is not null
        and x_charge_date <= getvariable('as_of')
    group by all
),

-- only resources that ever carried a valid PO and more than one allocation can have drifted: the windows below
-- run over those alone (most resources keep one allocation)
candidates as (
    select provider_name, resource_id
    from resource_days
    group by provider_name, resource_id
    having bool_or(po_status = 'valid') and count(distinct {'po': po_number, 'status': po_status}) > 1
),

-- the allocation of each resource day: the one that carried most of its cost (ties: the valid one, then by PO)
daily_allocation as (
    select resource_days.*
    from resource_days
    semi join candidates
        on candidates.provider_name = resource_days.provider_name
        and candidates.resource_id = resource_days.resource_id
    qualify row_number() over (
        partition by provider_name, resource_id, charge_date
        order by abs(billed_cost) desc, po_status = 'valid' desc, po_number
    ) = 1
),

-- runs of consecutive charge days with the same allocation
runs as (
    select
        *,
        row_number() over (partition by provider_name, resource_id order by charge_date)
            - row_number() over (
                partition by provider_name, resource_id, po_number, po_status order by charge_date
            ) as run_key
    from daily_allocation
),

run_spans as (
    select
        provider_name,
        resource_id,
        po_number,
        po_status,
        any_value(po_reason) as po_reason,
        run_key,
        min(charge_date) as first_day,
        max(charge_date) as last_day
    from runs
    group by provider_name, resource_id, po_number, po_status, run_key
),

-- the current allocation (the last run) and the one before it
ordered_runs as (
    select
        *,
        row_number() over (partition by provider_name, resource_id order by first_day desc) as recency
    from run_spans
),

drifted as (
    select
        now.provider_name,
        now.resource_id,
        before.po_number as po_number_before,
        before.first_day as valid_from_day,
        before.last_day as last_day_before,
        now.po_number as po_number_now,
        now.po_status as po_status_now,
        now.po_reason as po_reason_now,
        now.first_day as drifted_on,
        case
            when now.po_status = 'untagged' then 'lost'
            when now.po_status = 'valid' then 'changed'
            else 'became_invalid'
        end as drift
    from ordered_runs as now
    inner join ordered_runs as before
        on before.provider_name = now.provider_name
        and before.resource_id = now.resource_id
        and before.recency = 2
    where now.recency = 1
        and before.po_status = 'valid'
        and not (now.po_status = 'valid' and now.po_number = before.po_number)
)

select
    getvariable('as_of') as as_of,
    -- the resource
    drifted.provider_name,
    drifted.resource_id,
    max(resource_days.resource_name) as resource_name,
    max(resource_days.sub_account_id) as sub_account_id,
    max(resource_days.service_name) as service_name,
    -- before and now
    drifted.drift,
    drifted.po_number_before,
    drifted.valid_from_day as before_first_day,
    drifted.last_day_before as before_last_day,
    drifted.po_number_now,
    drifted.po_status_now,
    drifted.po_reason_now,
    drifted.drifted_on,
    -- since the drift
    resource_days.billing_currency,
    sum(resource_days.billed_cost) as billed_cost_since,
    count(distinct resource_days.charge_date) as charge_days_since
from drifted
inner join resource_days
    on resource_days.provider_name = drifted.provider_name
    and resource_days.resource_id = drifted.resource_id
    and resource_days.charge_date >= drifted.drifted_on
group by all
order by billed_cost_since desc, drifted.provider_name, drifted.resource_id
