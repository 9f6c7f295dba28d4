-- grain: one distinct combination of the attributes allocation rules can match on
select distinct
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
