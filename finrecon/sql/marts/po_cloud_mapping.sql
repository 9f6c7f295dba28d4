-- grain: one row of the ERP's po_cloud_mapping extract as validated (invalid rows are in quarantine): a condition
-- on charges that maps them to a PO line, with the rank that settles a charge several rows match
select * exclude (po_number_norm, tag_key_norm)
from stg_erp__po_cloud_mapping
order by po_number, line_number, specificity_rank, match_column, match_value
