-- grain: one PO line (po_number × line_number)
select
    po_number,
    normalize_po_number(po_number, getvariable('po_default_prefix')) as po_number_norm,
    line_number,
    description,
    quantity,
    unit_price,
    amount
from erp_po_lines
