-- grain: month the PO was requested (else issued, else valid from) × vendor, over the ERP POs
-- Procurement KPIs from the PO dates: how long requests take to be approved and issued, how many POs were
-- emergencies, and how old the POs still open at as_of are. Days are calendar days; an average skips POs
-- without the dates it needs. (Receipt and invoice KPIs need the receipt and invoice extracts.)
with pos as (
    select
        *,
        strftime(coalesce(requested_at, issued_at, valid_from), '%Y-%m') as kpi_month
    from int_purchase_orders
)

select
    kpi_month,
    vendor_id,
    max(vendor_name) as vendor_name,
    count(*) as po_count,
    avg(date_diff('day', requested_at, approved_at)) as avg_approval_days,
    avg(date_diff('day', requested_at, issued_at)) as avg_issue_days,
    max(date_diff('day', requested_at, issued_at)) as max_issue_days,
    count(*) filter (where po_type = 'emergency') as emergency_po_count,
    count(*) filter (where po_type = 'emergency') / count(*) as emergency_po_rate,
    count(*) filter (where status = 'open') as open_po_count,
    avg(date_diff('day', coalesce(issued_at, valid_from), getvariable('as_of'))) filter (where status = 'open')
        as avg_open_po_age_days,
    max(date_diff('day', coalesce(issued_at, valid_from), getvariable('as_of'))) filter (where status = 'open')
        as max_open_po_age_days,
    getvariable('as_of') as as_of
from pos
group by kpi_month, vendor_id
