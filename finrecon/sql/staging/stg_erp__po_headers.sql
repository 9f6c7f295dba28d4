-- grain: one ERP purchase order (validated header), with its comparison key
select
    -- ids
    po_number,
    normalize_po_number(po_number, getvariable('po_default_prefix')) as po_number_norm,
    vendor_id,
    vendor_name,
    po_type,
    cost_center,
    parent_po_number,
    -- amounts
    currency,
    total_amount,
    -- status and dates
    status,
    erp_status,
    valid_from,
    valid_to,
    requested_at,
    approved_at,
    issued_at
from erp_po_headers
