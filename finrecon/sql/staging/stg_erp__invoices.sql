-- grain: one supplier invoice (vendor_id × invoice_number, validated), with its PO comparison key
select
    -- ids
    invoice_number,
    vendor_id,
    po_number,
    normalize_po_number(po_number, getvariable('po_default_prefix')) as po_number_norm,
    po_line_number,
    -- amounts (invoice currency)
    currency,
    amount,
    quantity,
    unit_price,
    -- dates
    invoice_date,
    strftime(invoice_date, '%Y-%m') as invoice_month,
    -- the provider's side, for the cloud match
    cloud_invoice_id,
    billing_period,
    provider_name
from erp_invoices
