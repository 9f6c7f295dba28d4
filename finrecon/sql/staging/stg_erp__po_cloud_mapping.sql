-- grain: one row of the ERP's po_cloud_mapping extract: charges whose `match_column` equals `match_value` (on a
-- charge date within valid_from … valid_to, either end open when empty) belong to PO line po_number/line_number
select
    -- target
    po_number,
    normalize_po_number(po_number, getvariable('po_default_prefix')) as po_number_norm,
    line_number,
    -- condition
    match_column,
    case when match_column like 'tag:%' then normalize_tag_key(substr(match_column, 5)) end as tag_key_norm,
    match_value,
    valid_from,
    valid_to,
    -- when several rows match one charge, the lowest rank wins (then the lowest PO number and line):
    -- a commitment names one purchase, a tag one workload, a sub-account or billing account ever more spend
    case
        when match_column = 'CommitmentDiscountId' then 1
        when match_column like 'tag:%' then 2
        when match_column = 'SubAccountId' then 3
        when match_column = 'BillingAccountId' then 4
        when match_column = 'InvoiceIssuerName' then 5
    end as specificity_rank
from erp_po_cloud_mapping
