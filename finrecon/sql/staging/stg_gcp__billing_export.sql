-- grain: one GCP Cloud Billing export line item (or, with push_down, one pre-aggregated day × project × service ×
-- SKU × labels × commitment row) of one invoice month, in FOCUS columns
-- applied at landing: runs once per pulled invoice month over relation `gcp_billing_lines`, not in the nightly build
--
-- The connector's query has already flattened the export (finrecon/connectors/gcp_bigquery.py): credits summed
-- (`credits_amount`, of which `cud_credits_amount` are committed-use-discount credits), labels, tags and project
-- labels as JSON arrays of {key, value}. Credits reduce EffectiveCost (BilledCost = cost, EffectiveCost = cost +
-- credits), so Σ EffectiveCost is exactly Σ (cost + credits) and no rows are added. Labels on the resource win
-- over tags, tags over the project's labels, which charges therefore inherit.
with lines as (
    select
        *,
        coalesce(starts_with(lower(sku_description), 'commitment'), false) as is_cud_fee,
        coalesce(cud_credits_amount, 0) <> 0 as is_cud_covered,
        strptime(invoice_month || '01', '%Y%m%d') as invoice_month_start
    from gcp_billing_lines
),

tagged as (
    select
        *,
        map_concat(
            coalesce(map_from_entries(json_transform(project_labels, '[{"key": "VARCHAR", "value": "VARCHAR"}]')), map()),
            coalesce(map_from_entries(json_transform(tags, '[{"key": "VARCHAR", "value": "VARCHAR"}]')), map()),
            coalesce(map_from_entries(json_transform(labels, '[{"key": "VARCHAR", "value": "VARCHAR"}]')), map())
        ) as tag_map
    from lines
)

select
    'Google Cloud' as ProviderName,
    'Google' as InvoiceIssuerName,
    billing_account_id as BillingAccountId,
    project_id as SubAccountId,
    project_name as SubAccountName,
    currency as BillingCurrency,
    invoice_month_start as BillingPeriodStart,
    invoice_month_start + interval 1 month as BillingPeriodEnd,
    usage_start_time as ChargePeriodStart,
    usage_end_time as ChargePeriodEnd,
    cast(cost as varchar) as BilledCost,
    cast(cost + coalesce(credits_amount, 0) as varchar) as EffectiveCost,
    cast(cost_at_list as varchar) as ListCost,
    case cost_type
        when 'regular' then case when is_cud_fee then 'Purchase' else 'Usage' end
        when 'tax' then 'Tax'
        when 'adjustment' then 'Adjustment'
        when 'rounding_error' then 'Adjustment'
        else cost_type  -- an unknown cost type is quarantined by the ChargeCategory check
    end as ChargeCategory,
    case when is_cud_fee then 'Recurring' when cost_type = 'regular' then 'Usage-Based' end as ChargeFrequency,
    case when is_cud_covered and not is_cud_fee then cud_credit_id end as CommitmentDiscountId,
    case when is_cud_covered and not is_cud_fee then 'Committed Use Discount' end as CommitmentDiscountType,
    case
        when not is_cud_covered or is_cud_fee then null
        when cud_credit_type = 'COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE' then 'Spend'
        else 'Usage'
    end as CommitmentDiscountCategory,
    case when is_cud_covered and not is_cud_fee and cost_type = 'regular' then 'Used' end as CommitmentDiscountStatus,
    case
        when cost_type <> 'regular' or is_cud_fee then null
        when is_cud_covered then 'Committed'
        else 'Standard'
    end as PricingCategory,
    service_description as ServiceName,
    sku_id as SkuId,
    sku_description as ChargeDescription,
    region as RegionId,
    zone as AvailabilityZone,
    resource_name as ResourceId,
    cast(usage_amount as varchar) as PricingQuantity,
    usage_unit as PricingUnit,
    case when cardinality(tag_map) = 0 then null else cast(to_json(tag_map) as varchar) end as Tags,
    project_labels as x_gcp_project_labels,
    cost_type as x_gcp_cost_type,
    cast(credits_amount as varchar) as x_gcp_credits,
    cast(currency_conversion_rate as varchar) as x_gcp_currency_conversion_rate,
    cast(line_items as varchar) as x_gcp_line_items,
    x_source_file,
    x_source_row
from tagged
