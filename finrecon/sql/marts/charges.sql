-- grain: one charge row as landed (one row of one input file), with the PO it is allocated to, its validity
-- and the reason (DESIGN §4). A view over the lake: the resolution joins small tables, the charges are not copied.
-- publish: view
with landed as (
    select
        *,
        -- dates
        cast(ChargePeriodStart as date) as x_charge_date,
        strftime(coalesce(BillingPeriodStart, ChargePeriodStart), '%Y-%m') as x_billing_period
    from lake_charges
),

candidates as (
    select
        landed.*,
        int_charge_po_tags.po_tag_key,
        int_charge_po_tags.po_tag_value,
        -- precedence: the PO tag, then the ERP's po_cloud_mapping, then the config's allocation rules
        coalesce(
            int_charge_po_tags.po_number_norm, int_charge_po_mapping.po_number_norm, int_charge_po_rules.po_number_norm
        ) as po_number_norm,
        case
            when int_charge_po_tags.po_number_norm is not null then 'tag'
            when int_charge_po_mapping.po_number_norm is not null
                then 'mapping:' || int_charge_po_mapping.po_number || '/' || int_charge_po_mapping.line_number
            when int_charge_po_rules.rule_name is not null then 'rule:' || int_charge_po_rules.rule_name
        end as po_source,
        -- the PO line (int_charge_po_mapping only offers a tagged charge rows of its own PO)
        int_charge_po_mapping.line_number as po_line_number,
        int_charge_po_mapping.match_column || '=' || int_charge_po_mapping.match_value as po_line_match
    from landed
    left join int_charge_po_tags on int_charge_po_tags.Tags = landed.Tags
    left join int_charge_po_mapping
        on int_charge_po_mapping.x_charge_date = landed.x_charge_date
        and int_charge_po_mapping.BillingAccountId is not distinct from landed.BillingAccountId
        and int_charge_po_mapping.SubAccountId is not distinct from landed.SubAccountId
        and int_charge_po_mapping.InvoiceIssuerName is not distinct from landed.InvoiceIssuerName
        and int_charge_po_mapping.CommitmentDiscountId is not distinct from landed.CommitmentDiscountId
        and int_charge_po_mapping.Tags is not distinct from landed.Tags
    left join int_charge_po_rules
        on int_charge_po_tags.Tags is null
        and int_charge_po_rules.ProviderName is not distinct from landed.ProviderName
        and int_charge_po_rules.BillingAccountId is not distinct from landed.BillingAccountId
        and int_charge_po_rules.BillingAccountName is not distinct from landed.BillingAccountName
        and int_charge_po_rules.SubAccountId is not distinct from landed.SubAccountId
        and int_charge_po_rules.SubAccountName is not distinct from landed.SubAccountName
        and int_charge_po_rules.ServiceName is not distinct from landed.ServiceName
        and int_charge_po_rules.ServiceCategory is not distinct from landed.ServiceCategory
        and int_charge_po_rules.RegionId is not distinct from landed.RegionId
        and int_charge_po_rules.ResourceId is not distinct from landed.ResourceId
        and int_charge_po_rules.InvoiceIssuerName is not distinct from landed.InvoiceIssuerName
        and int_charge_po_rules.x_resource_group is not distinct from landed.x_resource_group
        and int_charge_po_rules.Tags is not distinct from landed.Tags
),

resolved as (
    select
        candidates.*,
        int_purchase_orders.po_number as erp_po_number,
        case
            when candidates.po_number_norm is null then null
            when int_purchase_orders.po_number is null then 'unknown_po'
            when int_purchase_orders.status = 'cancelled' then 'cancelled'
            when int_purchase_orders.status = 'closed' then 'closed'
            when candidates.x_charge_date < int_purchase_orders.valid_from then 'not_yet_valid'
            when candidates.x_charge_date > int_purchase_orders.valid_to then 'expired'
        end as invalid_reason
    from candidates
    left join int_purchase_orders on int_purchase_orders.po_number_norm = candidates.po_number_norm
)

select
    * exclude (
        po_tag_key, po_tag_value, po_number_norm, po_source, po_line_number, po_line_match, erp_po_number,
        invalid_reason
    ),
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
    po_tag_value as x_po_tag_value,
    po_line_number as x_po_line_number,
    po_line_match as x_po_line_match,
    -- data quality: reported, never corrected (values stay as delivered)
    -- (the same list as macros.sql's quality_flags, which data_quality uses: a published view cannot call a temp macro)
    list_filter([
        case when ChargeCategory = 'Usage' and ListCost is null then 'missing_list_cost' end,
        case when ListCost < ContractedCost then 'list_below_contracted' end,
        case when ChargeCategory = 'Purchase' and CommitmentDiscountId is not null and EffectiveCost > 0
            then 'commitment_purchase_with_effective_cost' end,
        case when ChargeCategory = 'Usage' and ListCost >= 0 and EffectiveCost > ListCost then 'negative_savings' end
    ], lambda flag: flag is not null) as x_quality_flags
from resolved
