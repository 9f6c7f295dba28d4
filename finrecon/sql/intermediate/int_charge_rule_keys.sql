-- grain: one distinct combination of the attributes allocation rules can match on, among charges without a
-- PO tag (the only ones rules apply to); empty, without reading the charges, when no rule is configured
select distinct
    stg_focus__charges.ProviderName,
    stg_focus__charges.BillingAccountId,
    stg_focus__charges.BillingAccountName,
    stg_focus__charges.SubAccountId,
    stg_focus__charges.SubAccountName,
    stg_focus__charges.ServiceName,
    stg_focus__charges.ServiceCategory,
    stg_focus__charges.RegionId,
    stg_focus__charges.ResourceId,
    stg_focus__charges.InvoiceIssuerName,
    stg_focus__charges.x_resource_group,
    stg_focus__charges.Tags
from stg_focus__charges
left join int_charge_po_tags on int_charge_po_tags.Tags = stg_focus__charges.Tags
where int_charge_po_tags.Tags is null
    and exists (select 1 from cfg_allocation_rules)
