-- grain: one ERP PO that names a parent PO (`parent_po_number`: a release of a blanket PO), with the link checked
-- and its amount in the parent's currency at the latest FX rate on or before the release date (issued_at, else
-- valid_from); NULL when there is no rate, never 1.0. A broken link is reported here, the release itself stays a PO.
with releases as (
    select
        po_number,
        parent_po_number,
        normalize_po_number(parent_po_number, getvariable('po_default_prefix')) as parent_po_number_norm,
        status,
        currency,
        total_amount,
        coalesce(issued_at, valid_from) as release_date
    from stg_erp__po_headers
    where parent_po_number is not null
),

linked as (
    select
        releases.*,
        parents.po_number as erp_parent_po_number,
        parents.currency as parent_currency,
        case
            when parents.po_number is null then 'parent_unknown'
            when parents.po_number = releases.po_number then 'self_reference'
            when parents.po_type <> 'blanket' then 'parent_not_blanket'
            else 'ok'
        end as link_status
    from releases
    left join int_purchase_orders as parents on parents.po_number_norm = releases.parent_po_number_norm
),

converted as (
    select
        linked.*,
        case when linked.currency = linked.parent_currency then 1.0 else int_fx_rates.rate end as fx_rate,
        case when linked.currency <> linked.parent_currency then int_fx_rates.rate_date end as fx_rate_date
    from linked
    asof left join int_fx_rates
        on int_fx_rates.from_currency = linked.currency
        and int_fx_rates.to_currency = linked.parent_currency
        and linked.release_date >= int_fx_rates.rate_date
)

select
    -- keys
    po_number,
    coalesce(erp_parent_po_number, parent_po_number) as parent_po_number,
    link_status,
    status as po_status,
    release_date,
    -- amounts
    currency as po_currency,
    total_amount as release_amount,
    parent_currency,
    converted.fx_rate,
    converted.fx_rate_date,
    total_amount * converted.fx_rate as release_amount_parent_currency,
    -- a cancelled release gives its amount back to the blanket
    link_status = 'ok' and status <> 'cancelled' as counts_against_ceiling,
    -- reporting currency: the release amount at the as_of rate (reporting_fx_rates)
    reporting_fx_rates.reporting_currency,
    reporting_fx_rates.fx_rate as reporting_fx_rate,
    reporting_fx_rates.fx_rate_date as reporting_fx_rate_date,
    total_amount * reporting_fx_rates.fx_rate as release_amount_reporting
from converted
left join reporting_fx_rates
    on reporting_fx_rates.rate_day = getvariable('as_of')
    and reporting_fx_rates.from_currency = converted.currency
order by parent_po_number, po_number
