-- grain: month × vendor; PO KPIs by the month the PO was requested (else issued, else valid from), invoice KPIs
-- by the invoice month. Procurement KPIs from the ERP: how long requests take to be approved and issued, how
-- many POs were emergencies, how old the POs still open at as_of are, how long after issue the first goods
-- receipt came, how many invoices matched without a person (every applicable invoice_match row `matched`), and
-- PO accuracy: of the POs invoiced in the month, the share whose invoices disagree with them (a two_way or
-- three_way row `amount_mismatch` or `over_po`).
-- Days are calendar days; an average skips POs without the dates it needs.
with pos as (
    select
        *,
        strftime(coalesce(requested_at, issued_at, valid_from), '%Y-%m') as kpi_month
    from int_purchase_orders
),

first_receipts as (
    select erp_po_number as po_number, min(receipt_date) as first_receipt_date
    from int_goods_receipts
    group by erp_po_number
),

po_figures as (
    select
        pos.kpi_month,
        pos.vendor_id,
        max(pos.vendor_name) as vendor_name,
        count(*) as po_count,
        avg(date_diff('day', pos.requested_at, pos.approved_at)) as avg_approval_days,
        avg(date_diff('day', pos.requested_at, pos.issued_at)) as avg_issue_days,
        max(date_diff('day', pos.requested_at, pos.issued_at)) as max_issue_days,
        count(*) filter (where pos.po_type = 'emergency') as emergency_po_count,
        count(*) filter (where pos.po_type = 'emergency') / count(*) as emergency_po_rate,
        count(*) filter (where pos.status = 'open') as open_po_count,
        avg(date_diff('day', coalesce(pos.issued_at, pos.valid_from), getvariable('as_of')))
            filter (where pos.status = 'open') as avg_open_po_age_days,
        max(date_diff('day', coalesce(pos.issued_at, pos.valid_from), getvariable('as_of')))
            filter (where pos.status = 'open') as max_open_po_age_days,
        count(first_receipts.first_receipt_date) as received_po_count,
        avg(date_diff('day', pos.issued_at, first_receipts.first_receipt_date)) as avg_po_to_receipt_days,
        max(date_diff('day', pos.issued_at, first_receipts.first_receipt_date)) as max_po_to_receipt_days
    from pos
    left join first_receipts on first_receipts.po_number = pos.po_number
    group by pos.kpi_month, pos.vendor_id
),

invoice_outcomes as (
    select
        invoice_month,
        vendor_id,
        invoice_number,
        bool_and(status = 'matched') filter (where status <> 'not_applicable') as auto_matched
    from invoice_match
    group by invoice_month, vendor_id, invoice_number
),

invoice_figures as (
    select
        invoice_month as kpi_month,
        vendor_id,
        count(*) as invoice_count,
        count(*) filter (where auto_matched) as auto_matched_invoice_count
    from invoice_outcomes
    group by invoice_month, vendor_id
),

-- PO accuracy: each PO once per invoice month × vendor, disputed when any of its invoices disagrees with it
invoiced_pos as (
    select
        invoice_month as kpi_month,
        vendor_id,
        erp_po_number,
        bool_or(match_type in ('two_way', 'three_way') and status in ('amount_mismatch', 'over_po')) as disputed
    from invoice_match
    where erp_po_number is not null
    group by invoice_month, vendor_id, erp_po_number
),

po_accuracy as (
    select
        kpi_month,
        vendor_id,
        count(*) as invoiced_po_count,
        count(*) filter (where disputed) as disputed_po_count
    from invoiced_pos
    group by kpi_month, vendor_id
),

vendors as (
    select vendor_id, max(vendor_name) as vendor_name
    from int_purchase_orders
    group by vendor_id
)

select
    coalesce(po_figures.kpi_month, invoice_figures.kpi_month) as kpi_month,
    coalesce(po_figures.vendor_id, invoice_figures.vendor_id) as vendor_id,
    coalesce(po_figures.vendor_name, vendors.vendor_name) as vendor_name,
    -- PO KPIs (request month)
    coalesce(po_figures.po_count, 0) as po_count,
    po_figures.avg_approval_days,
    po_figures.avg_issue_days,
    po_figures.max_issue_days,
    coalesce(po_figures.emergency_po_count, 0) as emergency_po_count,
    po_figures.emergency_po_rate,
    coalesce(po_figures.open_po_count, 0) as open_po_count,
    po_figures.avg_open_po_age_days,
    po_figures.max_open_po_age_days,
    coalesce(po_figures.received_po_count, 0) as received_po_count,
    po_figures.avg_po_to_receipt_days,
    po_figures.max_po_to_receipt_days,
    -- invoice KPIs (invoice month)
    coalesce(invoice_figures.invoice_count, 0) as invoice_count,
    coalesce(invoice_figures.auto_matched_invoice_count, 0) as auto_matched_invoice_count,
    invoice_figures.auto_matched_invoice_count / invoice_figures.invoice_count as invoice_auto_match_rate,
    -- PO accuracy (invoice month)
    coalesce(po_accuracy.invoiced_po_count, 0) as invoiced_po_count,
    coalesce(po_accuracy.disputed_po_count, 0) as disputed_po_count,
    po_accuracy.disputed_po_count / po_accuracy.invoiced_po_count as po_dispute_rate,
    getvariable('as_of') as as_of
from po_figures
full outer join invoice_figures
    on invoice_figures.kpi_month = po_figures.kpi_month
    and invoice_figures.vendor_id = po_figures.vendor_id
left join vendors on vendors.vendor_id = coalesce(po_figures.vendor_id, invoice_figures.vendor_id)
left join po_accuracy
    on po_accuracy.kpi_month = invoice_figures.kpi_month
    and po_accuracy.vendor_id = invoice_figures.vendor_id
order by kpi_month, vendor_id
