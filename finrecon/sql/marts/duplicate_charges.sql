-- grain: one charge content (every FOCUS attribute and amount that identifies a charge) found in more than one
-- input file: the same line delivered twice by overlapping files. Reported, not removed: which copy is right is
-- for the analyst (or the export's owner) to say
with hashed as (
    select
        hash(
            ProviderName, BillingAccountId, SubAccountId, ChargePeriodStart, ChargePeriodEnd, ChargeCategory,
            ChargeDescription, ServiceName, SkuId, ResourceId, CommitmentDiscountId, PricingQuantity, BilledCost,
            EffectiveCost, Tags
        ) as row_hash,
        *
    from charges
)

select
    row_hash::varchar as row_hash,
    any_value(ProviderName) as provider_name,
    any_value(x_billing_period) as billing_period,
    any_value(ChargePeriodStart) as charge_period_start,
    any_value(ServiceName) as service_name,
    any_value(ResourceId) as resource_id,
    any_value(BilledCost) as billed_cost_each,
    count(*) as copies,
    count(distinct x_source_file) as files,
    list_sort(list(distinct x_source_file)) as source_files,
    sum(BilledCost) - any_value(BilledCost) as billed_cost_in_extra_copies
from hashed
group by row_hash
having count(distinct x_source_file) > 1
