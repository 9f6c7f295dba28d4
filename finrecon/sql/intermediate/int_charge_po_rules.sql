-- grain: one combination of rule attributes of charges without a PO tag (int_charge_rule_keys), with the
-- first allocation rule whose conditions all hold. Conditions are glob patterns (`*`, `?`), case-sensitive;
-- `tag:<key>` matches the value of that tag key, the key compared like PO keys (case and separators ignored).
-- publish: table
with untagged as (
    select row_number() over () as rule_key, *
    from int_charge_rule_keys
),

condition_results as (
    select
        untagged.rule_key,
        cfg_allocation_conditions.rule_position,
        coalesce(
            case cfg_allocation_conditions.match_column
                when 'ProviderName' then untagged.ProviderName
                when 'BillingAccountId' then untagged.BillingAccountId
                when 'BillingAccountName' then untagged.BillingAccountName
                when 'SubAccountId' then untagged.SubAccountId
                when 'SubAccountName' then untagged.SubAccountName
                when 'ServiceName' then untagged.ServiceName
                when 'ServiceCategory' then untagged.ServiceCategory
                when 'RegionId' then untagged.RegionId
                when 'ResourceId' then untagged.ResourceId
                when 'InvoiceIssuerName' then untagged.InvoiceIssuerName
                when 'ResourceGroup' then untagged.x_resource_group
                else list_filter(
                    map_entries(tags_map(untagged.Tags)),
                    lambda e: normalize_tag_key(e.key) = normalize_tag_key(cfg_allocation_conditions.tag_key)
                )[1].value
            end glob cfg_allocation_conditions.pattern,
            false
        ) as holds
    from untagged
    cross join cfg_allocation_conditions
),

matching_rules as (
    select rule_key, rule_position
    from condition_results
    group by rule_key, rule_position
    having bool_and(holds)
)

select
    untagged.* exclude (rule_key),
    cfg_allocation_rules.rule_name,
    cfg_allocation_rules.po_number,
    normalize_po_number(cfg_allocation_rules.po_number, getvariable('po_default_prefix')) as po_number_norm
from matching_rules
inner join cfg_allocation_rules on cfg_allocation_rules.rule_position = matching_rules.rule_position
inner join untagged on untagged.rule_key = matching_rules.rule_key
qualify row_number() over (partition by matching_rules.rule_key order by matching_rules.rule_position) = 1
