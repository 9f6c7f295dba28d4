-- grain: one commitment (CommitmentDiscountId) seen in the charges up to as_of or listed in the ERP's
-- commitments extract: its term, how soon it expires, the PO that funded it and its lifetime utilisation.
-- Term dates come from the commitments extract (FOCUS carries none). funded_po_number: the PO of the
-- commitment's Purchase charges (a PO tag, allocation rule or mapping), else the extract's po_number
with charged as (
    select
        CommitmentDiscountId as commitment_discount_id,
        max(ProviderName) as provider_name,
        max(BillingAccountId) as billing_account_id,
        max(CommitmentDiscountType) as commitment_discount_type,
        max(CommitmentDiscountCategory) as commitment_discount_category,
        max(BillingCurrency) as billing_currency,
        coalesce(sum(EffectiveCost) filter (
            where ChargeCategory = 'Usage' and CommitmentDiscountStatus = 'Used'
        ), 0) as used_cost,
        coalesce(sum(EffectiveCost) filter (
            where ChargeCategory = 'Usage' and CommitmentDiscountStatus = 'Unused'
        ), 0) as unused_cost,
        strict_sum(case
            when ChargeCategory = 'Usage' and CommitmentDiscountStatus = 'Used' then x_effective_cost_reporting
            else 0
        end) as used_cost_reporting,
        strict_sum(case
            when ChargeCategory = 'Usage' and CommitmentDiscountStatus = 'Unused' then x_effective_cost_reporting
            else 0
        end) as unused_cost_reporting,
        any_value(x_reporting_currency) as reporting_currency,
        min(x_charge_date) as first_charge_date,
        max(x_charge_date) as last_charge_date
    from charges_daily
    where CommitmentDiscountId is not null
        and x_charge_date <= getvariable('as_of')
    group by CommitmentDiscountId
),

purchase_funding as (
    select
        CommitmentDiscountId as commitment_discount_id,
        min(x_po_number) as po_number,
        min(x_po_status) as po_status,
        min(x_po_reason) as po_reason
    from charges_daily
    where CommitmentDiscountId is not null
        and ChargeCategory = 'Purchase'
        and x_po_number is not null
    group by CommitmentDiscountId
),

commitments as (
    select commitment_discount_id from charged
    union
    select commitment_discount_id from stg_erp__commitments
)

select
    -- keys
    commitments.commitment_discount_id,
    charged.provider_name,
    charged.billing_account_id,
    charged.commitment_discount_type,
    charged.commitment_discount_category,
    stg_erp__commitments.description,
    -- term
    stg_erp__commitments.term_start,
    stg_erp__commitments.term_end,
    stg_erp__commitments.term_end - getvariable('as_of') as days_to_expiry,
    case
        when stg_erp__commitments.term_end is null then 'unknown_term'
        when stg_erp__commitments.term_end < getvariable('as_of') then 'expired'
        when stg_erp__commitments.term_end - getvariable('as_of') <= getvariable('expiring_within_days')
            then 'expiring'
        else 'active'
    end as term_state,
    -- funding
    coalesce(purchase_funding.po_number, int_purchase_orders.po_number, stg_erp__commitments.po_number)
        as funded_po_number,
    case
        when purchase_funding.po_number is not null then purchase_funding.po_status
        when stg_erp__commitments.po_number is null then null
        when int_purchase_orders.po_number is null then 'invalid'
        else 'valid'
    end as funded_po_status,
    case
        when purchase_funding.po_number is not null then 'purchase_charge:' || purchase_funding.po_reason
        when stg_erp__commitments.po_number is not null then 'commitments_extract'
    end as funding_source,
    -- lifetime utilisation to as_of (billing currency; unused also in the reporting currency)
    charged.billing_currency,
    coalesce(charged.used_cost, 0) as used_cost,
    coalesce(charged.unused_cost, 0) as unused_cost,
    case when charged.used_cost + charged.unused_cost <> 0
        then charged.used_cost / (charged.used_cost + charged.unused_cost) end as cost_utilization_ratio,
    charged.reporting_currency,
    charged.used_cost_reporting,
    charged.unused_cost_reporting,
    charged.first_charge_date,
    charged.last_charge_date,
    getvariable('as_of') as as_of
from commitments
left join charged using (commitment_discount_id)
left join stg_erp__commitments using (commitment_discount_id)
left join purchase_funding using (commitment_discount_id)
left join int_purchase_orders on int_purchase_orders.po_number_norm = stg_erp__commitments.po_number_norm
order by commitments.commitment_discount_id
