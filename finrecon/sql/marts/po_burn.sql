-- grain: one row per ERP purchase order for this run's as_of (history across as_of dates: see publish)
-- consumed = Σ BilledCost of the PO's valid charges up to as_of in the PO currency; burn rate = consumption
-- of the trailing window (as_of − N + 1 … as_of, N = report.trailing_days, default 30) ÷ N; *_reporting: the PO
-- amounts at the as_of rate PO currency → reporting currency; consumed_billed_cost: in the billing currency.
-- committed = the PO header version in force at as_of (po_header_history), so a back-dated run judges the
-- amount the PO had then
with consumption as (
    select
        po_number,
        sum(consumed_amount) as converted_amount,
        count(*) filter (where fx_rate is null) as fx_missing_days,
        min(charge_date) filter (where fx_rate is null) as first_fx_missing_date,
        min(billing_currency) filter (where fx_rate is null) as fx_missing_currency,
        coalesce(sum(consumed_amount) filter (
            where charge_date > getvariable('as_of') - getvariable('trailing_days')
        ), 0) as trailing_consumed_amount,
        cast(sum(charge_count) as bigint) as charge_count,
        min(charge_date) as first_charge_date,
        max(charge_date) as last_charge_date,
        case when count(distinct billing_currency) = 1 then min(billing_currency) end as billing_currency,
        case when count(distinct billing_currency) = 1 then sum(billed_cost) end as consumed_billed_cost
    from po_consumption_daily
    group by po_number
),

in_force as (
    select po_number, version, total_amount
    from po_header_history
    where change_kind <> 'removed'
        and coalesce(in_force_from <= getvariable('as_of'), true)
        and coalesce(in_force_to > getvariable('as_of'), true)
),

measured as (
    select
        stg_erp__po_headers.* replace (
            coalesce(in_force.total_amount, stg_erp__po_headers.total_amount) as total_amount
        ),
        in_force.version as committed_amount_version,
        coalesce(po_amendments.raised_without_approval, false) as committed_amount_unapproved,
        coalesce(consumption.fx_missing_days, 0) > 0 as fx_missing,
        case
            when coalesce(consumption.fx_missing_days, 0) = 0 then coalesce(consumption.converted_amount, 0)
        end as consumed_amount,
        case
            when coalesce(consumption.fx_missing_days, 0) = 0 then coalesce(consumption.trailing_consumed_amount, 0)
        end as trailing_consumed_amount,
        consumption.first_fx_missing_date,
        consumption.fx_missing_currency,
        coalesce(consumption.charge_count, 0) as charge_count,
        consumption.first_charge_date,
        consumption.last_charge_date,
        consumption.billing_currency,
        consumption.consumed_billed_cost,
        reporting_fx_rates.reporting_currency,
        reporting_fx_rates.fx_rate as reporting_fx_rate,
        reporting_fx_rates.fx_rate_date as reporting_fx_rate_date
    from stg_erp__po_headers
    left join consumption on consumption.po_number = stg_erp__po_headers.po_number
    left join in_force on in_force.po_number = stg_erp__po_headers.po_number
    left join po_amendments
        on po_amendments.po_number = in_force.po_number
        and po_amendments.version = in_force.version
    left join reporting_fx_rates
        on reporting_fx_rates.rate_day = getvariable('as_of')
        and reporting_fx_rates.from_currency = stg_erp__po_headers.currency
),

rated as (
    select
        *,
        total_amount - consumed_amount as remaining_amount,
        consumed_amount / nullif(total_amount, 0) as consumed_ratio,
        trailing_consumed_amount / getvariable('trailing_days') as burn_rate_daily
    from measured
),

projected as (
    select
        *,
        case
            -- NULL when not burning, or when exhaustion lies more than a century away
            when burn_rate_daily > 0 and remaining_amount / burn_rate_daily <= 36500
                then getvariable('as_of') + cast(greatest(ceil(remaining_amount / burn_rate_daily), 0) as integer)
        end as projected_exhaustion_date
    from rated
)

select
    -- keys
    getvariable('as_of') as as_of,
    po_number,
    vendor_id,
    vendor_name,
    po_type,
    cost_center,
    status as po_status,
    -- amounts (PO currency)
    currency as po_currency,
    total_amount as committed_amount,
    committed_amount_version,
    committed_amount_unapproved,
    consumed_amount,
    remaining_amount,
    consumed_ratio,
    trailing_consumed_amount,
    burn_rate_daily,
    -- dates
    projected_exhaustion_date,
    valid_from,
    valid_to,
    projected_exhaustion_date <= valid_to as exhausts_before_valid_to,
    first_charge_date,
    last_charge_date,
    charge_count,
    -- billing currency (NULL when the PO's charges come in several)
    billing_currency,
    consumed_billed_cost,
    -- reporting currency (as_of rate)
    reporting_currency,
    reporting_fx_rate,
    reporting_fx_rate_date,
    total_amount * reporting_fx_rate as committed_amount_reporting,
    consumed_amount * reporting_fx_rate as consumed_amount_reporting,
    remaining_amount * reporting_fx_rate as remaining_amount_reporting,
    trailing_consumed_amount * reporting_fx_rate as trailing_consumed_amount_reporting,
    burn_rate_daily * reporting_fx_rate as burn_rate_daily_reporting,
    -- state
    case
        when fx_missing then 'fx_missing'
        else coalesce(
            (
                select cast(cast(round(max(cfg_burn_thresholds.threshold) * 100) as integer) as varchar)
                from cfg_burn_thresholds
                where projected.consumed_ratio >= cfg_burn_thresholds.threshold
            ),
            'ok'
        )
    end as threshold_state,
    case
        when fx_missing then
            'no FX rate ' || fx_missing_currency || '->' || currency || ' on or before ' || first_fx_missing_date
    end as error
from projected
order by po_number
