-- grain: commitment (provider × billing account × CommitmentDiscountId), over every charge up to as_of
-- The amortisation check: what was billed for a commitment (its purchases and fees: Σ BilledCost of every row
-- carrying its id, covered usage being billed 0 or netted to 0) against what its usage amortised (Σ EffectiveCost
-- of its Used and Unused rows). Over a whole term they are equal; during the term more is billed than amortised
-- (an upfront purchase is spread over months); more amortised than billed means the data does not add up.
with per_commitment as (
    select
        ProviderName as provider_name,
        BillingAccountId as billing_account_id,
        CommitmentDiscountId as commitment_discount_id,
        max(CommitmentDiscountType) as commitment_discount_type,
        max(BillingCurrency) as billing_currency,
        count(distinct BillingCurrency) as currencies,
        sum(BilledCost) as billed_cost,
        coalesce(sum(EffectiveCost) filter (
            where ChargeCategory = 'Usage' and CommitmentDiscountStatus in ('Used', 'Unused')
        ), 0) as amortized_cost,
        strict_sum(x_billed_cost_reporting) as billed_cost_reporting,
        strict_sum(case
            when ChargeCategory = 'Usage' and CommitmentDiscountStatus in ('Used', 'Unused')
                then x_effective_cost_reporting
            else 0
        end) as amortized_cost_reporting,
        min(x_charge_date) as first_charge_date,
        max(x_charge_date) as last_charge_date
    from charges_daily
    where CommitmentDiscountId is not null
        and x_charge_date <= getvariable('as_of')
    group by all
)

select
    provider_name,
    billing_account_id,
    commitment_discount_id,
    commitment_discount_type,
    billing_currency,
    billed_cost,
    amortized_cost,
    billed_cost - amortized_cost as unamortized_cost,
    case
        when currencies > 1 then 'mixed_currencies'
        when abs(billed_cost - amortized_cost) <= greatest(0.01, abs(billed_cost) * 0.0001) then 'balanced'
        when billed_cost > amortized_cost then 'not_yet_amortized'
        else 'over_amortized'
    end as amortization_status,
    getvariable('reporting_currency') as reporting_currency,
    billed_cost_reporting,
    amortized_cost_reporting,
    billed_cost_reporting - amortized_cost_reporting as unamortized_cost_reporting,
    first_charge_date,
    last_charge_date,
    getvariable('as_of') as as_of
from per_commitment
