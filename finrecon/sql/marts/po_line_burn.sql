-- grain: PO × line for this run's as_of: every po_lines line of an ERP PO, any line a po_cloud_mapping row names
-- that po_lines lacks, and one row per PO with line_number NULL for its valid consumption no mapping row claimed,
-- so that Σ consumed_amount over a PO's rows = its po_burn consumed_amount. Consumption: valid charges up to as_of
-- in the PO currency at the latest FX rate on or before the charge date (po_consumption_daily); NULL when a
-- rate is missing, never 1.0.
with consumption as (
    select
        po_number,
        line_number,
        case when count(*) filter (where fx_rate is null) = 0 then sum(consumed_amount) end as consumed_amount,
        count(*) filter (where fx_rate is null) > 0 as fx_missing,
        cast(sum(charge_count) as bigint) as charge_count,
        min(charge_date) as first_charge_date,
        max(charge_date) as last_charge_date
    from po_consumption_daily
    group by po_number, line_number
),

-- po_lines names its PO as the lines extract writes it: matched to the header by the comparison key
lines as (
    select int_purchase_orders.po_number, stg_erp__po_lines.line_number, stg_erp__po_lines.description,
        stg_erp__po_lines.amount
    from stg_erp__po_lines
    inner join int_purchase_orders on int_purchase_orders.po_number_norm = stg_erp__po_lines.po_number_norm
),

keyed as (
    select po_number, line_number from lines
    union
    select po_number, line_number from consumption
),

measured as (
    select
        keyed.po_number,
        keyed.line_number,
        lines.line_number is not null as in_po_lines,
        lines.description,
        stg_erp__po_headers.currency as po_currency,
        lines.amount as line_amount,
        case when not coalesce(consumption.fx_missing, false) then coalesce(consumption.consumed_amount, 0) end
            as consumed_amount,
        coalesce(consumption.charge_count, 0) as charge_count,
        consumption.first_charge_date,
        consumption.last_charge_date,
        coalesce(consumption.fx_missing, false) as fx_missing
    from keyed
    inner join stg_erp__po_headers on stg_erp__po_headers.po_number = keyed.po_number
    left join lines on lines.po_number = keyed.po_number and lines.line_number = keyed.line_number
    left join consumption
        on consumption.po_number = keyed.po_number
        and consumption.line_number is not distinct from keyed.line_number
),

in_po_currency as (
    select
        -- keys
        getvariable('as_of') as as_of,
        po_number,
        line_number,
        case
            when line_number is null then 'unallocated'
            when not in_po_lines then 'unknown_line'
            else 'line'
        end as line_state,
        description,
        -- amounts (PO currency)
        po_currency,
        line_amount,
        consumed_amount,
        line_amount - consumed_amount as remaining_amount,
        consumed_amount / nullif(line_amount, 0) as consumed_ratio,
        -- activity
        charge_count,
        first_charge_date,
        last_charge_date,
        fx_missing
    from measured
)

select
    in_po_currency.*,
    -- reporting currency: the PO amounts at the as_of rate (reporting_fx_rates)
    reporting_fx_rates.reporting_currency,
    reporting_fx_rates.fx_rate as reporting_fx_rate,
    reporting_fx_rates.fx_rate_date as reporting_fx_rate_date,
    in_po_currency.line_amount * reporting_fx_rates.fx_rate as line_amount_reporting,
    in_po_currency.consumed_amount * reporting_fx_rates.fx_rate as consumed_amount_reporting,
    in_po_currency.remaining_amount * reporting_fx_rates.fx_rate as remaining_amount_reporting
from in_po_currency
left join reporting_fx_rates
    on reporting_fx_rates.rate_day = getvariable('as_of')
    and reporting_fx_rates.from_currency = in_po_currency.po_currency
order by in_po_currency.po_number, in_po_currency.line_number nulls last
