-- grain: one charge row as landed, with the PO it is allocated to, its validity and the reason (DESIGN §4)
with landed as (
    select
        *,
        hash(
            ProviderName, BillingAccountId, BillingAccountName, SubAccountId, SubAccountName, ServiceName,
            ServiceCategory, RegionId, ResourceId, InvoiceIssuerName, Tags
        ) as rule_key
    from stg_focus__charges
),

purchase_orders as (
    -- one ERP PO per comparison key (two ERP numbers that normalise alike: the lowest wins)
    select *
    from stg_erp__po_headers
    qualify row_number() over (partition by po_number_norm order by po_number) = 1
),

candidates as (
    select
        landed.*,
        int_charge_po_tags.po_tag_key,
        int_charge_po_tags.po_tag_value,
        coalesce(int_charge_po_tags.po_number_norm, int_charge_po_rules.po_number_norm) as po_number_norm,
        case
            when int_charge_po_tags.po_number_norm is not null then 'tag'
            when int_charge_po_rules.rule_name is not null then 'rule:' || int_charge_po_rules.rule_name
        end as po_source
    from landed
    left join int_charge_po_tags on int_charge_po_tags.Tags = landed.Tags
    left join int_charge_po_rules
        on int_charge_po_rules.rule_key = landed.rule_key
        and int_charge_po_tags.Tags is null
),

resolved as (
    select
        candidates.*,
        purchase_orders.po_number as erp_po_number,
        case
            when candidates.po_number_norm is null then null
            when purchase_orders.po_number is null then 'unknown_po'
            when purchase_orders.status = 'cancelled' then 'cancelled'
            when purchase_orders.status = 'closed' then 'closed'
            when candidates.x_charge_date < purchase_orders.valid_from then 'not_yet_valid'
            when candidates.x_charge_date > purchase_orders.valid_to then 'expired'
        end as invalid_reason
    from candidates
    left join purchase_orders on purchase_orders.po_number_norm = candidates.po_number_norm
)

select
    * exclude (rule_key, po_tag_key, po_tag_value, po_number_norm, po_source, erp_po_number, invalid_reason),
    -- PO resolution
    coalesce(erp_po_number, po_number_norm) as x_po_number,
    case
        when po_number_norm is null then 'untagged'
        when invalid_reason is not null then 'invalid'
        else 'valid'
    end as x_po_status,
    case
        when po_number_norm is null then 'no_po_tag'
        else coalesce(invalid_reason, po_source)
    end as x_po_reason,
    po_source as x_po_source,
    po_tag_key as x_po_tag_key,
    po_tag_value as x_po_tag_value
from resolved
