-- grain: one ERP purchase order per comparison key (po_number_norm); numbers that normalise alike are
-- quarantined on load, the qualify below only guarantees the grain
-- publish: table
select *
from stg_erp__po_headers
qualify row_number() over (partition by po_number_norm order by po_number) = 1
