-- grain: rate day × currency, for every charge day × billing currency in the lake, as_of × every PO and invoice
-- currency, and every day × currency of a provider API reference total.
-- The rate converts that currency into the reporting currency (report.currency) on that day: the latest ERP rate
-- on or before the day (an inverse rate when only the other direction exists), 1.0 for the reporting currency
-- itself, NULL (fx_missing) when there is none: never 1.0
with needed as (
    select distinct cast(ChargePeriodStart as date) as rate_day, BillingCurrency as from_currency
    from lake_charges
    union
    select getvariable('as_of') as rate_day, currency as from_currency
    from stg_erp__po_headers
    union
    select usage_date as rate_day, currency as from_currency
    from reference_totals
    union
    select getvariable('as_of') as rate_day, currency as from_currency
    from stg_erp__invoices
),

converted as (
    select
        needed.rate_day,
        needed.from_currency,
        case when needed.from_currency = getvariable('reporting_currency') then 1.0 else int_fx_rates.rate end
            as fx_rate,
        case when needed.from_currency <> getvariable('reporting_currency') then int_fx_rates.rate_date end
            as fx_rate_date
    from needed
    asof left join int_fx_rates
        on int_fx_rates.from_currency = needed.from_currency
        and int_fx_rates.to_currency = getvariable('reporting_currency')
        and needed.rate_day >= int_fx_rates.rate_date
)

select
    rate_day,
    from_currency,
    getvariable('reporting_currency') as reporting_currency,
    fx_rate,
    fx_rate_date,
    fx_rate is null as fx_missing
from converted
order by rate_day, from_currency
