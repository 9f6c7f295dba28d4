-- grain: one pair of ERP POs (po_number < other_po_number) that may be one purchase raised twice: the same vendor
-- and currency, total amounts within max(erp.duplicates.amount_tolerance_amount, amount_tolerance_ratio × the
-- larger), validity periods that overlap, neither cancelled, neither a release of the other (a blanket PO and its
-- release are meant to be alike). The evidence is for a person to judge: amounts,
-- dates, and how alike the POs' line descriptions are (Jaro-Winkler, 1 = identical; NULL without lines)
with candidates as (
    select
        po_number,
        vendor_id,
        vendor_name,
        cost_center,
        currency,
        total_amount,
        status,
        valid_from,
        valid_to,
        coalesce(issued_at, requested_at) as raised_at,
        parent_po_number
    from int_purchase_orders
    where status <> 'cancelled'
),

descriptions as (
    select po_number, string_agg(lower(trim(description)), ' ' order by line_number) as description
    from stg_erp__po_lines
    where description is not null
    group by po_number
),

pairs as (
    select
        a.vendor_id,
        a.vendor_name,
        a.currency,
        a.po_number,
        b.po_number as other_po_number,
        a.total_amount,
        b.total_amount as other_total_amount,
        round(abs(a.total_amount - b.total_amount), 6) as amount_difference,  -- cents, not float noise
        greatest(
            getvariable('duplicate_tolerance_amount'),
            getvariable('duplicate_tolerance_ratio') * greatest(abs(a.total_amount), abs(b.total_amount))
        ) as amount_tolerance,
        a.status,
        b.status as other_status,
        a.cost_center,
        b.cost_center as other_cost_center,
        a.valid_from,
        a.valid_to,
        b.valid_from as other_valid_from,
        b.valid_to as other_valid_to,
        a.raised_at,
        b.raised_at as other_raised_at
    from candidates as a
    inner join candidates as b
        on b.vendor_id = a.vendor_id
        and b.currency = a.currency
        and b.po_number > a.po_number
        and a.valid_from <= b.valid_to
        and b.valid_from <= a.valid_to
        and a.parent_po_number is distinct from b.po_number
        and b.parent_po_number is distinct from a.po_number
)

select
    'same_vendor_amount_overlapping_validity' as rule,
    pairs.* exclude (amount_tolerance),
    pairs.amount_tolerance,
    greatest(pairs.valid_from, pairs.other_valid_from) as overlap_from,
    least(pairs.valid_to, pairs.other_valid_to) as overlap_to,
    jaro_winkler_similarity(da.description, db.description) as description_similarity,
    getvariable('as_of') as as_of
from pairs
left join descriptions as da on da.po_number = pairs.po_number
left join descriptions as db on db.po_number = pairs.other_po_number
where pairs.amount_difference <= pairs.amount_tolerance
order by pairs.vendor_id, pairs.po_number, pairs.other_po_number
