-- grain: one commitment in the ERP's commitment inventory (term dates FOCUS does not carry, funding PO)
select
    commitment_discount_id,
    term_start,
    term_end,
    po_number,
    normalize_po_number(po_number, getvariable('po_default_prefix')) as po_number_norm,
    description
from erp_commitments
