-- grain: one pair of supplier invoices (by invoice_number, then other_invoice_number) that may be one bill
-- paid twice: the same vendor and currency, amounts within max(erp.duplicates.amount_tolerance_amount,
-- amount_tolerance_ratio × the larger), dated at most erp.duplicates.invoice_days_apart days apart (0: the same
-- day), under different invoice numbers. The PO each names is evidence, not a condition: a duplicate is often
-- booked against another PO
with pairs as (
    select
        a.vendor_id,
        a.currency,
        a.invoice_number,
        b.invoice_number as other_invoice_number,
        a.invoice_date,
        b.invoice_date as other_invoice_date,
        abs(date_diff('day', a.invoice_date, b.invoice_date)) as days_apart,
        a.amount,
        b.amount as other_amount,
        round(abs(a.amount - b.amount), 6) as amount_difference,  -- cents, not float noise
        greatest(
            getvariable('duplicate_tolerance_amount'),
            getvariable('duplicate_tolerance_ratio') * greatest(abs(a.amount), abs(b.amount))
        ) as amount_tolerance,
        a.po_number,
        b.po_number as other_po_number,
        a.po_number_norm is not distinct from b.po_number_norm as same_po
    from stg_erp__invoices as a
    inner join stg_erp__invoices as b
        on b.vendor_id = a.vendor_id
        and b.currency = a.currency
        and b.invoice_number > a.invoice_number
        and abs(date_diff('day', a.invoice_date, b.invoice_date)) <= getvariable('duplicate_invoice_days_apart')
)

select
    'same_vendor_amount_date' as rule,
    pairs.*,
    getvariable('as_of') as as_of
from pairs
where pairs.amount_difference <= pairs.amount_tolerance
order by pairs.vendor_id, pairs.invoice_number, pairs.other_invoice_number
