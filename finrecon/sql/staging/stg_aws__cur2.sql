-- grain: one AWS CUR 2.0 line item (one row of one data file of a billing period's delivery), in FOCUS columns
-- applied at landing: runs once per delivered billing period over relation `cur2_delivery`, not in the nightly build
--
-- Amounts stay text here: a value that does not parse reaches the FOCUS checks as delivered (named with its CUR
-- column) and the row is quarantined, instead of silently counting as 0. EffectiveCost follows the amortisation
-- AWS's own Cost Explorer uses: covered usage at its reservation / savings-plan effective cost, the unused part
-- of RI and savings-plan recurring fees, SavingsPlanNegation and upfront fees at 0. The unused part of a
-- commitment is a Usage row with CommitmentDiscountStatus 'Unused' (FOCUS's representation of unused
-- commitment), so its recurring fee's BilledCost is carried there too.
with line_items as (
    select
        *,
        line_item_line_item_type as item_type,
        nullif(trim(cast(reservation_reservation_a_r_n as varchar)), '') as ri_arn,
        nullif(trim(cast(savings_plan_savings_plan_a_r_n as varchar)), '') as sp_arn,
        -- the product's name as AWS's FOCUS export states it: CUR 2.0 keeps it in the `product` map (key
        -- `product_name`; a map in Parquet, JSON in CSV), legacy CUR in `product/ProductName`. Without either, the
        -- name AWS writes beside the line item's product code (`lineItem/ProductCode` and `product/ProductName`
        -- pairs read from public legacy CUR files: the focus-converters and koku samples, koku's nise generator),
        -- else the code as delivered. Not `product_servicecode`: S3 or SNS data transfer has `AWSDataTransfer`.
        coalesce(
            case when json_valid(product) then nullif(trim(json_extract_string(product, '$.product_name')), '') end,
            nullif(trim(cast(product_product_name as varchar)), ''),
            map {
                'AmazonCloudWatch': 'AmazonCloudWatch',
                'AmazonEC2': 'Amazon Elastic Compute Cloud',
                'AmazonEFS': 'Amazon Elastic File System',
                'AmazonRDS': 'Amazon Relational Database Service',
                'AmazonS3': 'Amazon Simple Storage Service',
                'AmazonSNS': 'Amazon Simple Notification Service',
                'AmazonStates': 'AWS Step Functions',
                'AWSCloudShell': 'AWS CloudShell',
                'AWSCloudTrail': 'AWS CloudTrail',
                'AWSDataTransfer': 'AWS Data Transfer',
                'AWSGlue': 'AWS Glue',
                'AWSIoT': 'AWS IoT',
                'AWSQueueService': 'Amazon Simple Queue Service',
                'AWSSecretsManager': 'AWS Secrets Manager',
                'awskms': 'AWS Key Management Service',
                'ComputeSavingsPlans': 'Savings Plans for AWS Compute usage'
            }[cast(line_item_product_code as varchar)],
            cast(line_item_product_code as varchar)
        ) as service_name,
        -- every amount the mapping computes with, parsed; and the delivered ones that do not parse
        try_cast(line_item_unblended_cost as double) as unblended,
        try_cast(reservation_effective_cost as double) as ri_effective,
        try_cast(reservation_unused_amortized_upfront_fee_for_billing_period as double) as ri_unused_upfront,
        try_cast(reservation_unused_recurring_fee as double) as ri_unused_recurring,
        try_cast(savings_plan_savings_plan_effective_cost as double) as sp_effective,
        try_cast(savings_plan_total_commitment_to_date as double) as sp_commitment,
        try_cast(savings_plan_used_commitment as double) as sp_used,
        list_filter([
            case when try_cast(line_item_unblended_cost as double) is null and line_item_unblended_cost is not null
                then 'line_item_unblended_cost=' || cast(line_item_unblended_cost as varchar) end,
            case when try_cast(reservation_effective_cost as double) is null and reservation_effective_cost is not null
                then 'reservation_effective_cost=' || cast(reservation_effective_cost as varchar) end,
            case when try_cast(reservation_unused_amortized_upfront_fee_for_billing_period as double) is null
                    and reservation_unused_amortized_upfront_fee_for_billing_period is not null
                then 'reservation_unused_amortized_upfront_fee_for_billing_period='
                    || cast(reservation_unused_amortized_upfront_fee_for_billing_period as varchar) end,
            case when try_cast(reservation_unused_recurring_fee as double) is null
                    and reservation_unused_recurring_fee is not null
                then 'reservation_unused_recurring_fee=' || cast(reservation_unused_recurring_fee as varchar) end,
            case when try_cast(savings_plan_savings_plan_effective_cost as double) is null
                    and savings_plan_savings_plan_effective_cost is not null
                then 'savings_plan_savings_plan_effective_cost='
                    || cast(savings_plan_savings_plan_effective_cost as varchar) end,
            case when try_cast(savings_plan_total_commitment_to_date as double) is null
                    and savings_plan_total_commitment_to_date is not null
                then 'savings_plan_total_commitment_to_date='
                    || cast(savings_plan_total_commitment_to_date as varchar) end,
            case when try_cast(savings_plan_used_commitment as double) is null and savings_plan_used_commitment is not null
                then 'savings_plan_used_commitment=' || cast(savings_plan_used_commitment as varchar) end
        ], lambda problem: problem is not null) as unparsed_amounts
    from cur2_delivery
),

mapped as (
    select
        *,
        case
            when item_type in ('Usage', 'DiscountedUsage', 'SavingsPlanCoveredUsage', 'SavingsPlanNegation',
                               'RIFee', 'SavingsPlanRecurringFee') then 'Usage'
            when item_type in ('Fee', 'SavingsPlanUpfrontFee') then 'Purchase'
            when item_type = 'Tax' then 'Tax'
            when item_type in ('Credit', 'Refund', 'EdpDiscount', 'BundledDiscount', 'PrivateRateDiscount',
                               'DistributorDiscount', 'Discount') then 'Credit'
            else item_type  -- an unknown line item type is quarantined by the ChargeCategory check
        end as charge_category,
        case
            when item_type in ('DiscountedUsage', 'RIFee') or (item_type = 'Fee' and ri_arn is not null) then ri_arn
            when item_type in ('SavingsPlanCoveredUsage', 'SavingsPlanNegation', 'SavingsPlanRecurringFee',
                               'SavingsPlanUpfrontFee') then sp_arn
        end as commitment_id,
        case item_type
            when 'DiscountedUsage' then ri_effective
            when 'SavingsPlanCoveredUsage' then sp_effective
            when 'RIFee' then coalesce(ri_unused_upfront, 0) + coalesce(ri_unused_recurring, 0)
            when 'SavingsPlanRecurringFee' then coalesce(sp_commitment, 0) - coalesce(sp_used, 0)
            when 'SavingsPlanNegation' then 0
            when 'SavingsPlanUpfrontFee' then 0
            when 'Fee' then case when ri_arn is not null then 0 else unblended end
            else unblended
        end as effective_cost
    from line_items
)

select
    'AWS' as ProviderName,
    bill_invoicing_entity as InvoiceIssuerName,
    bill_invoice_id as InvoiceId,
    cast(bill_payer_account_id as varchar) as BillingAccountId,
    bill_payer_account_name as BillingAccountName,
    cast(line_item_usage_account_id as varchar) as SubAccountId,
    line_item_usage_account_name as SubAccountName,
    line_item_currency_code as BillingCurrency,
    bill_billing_period_start_date as BillingPeriodStart,
    bill_billing_period_end_date as BillingPeriodEnd,
    line_item_usage_start_date as ChargePeriodStart,
    line_item_usage_end_date as ChargePeriodEnd,
    cast(line_item_unblended_cost as varchar) as BilledCost,
    case
        when len(unparsed_amounts) > 0 then 'not a number: ' || array_to_string(unparsed_amounts, '; ')
        else cast(effective_cost as varchar)
    end as EffectiveCost,
    cast(pricing_public_on_demand_cost as varchar) as ListCost,
    charge_category as ChargeCategory,
    case when item_type = 'Refund' then 'Correction' end as ChargeClass,
    case
        when item_type in ('Fee', 'SavingsPlanUpfrontFee') then 'One-Time'
        when item_type in ('RIFee', 'SavingsPlanRecurringFee') then 'Recurring'
        else 'Usage-Based'
    end as ChargeFrequency,
    line_item_line_item_description as ChargeDescription,
    commitment_id as CommitmentDiscountId,
    case
        when commitment_id is null then null
        when commitment_id = ri_arn then 'Reserved Instance'
        else 'Savings Plan'
    end as CommitmentDiscountType,
    case
        when commitment_id is null then null
        when commitment_id = ri_arn then 'Usage'
        else 'Spend'
    end as CommitmentDiscountCategory,
    case
        when charge_category <> 'Usage' or commitment_id is null then null
        when item_type in ('RIFee', 'SavingsPlanRecurringFee') then 'Unused'
        else 'Used'
    end as CommitmentDiscountStatus,
    case
        when charge_category <> 'Usage' then null
        when commitment_id is not null then 'Committed'
        when pricing_term = 'Spot' then 'Dynamic'
        else 'Standard'
    end as PricingCategory,
    cast(line_item_usage_amount as varchar) as PricingQuantity,
    pricing_unit as PricingUnit,
    service_name as ServiceName,
    product_sku as SkuId,
    product_region_code as RegionId,
    line_item_availability_zone as AvailabilityZone,
    nullif(trim(cast(line_item_resource_id as varchar)), '') as ResourceId,
    -- resource_tags as a JSON object; CUR 2.0's `user_` / `aws_` key prefixes written as AWS's `user:` / `aws:`
    case
        when resource_tags is null or trim(resource_tags) in ('', '{}') then null
        when not json_valid(resource_tags) then resource_tags  -- quarantined by the Tags check, as delivered
        else cast(to_json(map_from_entries(list_transform(
            map_entries(json_transform(resource_tags, '"MAP(VARCHAR, VARCHAR)"')),
            lambda tag: struct_pack(key := regexp_replace(tag.key, '^(user|aws)_', '\1:'), value := tag.value)
        ))) as varchar)
    end as Tags,
    item_type as x_aws_line_item_type,
    x_source_file,
    x_source_row
from mapped
