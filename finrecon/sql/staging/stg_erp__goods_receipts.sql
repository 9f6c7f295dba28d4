-- grain: one goods receipt (service entry) line: receipt_number × po_number × po_line_number, validated
select
    receipt_number,
    po_number,
    normalize_po_number(po_number, getvariable('po_default_prefix')) as po_number_norm,
    po_line_number,
    receipt_date,
    quantity,
    amount,
    currency
from erp_goods_receipts
