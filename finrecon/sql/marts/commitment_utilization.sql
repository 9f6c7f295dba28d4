-- grain: commitment (CommitmentDiscountId) × billing month, charges up to as_of
-- used/unused = Σ EffectiveCost of Usage rows with CommitmentDiscountStatus Used/Unused; coverage_ratio =
-- used ÷ (used + on-demand usage in the same provider, billing account, month and services the commitment
-- covered); funded_po_number = the PO on the commitment's Purchase rows
with commitment_charges as (
    select *
    from charges_daily
    where CommitmentDiscountId is not null
        and x_charge_date <= getvariable('as_of')
),

monthly as (
    select
        ProviderName as provider_name,
        BillingAccountId as billing_account_id,
        CommitmentDiscountId as commitment_discount_id,
        max(CommitmentDiscountType) as commitment_discount_type,
        max(CommitmentDiscountCategory) as commitment_discount_category,
        x_billing_period as billing_month,
        coalesce(sum(EffectiveCost) filter (
            where ChargeCategory = 'Usage' and CommitmentDiscountStatus = 'Used'
        ), 0) as used_cost,
        coalesce(sum(EffectiveCost) filter (
            where ChargeCategory = 'Usage' and CommitmentDiscountStatus = 'Unused'
        ), 0) as unused_cost,
        sum(CommitmentDiscountQuantity) filter (where CommitmentDiscountStatus = 'Used') as used_quantity,
        sum(CommitmentDiscountQuantity) filter (where CommitmentDiscountStatus = 'Unused') as unused_quantity,
        max(CommitmentDiscountUnit) as commitment_discount_unit,
        coalesce(sum(BilledCost) filter (where ChargeCategory = 'Purchase'), 0) as purchase_billed_cost
    from commitment_charges
    group by all
),

covered_services as (
    select distinct
        ProviderName as provider_name,
        BillingAccountId as billing_account_id,
        CommitmentDiscountId as commitment_discount_id,
        x_billing_period as billing_month,
        ServiceName as service_name
    from commitment_charges
    where CommitmentDiscountStatus = 'Used'
),

on_demand as (
    select
        ProviderName as provider_name,
        BillingAccountId as billing_account_id,
        x_billing_period as billing_month,
        ServiceName as service_name,
        sum(EffectiveCost) as on_demand_cost
    from charges_daily
    where ChargeCategory = 'Usage'
        and CommitmentDiscountId is null
        and x_charge_date <= getvariable('as_of')
    group by all
),

eligible_on_demand as (
    select
        covered_services.commitment_discount_id,
        covered_services.billing_month,
        sum(on_demand.on_demand_cost) as on_demand_cost
    from covered_services
    inner join on_demand using (provider_name, billing_account_id, billing_month, service_name)
    group by all
),

funding as (
    select
        CommitmentDiscountId as commitment_discount_id,
        min(x_po_number) as funded_po_number,
        min(x_po_status) as funded_po_status
    from charges_daily
    where CommitmentDiscountId is not null
        and ChargeCategory = 'Purchase'
        and x_po_number is not null
    group by all
)

select
    -- keys
    monthly.provider_name,
    monthly.billing_account_id,
    monthly.commitment_discount_id,
    monthly.commitment_discount_type,
    monthly.commitment_discount_category,
    monthly.billing_month,
    -- amounts
    monthly.used_cost,
    monthly.unused_cost,
    case when monthly.used_cost + monthly.unused_cost <> 0
        then monthly.used_cost / (monthly.used_cost + monthly.unused_cost) end as utilization_ratio,
    monthly.used_quantity,
    monthly.unused_quantity,
    monthly.commitment_discount_unit,
    monthly.purchase_billed_cost,
    coalesce(eligible_on_demand.on_demand_cost, 0) as eligible_on_demand_cost,
    case when monthly.used_cost + coalesce(eligible_on_demand.on_demand_cost, 0) <> 0
        then monthly.used_cost / (monthly.used_cost + coalesce(eligible_on_demand.on_demand_cost, 0)) end
        as coverage_ratio,
    -- funding
    funding.funded_po_number,
    funding.funded_po_status,
    getvariable('as_of') as as_of
from monthly
left join eligible_on_demand using (commitment_discount_id, billing_month)
left join funding using (commitment_discount_id)
order by monthly.provider_name, monthly.commitment_discount_id, monthly.billing_month
