-- grain: one distinct combination of the attributes allocation rules can match on (hashed as rule_key)
select
    hash(
        ProviderName, BillingAccountId, BillingAccountName, SubAccountId, SubAccountName, ServiceName,
        ServiceCategory, RegionId, ResourceId, InvoiceIssuerName, Tags
    ) as rule_key,
    ProviderName,
    BillingAccountId,
    BillingAccountName,
    SubAccountId,
    SubAccountName,
    ServiceName,
    ServiceCategory,
    RegionId,
    ResourceId,
    InvoiceIssuerName,
    Tags
from stg_focus__charges
group by all
