-- grain: one ERP purchase order as validated (canonical status; the ERP's own word in erp_status)
select * exclude (po_number_norm)
from stg_erp__po_headers
