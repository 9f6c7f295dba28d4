-- grain: one PO line (po_number × line_number) as validated
select * exclude (po_number_norm)
from stg_erp__po_lines
