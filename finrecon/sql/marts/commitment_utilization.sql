-- grain: commitment (CommitmentDiscountId) × billing month, charges up to as_of
-- Utilisation two ways, labelled: cost_utilization_ratio = used ÷ (used + unused) Σ EffectiveCost of the
-- commitment's Usage rows with CommitmentDiscountStatus Used/Unused; quantity_utilization_ratio = the same over
-- CommitmentDiscountQuantity, in commitment_discount_unit (hours, or the spend unit of a spend-based commitment).
-- unused_cost is the waste. funded_po_number = the PO on the commitment's Purchase rows (its tag, an allocation
-- rule or a mapping), else the commitments extract's po_number
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
        max(BillingCurrency) as billing_currency,
        coalesce(sum(EffectiveCost) filter (
            where ChargeCategory = 'Usage' and CommitmentDiscountStatus = 'Used'
        ), 0) as used_cost,
        coalesce(sum(EffectiveCost) filter (
            where ChargeCategory = 'Usage' and CommitmentDiscountStatus = 'Unused'
        ), 0) as unused_cost,
        sum(CommitmentDiscountQuantity) filter (where CommitmentDiscountStatus = 'Used') as used_quantity,
        sum(CommitmentDiscountQuantity) filter (where CommitmentDiscountStatus = 'Unused') as unused_quantity,
        max(CommitmentDiscountUnit) as commitment_discount_unit,
        coalesce(sum(BilledCost) filter (where ChargeCategory = 'Purchase'), 0) as purchase_billed_cost,
        -- reporting currency
        any_value(x_reporting_currency) as reporting_currency,
        bool_or(x_reporting_fx_rate is null) as reporting_fx_missing,
        max(x_reporting_fx_rate_date) as reporting_fx_rate_date,
        strict_sum(case
            when ChargeCategory = 'Usage' and CommitmentDiscountStatus = 'Used' then x_effective_cost_reporting else 0
        end) as used_cost_reporting,
        strict_sum(case
            when ChargeCategory = 'Usage' and CommitmentDiscountStatus = 'Unused' then x_effective_cost_reporting
            else 0
        end) as unused_cost_reporting,
        strict_sum(case when ChargeCategory = 'Purchase' then x_billed_cost_reporting else 0 end)
            as purchase_billed_cost_reporting
    from commitment_charges
    group by provider_name, billing_account_id, commitment_discount_id, billing_month
)

select
    -- keys
    monthly.provider_name,
    monthly.billing_account_id,
    monthly.commitment_discount_id,
    monthly.commitment_discount_type,
    monthly.commitment_discount_category,
    monthly.billing_month,
    -- by cost (billing currency)
    monthly.billing_currency,
    monthly.used_cost,
    monthly.unused_cost,
    case when monthly.used_cost + monthly.unused_cost <> 0
        then monthly.used_cost / (monthly.used_cost + monthly.unused_cost) end as cost_utilization_ratio,
    monthly.purchase_billed_cost,
    -- by quantity
    monthly.used_quantity,
    monthly.unused_quantity,
    monthly.commitment_discount_unit,
    case when coalesce(monthly.used_quantity, 0) + coalesce(monthly.unused_quantity, 0) <> 0
        then coalesce(monthly.used_quantity, 0)
            / (coalesce(monthly.used_quantity, 0) + coalesce(monthly.unused_quantity, 0))
    end as quantity_utilization_ratio,
    -- reporting currency
    monthly.reporting_currency,
    monthly.reporting_fx_missing,
    monthly.reporting_fx_rate_date,
    monthly.used_cost_reporting,
    monthly.unused_cost_reporting,
    monthly.purchase_billed_cost_reporting,
    -- funding
    commitment_inventory.funded_po_number,
    commitment_inventory.funded_po_status,
    commitment_inventory.funding_source,
    getvariable('as_of') as as_of
from monthly
left join commitment_inventory using (commitment_discount_id)
order by monthly.provider_name, monthly.commitment_discount_id, monthly.billing_month
