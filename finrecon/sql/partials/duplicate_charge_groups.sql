-- grain: one charge content (the hash of every FOCUS attribute and amount that identifies a charge) found in more
-- than one input file, with its charge key (provider name × month of ChargePeriodStart). Every copy of a charge
-- has the same ProviderName and ChargePeriodStart, so a group lies within one charge key: the groups of a key are
-- a function of that key's rows alone, kept in the state file and recomputed only when a lake partition holding
-- rows of the key changed (warehouse/partials.py). Reads `partial_input`: every row of the keys to recompute.
-- Two passes: one hash per row, grouped with only the hash of its file (cheap: two integers per row, measured
-- twice as fast as grouping every column at 10M rows); then the few hashes seen in more than one file, in full.
with row_hashes as (
    select
        hash(
            ProviderName, BillingAccountId, SubAccountId, ChargePeriodStart, ChargePeriodEnd, ChargeCategory,
            ChargeDescription, ServiceName, SkuId, ResourceId, CommitmentDiscountId, PricingQuantity, BilledCost,
            EffectiveCost, Tags
        ) as row_hash,
        hash(x_source_file) as file_hash
    from partial_input
    where x_source_file is not null
),

copied as (  -- a superset of the duplicated hashes (two file names with one hash would only be missed here)
    select row_hash
    from row_hashes
    group by row_hash
    having min(file_hash) <> max(file_hash)
),

hashed as (
    select
        hash(
            ProviderName, BillingAccountId, SubAccountId, ChargePeriodStart, ChargePeriodEnd, ChargeCategory,
            ChargeDescription, ServiceName, SkuId, ResourceId, CommitmentDiscountId, PricingQuantity, BilledCost,
            EffectiveCost, Tags
        ) as row_hash,
        partial_input.*
    from partial_input
)

select
    -- charge key
    any_value(ProviderName) as charge_key_provider,
    strftime(any_value(ChargePeriodStart), '%Y-%m') as charge_key_month,
    -- the group, as duplicate_charges publishes it (before the reporting-currency rate, which may change nightly)
    row_hash::varchar as row_hash,
    any_value(ProviderName) as provider_name,
    any_value(x_billing_period) as billing_period,
    any_value(ChargePeriodStart) as charge_period_start,
    any_value(x_charge_date) as charge_date,
    any_value(ServiceName) as service_name,
    any_value(ResourceId) as resource_id,
    any_value(BilledCost) as billed_cost_each,
    count(*) as copies,
    count(distinct x_source_file) as files,
    list_sort(list(distinct x_source_file)) as source_files,
    sum(BilledCost) - any_value(BilledCost) as billed_cost_in_extra_copies,
    any_value(BillingCurrency) as billing_currency
from hashed
where row_hash in (select row_hash from copied)
group by row_hash
having count(distinct x_source_file) > 1
