-- grain: one blanket PO (po_type = 'blanket') for this run's as_of: its ceiling (total_amount), the releases
-- drawn against it (po_releases, in the blanket's currency) and the valid consumption up to as_of of the blanket
-- itself and of its releases, converted to the blanket's currency at the latest FX rate on or before each charge
-- date (a charge allocated to a release consumes the blanket's ceiling too). NULL when a rate is missing.
with blankets as (
    select po_number, vendor_id, vendor_name, status, currency, total_amount, valid_from, valid_to
    from stg_erp__po_headers
    where po_type = 'blanket'
),

released as (
    select
        parent_po_number as po_number,
        count(*) as release_count,
        case when count(*) filter (where fx_rate is null) = 0 then sum(release_amount_parent_currency) end
            as released_amount,
        count(*) filter (where fx_rate is null) as release_fx_missing_count
    from po_releases
    where counts_against_ceiling
    group by parent_po_number
),

-- the blanket and every release correctly linked to it (a cancelled or closed release has no valid charges)
members as (
    select po_number, po_number as blanket_po_number
    from blankets
    union all
    select po_number, parent_po_number as blanket_po_number
    from po_releases
    where link_status = 'ok'
),

member_consumption as (
    select
        members.blanket_po_number,
        po_consumption_daily.po_number = members.blanket_po_number as is_blanket_itself,
        po_consumption_daily.charge_date,
        po_consumption_daily.billing_currency,
        po_consumption_daily.billed_cost,
        po_consumption_daily.charge_count,
        blankets.currency as blanket_currency
    from po_consumption_daily
    inner join members on members.po_number = po_consumption_daily.po_number
    inner join blankets on blankets.po_number = members.blanket_po_number
),

converted as (
    select
        member_consumption.*,
        case
            when member_consumption.billing_currency = member_consumption.blanket_currency then 1.0
            else int_fx_rates.rate
        end as fx_rate
    from member_consumption
    asof left join int_fx_rates
        on int_fx_rates.from_currency = member_consumption.billing_currency
        and int_fx_rates.to_currency = member_consumption.blanket_currency
        and member_consumption.charge_date >= int_fx_rates.rate_date
),

consumed as (
    select
        blanket_po_number as po_number,
        case when count(*) filter (where fx_rate is null) = 0 then
            sum(case when is_blanket_itself then billed_cost * fx_rate else 0 end)
        end as blanket_consumed_amount,
        case when count(*) filter (where fx_rate is null) = 0 then
            sum(case when not is_blanket_itself then billed_cost * fx_rate else 0 end)
        end as releases_consumed_amount,
        count(*) filter (where fx_rate is null) as consumption_fx_missing_days,
        cast(sum(charge_count) filter (where not is_blanket_itself) as bigint) as releases_charge_count
    from converted
    group by blanket_po_number
),

measured as (
    select
        blankets.*,
        coalesce(released.release_count, 0) as release_count,
        case when coalesce(released.release_fx_missing_count, 0) = 0 then coalesce(released.released_amount, 0) end
            as released_amount,
        case when coalesce(consumed.consumption_fx_missing_days, 0) = 0 then coalesce(consumed.blanket_consumed_amount, 0) end
            as blanket_consumed_amount,
        case when coalesce(consumed.consumption_fx_missing_days, 0) = 0 then coalesce(consumed.releases_consumed_amount, 0) end
            as releases_consumed_amount,
        coalesce(consumed.releases_charge_count, 0) as releases_charge_count,
        coalesce(released.release_fx_missing_count, 0) > 0 or coalesce(consumed.consumption_fx_missing_days, 0) > 0
            as fx_missing
    from blankets
    left join released on released.po_number = blankets.po_number
    left join consumed on consumed.po_number = blankets.po_number
)
,

in_po_currency as (
    select
        -- keys
        getvariable('as_of') as as_of,
        po_number,
        vendor_id,
        vendor_name,
        status as po_status,
        valid_from,
        valid_to,
        -- ceiling and releases (blanket currency)
        currency as po_currency,
        total_amount as ceiling_amount,
        release_count,
        released_amount,
        total_amount - released_amount as remaining_ceiling_amount,
        released_amount > total_amount as releases_exceed_ceiling,
        -- greatest() would skip a NULL: an unknown released amount has an unknown excess
        case when released_amount is not null then greatest(released_amount - total_amount, 0) end as excess_amount,
        -- consumption (blanket currency)
        blanket_consumed_amount,
        releases_consumed_amount,
        releases_charge_count,
        blanket_consumed_amount + releases_consumed_amount as total_consumed_amount,
        (blanket_consumed_amount + releases_consumed_amount) / nullif(total_amount, 0) as consumed_ratio,
        blanket_consumed_amount + releases_consumed_amount > total_amount as consumption_exceeds_ceiling,
        fx_missing
    from measured
)

select
    in_po_currency.*,
    -- reporting currency: the blanket's amounts at the as_of rate (reporting_fx_rates)
    reporting_fx_rates.reporting_currency,
    reporting_fx_rates.fx_rate as reporting_fx_rate,
    reporting_fx_rates.fx_rate_date as reporting_fx_rate_date,
    in_po_currency.ceiling_amount * reporting_fx_rates.fx_rate as ceiling_amount_reporting,
    in_po_currency.released_amount * reporting_fx_rates.fx_rate as released_amount_reporting,
    in_po_currency.remaining_ceiling_amount * reporting_fx_rates.fx_rate as remaining_ceiling_amount_reporting,
    in_po_currency.excess_amount * reporting_fx_rates.fx_rate as excess_amount_reporting,
    in_po_currency.blanket_consumed_amount * reporting_fx_rates.fx_rate as blanket_consumed_amount_reporting,
    in_po_currency.releases_consumed_amount * reporting_fx_rates.fx_rate as releases_consumed_amount_reporting,
    in_po_currency.total_consumed_amount * reporting_fx_rates.fx_rate as total_consumed_amount_reporting
from in_po_currency
left join reporting_fx_rates
    on reporting_fx_rates.rate_day = getvariable('as_of')
    and reporting_fx_rates.from_currency = in_po_currency.po_currency
order by in_po_currency.po_number
