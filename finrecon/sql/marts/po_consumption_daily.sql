-- grain: PO × PO line (NULL when no po_cloud_mapping line claimed the charge) × charge date × billing currency,
-- for valid charges up to as_of: BilledCost; its value in the PO currency at the latest FX rate on or before the
-- charge date (NULL when there is none: never 1.0); and in the reporting currency at the day's reporting_fx_rates
-- rate
with valid_charges as (
    select
        x_po_number as po_number,
        x_po_line_number as line_number,
        x_charge_date as charge_date,
        BillingCurrency as billing_currency,
        sum(BilledCost) as billed_cost,
        sum(charge_count) as charge_count
    from charges_daily
    where x_po_status = 'valid'
        and x_charge_date <= getvariable('as_of')
    group by all
),

with_po_currency as (
    select valid_charges.*, stg_erp__po_headers.currency as po_currency
    from valid_charges
    inner join stg_erp__po_headers on stg_erp__po_headers.po_number = valid_charges.po_number
),

converted as (
    select
        with_po_currency.*,
        case when with_po_currency.billing_currency = with_po_currency.po_currency then 1.0 else int_fx_rates.rate end
            as fx_rate,
        case when with_po_currency.billing_currency <> with_po_currency.po_currency then int_fx_rates.rate_date end
            as fx_rate_date
    from with_po_currency
    asof left join int_fx_rates
        on int_fx_rates.from_currency = with_po_currency.billing_currency
        and int_fx_rates.to_currency = with_po_currency.po_currency
        and with_po_currency.charge_date >= int_fx_rates.rate_date
)

select
    converted.po_number,
    converted.line_number,
    converted.charge_date,
    converted.billing_currency,
    converted.po_currency,
    converted.charge_count,
    converted.billed_cost,
    converted.fx_rate,
    converted.fx_rate_date,
    converted.billed_cost * converted.fx_rate as consumed_amount,
    reporting_fx_rates.reporting_currency,
    reporting_fx_rates.fx_rate as reporting_fx_rate,
    reporting_fx_rates.fx_rate_date as reporting_fx_rate_date,
    converted.billed_cost * reporting_fx_rates.fx_rate as billed_cost_reporting
from converted
left join reporting_fx_rates
    on reporting_fx_rates.rate_day = converted.charge_date
    and reporting_fx_rates.from_currency = converted.billing_currency
