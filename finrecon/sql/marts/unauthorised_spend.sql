-- grain: PO (as the charges name it) × reason × currency, up to as_of: spend outside a valid PO.
-- Reasons: the charge's PO is `cancelled`, `closed`, `expired` (charge day after valid_to), `not_yet_valid` (before
-- valid_from) or `unknown_po` (no such PO in the ERP): Σ BilledCost in the billing currency; `over_amount`: what
-- the PO's valid charges consumed beyond its total_amount, in the PO currency, from the day the running total
-- passed 100 % (a PO with a missing FX rate is left out: its running total is unknown, po_burn says so)
with outside_a_valid_po as (
    select
        x_po_number as po_number,
        x_po_reason as reason,
        BillingCurrency as currency,
        sum(BilledCost) as amount,
        any_value(x_reporting_currency) as reporting_currency,
        sum(x_billed_cost_reporting) as amount_reporting,
        count(*) filter (where x_billed_cost_reporting is null) > 0 as reporting_rate_missing,
        count(distinct x_charge_date) as charge_days,
        min(x_charge_date) as first_charge_date,
        max(x_charge_date) as last_charge_date,
        cast(sum(charge_count) as bigint) as charge_count
    from charges_daily
    where x_po_status = 'invalid'
        and x_charge_date <= getvariable('as_of')
    group by x_po_number, x_po_reason, BillingCurrency
),

consumed_by_day as (
    select
        po_consumption_daily.po_number,
        po_consumption_daily.charge_date,
        po_consumption_daily.po_currency,
        sum(po_consumption_daily.consumed_amount) as consumed_amount,
        count(*) filter (where po_consumption_daily.consumed_amount is null) > 0 as fx_missing,
        cast(sum(po_consumption_daily.charge_count) as bigint) as charge_count
    from po_consumption_daily
    group by po_consumption_daily.po_number, po_consumption_daily.charge_date, po_consumption_daily.po_currency
),

running as (
    select
        consumed_by_day.*,
        stg_erp__po_headers.total_amount,
        sum(consumed_by_day.consumed_amount) over (
            partition by consumed_by_day.po_number order by consumed_by_day.charge_date
        ) as consumed_to_date,
        bool_or(consumed_by_day.fx_missing) over (partition by consumed_by_day.po_number) as po_fx_missing
    from consumed_by_day
    inner join stg_erp__po_headers on stg_erp__po_headers.po_number = consumed_by_day.po_number
),

excess_by_day as (
    select
        *,
        greatest(consumed_to_date - total_amount, 0)
            - greatest(consumed_to_date - consumed_amount - total_amount, 0) as excess_amount
    from running
    where not po_fx_missing
),

over_amount as (
    select
        po_number,
        'over_amount' as reason,
        po_currency as currency,
        sum(excess_amount) as amount,
        count(*) as charge_days,
        min(charge_date) as first_charge_date,
        max(charge_date) as last_charge_date,
        sum(charge_count) as charge_count
    from excess_by_day
    where excess_amount > 0
    group by po_number, po_currency
),

over_amount_reporting as (
    select
        over_amount.*,
        reporting_fx_rates.reporting_currency,
        over_amount.amount * reporting_fx_rates.fx_rate as amount_reporting,
        reporting_fx_rates.fx_rate is null as reporting_rate_missing
    from over_amount
    left join reporting_fx_rates
        on reporting_fx_rates.rate_day = getvariable('as_of')
        and reporting_fx_rates.from_currency = over_amount.currency
),

unioned as (
    select
        po_number, reason, currency, amount, reporting_currency, amount_reporting, reporting_rate_missing, charge_days,
        first_charge_date, last_charge_date, charge_count
    from outside_a_valid_po
    union all
    select
        po_number, reason, currency, amount, reporting_currency, amount_reporting, reporting_rate_missing, charge_days,
        first_charge_date, last_charge_date, charge_count
    from over_amount_reporting
)

select
    getvariable('as_of') as as_of,
    -- keys
    unioned.po_number,
    stg_erp__po_headers.vendor_id,
    stg_erp__po_headers.vendor_name,
    stg_erp__po_headers.cost_center,
    stg_erp__po_headers.status as po_status,
    stg_erp__po_headers.valid_from,
    stg_erp__po_headers.valid_to,
    unioned.reason,
    -- amounts
    unioned.currency,
    unioned.amount,
    stg_erp__po_headers.total_amount as po_total_amount,
    stg_erp__po_headers.currency as po_currency,
    unioned.reporting_currency,
    case when not unioned.reporting_rate_missing then unioned.amount_reporting end as amount_reporting,
    -- when
    unioned.charge_days,
    unioned.first_charge_date,
    unioned.last_charge_date,
    unioned.charge_count
from unioned
left join stg_erp__po_headers on stg_erp__po_headers.po_number = unioned.po_number
order by unioned.po_number, unioned.reason, unioned.currency
