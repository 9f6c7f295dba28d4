-- grain: one row of an Azure cost-details export (ActualCost or AmortizedCost; EA or MCA) of one month, in FOCUS
-- applied at landing: runs once per delivered month over relation `azure_cost_delivery`, not in the nightly build
--
-- Amounts and dates stay text: a value that does not parse reaches the FOCUS checks as delivered and the row is
-- quarantined. ActualCost has no amortisation: EffectiveCost = BilledCost = the row's cost. AmortizedCost spreads
-- commitment purchases over the usage they cover: covered usage and unused-commitment rows were paid by the
-- purchase (BilledCost 0, EffectiveCost their amortised cost) and a reservation or savings-plan purchase has
-- EffectiveCost 0 (its cost is in those rows).
with rows as (
    select
        *,
        coalesce(CostInBillingCurrency, Cost, PreTaxCost) as cost_text,
        PricingModel in ('Reservation', 'SavingsPlan') as is_commitment,
        nullif(nullif(trim(coalesce(SubscriptionId, SubscriptionGuid)), ''), '00000000-0000-0000-0000-000000000000')
            as subscription_id,
        coalesce(try_strptime(Date, '%m/%d/%Y'), try_cast(Date as timestamp)) as charge_day,
        coalesce(try_strptime(BillingPeriodStartDate, '%m/%d/%Y'), try_cast(BillingPeriodStartDate as timestamp))
            as period_start,
        coalesce(try_strptime(BillingPeriodEndDate, '%m/%d/%Y'), try_cast(BillingPeriodEndDate as timestamp))
            as period_last_day
    from azure_cost_delivery
)

select
    'Microsoft' as ProviderName,
    'Microsoft' as InvoiceIssuerName,
    PublisherName,
    InvoiceId,
    BillingAccountId,
    BillingAccountName,
    coalesce(BillingCurrency, BillingCurrencyCode) as BillingCurrency,
    subscription_id as SubAccountId,
    SubscriptionName as SubAccountName,
    coalesce(strftime(period_start, '%Y-%m-%d'), BillingPeriodStartDate) as BillingPeriodStart,
    strftime(period_last_day + interval 1 day, '%Y-%m-%d') as BillingPeriodEnd,
    coalesce(strftime(charge_day, '%Y-%m-%d'), Date) as ChargePeriodStart,
    strftime(charge_day + interval 1 day, '%Y-%m-%d') as ChargePeriodEnd,
    case
        when x_azure_dataset = 'AmortizedCost' and is_commitment
            and ChargeType in ('Usage', 'UnusedReservation', 'UnusedSavingsPlan') then '0'
        else cost_text
    end as BilledCost,
    case
        when x_azure_dataset = 'AmortizedCost' and is_commitment and ChargeType = 'Purchase' then '0'
        else cost_text
    end as EffectiveCost,
    case
        when ChargeType in ('Usage', 'UnusedReservation', 'UnusedSavingsPlan') then 'Usage'
        when ChargeType = 'Purchase' then 'Purchase'
        when ChargeType = 'Refund' then 'Credit'
        when ChargeType = 'Tax' then 'Tax'
        when ChargeType = 'RoundingAdjustment' then 'Adjustment'
        else ChargeType  -- an unknown charge type is quarantined by the ChargeCategory check
    end as ChargeCategory,
    case when ChargeType = 'Refund' then 'Correction' end as ChargeClass,
    case Frequency
        when 'UsageBased' then 'Usage-Based'
        when 'OneTime' then 'One-Time'
        when 'Recurring' then 'Recurring'
    end as ChargeFrequency,
    case when is_commitment then nullif(trim(coalesce(BenefitId, ReservationId)), '') end as CommitmentDiscountId,
    case when is_commitment then nullif(trim(coalesce(BenefitName, ReservationName)), '') end as CommitmentDiscountName,
    case PricingModel when 'Reservation' then 'Reservation' when 'SavingsPlan' then 'Savings Plan' end
        as CommitmentDiscountType,
    case PricingModel when 'Reservation' then 'Usage' when 'SavingsPlan' then 'Spend' end
        as CommitmentDiscountCategory,
    case
        when not is_commitment then null
        when ChargeType = 'Usage' then 'Used'
        when ChargeType in ('UnusedReservation', 'UnusedSavingsPlan') then 'Unused'
    end as CommitmentDiscountStatus,
    case
        when ChargeType <> 'Usage' then null
        when is_commitment then 'Committed'
        when PricingModel = 'Spot' then 'Dynamic'
        else 'Standard'
    end as PricingCategory,
    coalesce(MeterCategory, ConsumedService) as ServiceName,
    ResourceLocation as RegionId,
    nullif(AvailabilityZone, '') as AvailabilityZone,
    nullif(ResourceId, '') as ResourceId,
    nullif(ResourceName, '') as ResourceName,
    Quantity as PricingQuantity,
    UnitOfMeasure as PricingUnit,
    Tags,
    ResourceGroup as x_resource_group,
    CostCenter as x_azure_cost_center,
    ChargeType as x_azure_charge_type,
    x_azure_dataset,
    x_source_file,
    x_source_row
from rows
