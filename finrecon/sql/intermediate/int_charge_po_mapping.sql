-- grain: one distinct combination of the attributes po_cloud_mapping matches on (billing account, sub-account,
-- invoice issuer, commitment, Tags) × charge date, among charges that some mapping row matches, with the one row
-- that applies (support table of the `charges` view). A charge with a PO tag only takes a line from rows of its
-- own PO; one without a PO tag is allocated to the row's PO (before allocation rules). Several rows match: the
-- lowest specificity_rank wins, then the lowest PO number, then the lowest line number.
-- publish: table
with mapping as (
    select *
    from stg_erp__po_cloud_mapping
    where po_number_norm is not null
),

charge_keys as (
    select distinct BillingAccountId, SubAccountId, InvoiceIssuerName, CommitmentDiscountId, Tags, x_charge_date
    from stg_focus__charges
    where exists (select 1 from mapping)
),

tag_entries as (
    select Tags, unnest(map_entries(tags_map(Tags))) as entry
    from (select distinct Tags from charge_keys where Tags is not null)
),

tag_rows as (
    select tag_entries.Tags, mapping.*
    from tag_entries
    inner join mapping
        on mapping.tag_key_norm = normalize_tag_key(tag_entries.entry.key)
        and mapping.match_value = tag_entries.entry.value
),

-- one equality join per match column (a join on OR-ed conditions would compare every key with every row)
candidates as (
    select charge_keys.*, mapping.*
    from charge_keys
    inner join mapping on mapping.match_column = 'BillingAccountId' and mapping.match_value = charge_keys.BillingAccountId
    union all
    select charge_keys.*, mapping.*
    from charge_keys
    inner join mapping on mapping.match_column = 'SubAccountId' and mapping.match_value = charge_keys.SubAccountId
    union all
    select charge_keys.*, mapping.*
    from charge_keys
    inner join mapping on mapping.match_column = 'InvoiceIssuerName' and mapping.match_value = charge_keys.InvoiceIssuerName
    union all
    select charge_keys.*, mapping.*
    from charge_keys
    inner join mapping
        on mapping.match_column = 'CommitmentDiscountId' and mapping.match_value = charge_keys.CommitmentDiscountId
    union all
    select charge_keys.*, tag_rows.* exclude (Tags)
    from charge_keys
    inner join tag_rows on tag_rows.Tags = charge_keys.Tags
),

applicable as (
    select candidates.*, int_charge_po_tags.po_number_norm is not null as has_po_tag
    from candidates
    left join int_charge_po_tags on int_charge_po_tags.Tags = candidates.Tags
    where (candidates.valid_from is null or candidates.x_charge_date >= candidates.valid_from)
        and (candidates.valid_to is null or candidates.x_charge_date <= candidates.valid_to)
        and (int_charge_po_tags.po_number_norm is null or int_charge_po_tags.po_number_norm = candidates.po_number_norm)
)

select
    -- the charge attributes
    BillingAccountId,
    SubAccountId,
    InvoiceIssuerName,
    CommitmentDiscountId,
    Tags,
    x_charge_date,
    -- the mapping row that applies
    po_number,
    po_number_norm,
    line_number,
    match_column,
    match_value,
    has_po_tag
from applicable
qualify row_number() over (
    partition by BillingAccountId, SubAccountId, InvoiceIssuerName, CommitmentDiscountId, Tags, x_charge_date
    order by specificity_rank, po_number_norm, line_number, match_column, match_value
) = 1
