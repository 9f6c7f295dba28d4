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
        charges.*,
        reporting_fx_rates.fx_rate as reporting_fx_rate
    from charges
    left join reporting_fx_rates
        on reporting_fx_rates.rate_day = charges.x_charge_date
        and reporting_fx_rates.from_currency = charges.BillingCurrency
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
    sum(BilledCost) - any_value(BilledCost) as billed_cost_in_extra_copies,
    any_value(BillingCurrency) as billing_currency,
    getvariable('reporting_currency') as reporting_currency,
    any_value(BilledCost) * any_value(reporting_fx_rate) as billed_cost_each_reporting,
    (sum(BilledCost) - any_value(BilledCost)) * any_value(reporting_fx_rate) as billed_cost_in_extra_copies_reporting
from hashed
group by row_hash
having count(distinct x_source_file) > 1
