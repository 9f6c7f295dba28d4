-- grain: one supplier invoice (vendor_id × invoice_number) × match type (two_way, three_way, cloud)
-- Invoice matching; the rules are written out in docs/data-dictionary.md (invoice_match). Amounts are compared in
-- `currency` (the PO currency for two_way and three_way, the invoice currency for cloud); `difference` = compared −
-- reference; within `tolerance` = greatest(erp.match_tolerance_amount, erp.match_tolerance_ratio × |reference|)
-- counts as equal. Every invoice, receipt and charge in the extracts and the lake counts (as_of is no cut-off).
with invoices as (
    select
        *,
        greatest(
            getvariable('match_tolerance_amount'), getvariable('match_tolerance_ratio') * abs(po_total_amount)
        ) as po_tolerance
    from int_invoices
),

-- two-way: the invoice against the PO (its total) and the PO line (its unit price)
two_way_checks as (
    select
        *,
        case
            when po_line_unit_price is not null and quantity is not null then 'invoice_vs_quantity_x_po_price'
            when po_line_unit_price is not null and unit_price is not null then 'unit_price_vs_po_price'
        end as price_comparison,
        case
            when po_line_unit_price is not null and quantity is not null then amount_po_currency
            when po_line_unit_price is not null and unit_price is not null then unit_price * fx_rate
        end as price_compared,
        case
            when po_line_unit_price is not null and quantity is not null then quantity * po_line_unit_price
            when po_line_unit_price is not null and unit_price is not null then po_line_unit_price
        end as price_reference
    from invoices
),

two_way_status as (
    select
        *,
        case when price_reference is not null then greatest(
            getvariable('match_tolerance_amount'), getvariable('match_tolerance_ratio') * abs(price_reference)
        ) end as price_tolerance,
        case
            when po_reference_problem is not null then 'missing_po_reference'
            when po_invoiced_to_date is null then 'fx_missing'
            when po_invoiced_to_date - po_total_amount > po_tolerance then 'over_po'
            when abs(price_compared - price_reference) > price_tolerance then 'amount_mismatch'
            else 'matched'
        end as status
    from two_way_checks
),

two_way as (
    select
        *,
        'two_way' as match_type,
        po_currency as compare_currency,
        case
            when status = 'missing_po_reference' then null
            when status = 'over_po' or price_comparison is null then 'invoiced_to_date_vs_po_total'
            else price_comparison
        end as comparison
    from two_way_status
),

-- three-way: what was invoiced against the PO (or the invoice's PO line) against what was received on it
receipts_by_po as (
    select
        erp_po_number,
        count(*) as receipt_count,
        min(receipt_date) as first_receipt_date,
        case when count(*) filter (where fx_rate is null) = 0 then sum(amount_po_currency) end as received_amount
    from int_goods_receipts
    group by erp_po_number
),

receipts_by_line as (
    select
        erp_po_number,
        po_line_number,
        count(*) as receipt_count,
        min(receipt_date) as first_receipt_date,
        case when count(*) filter (where fx_rate is null) = 0 then sum(amount_po_currency) end as received_amount
    from int_goods_receipts
    where po_line_number is not null
    group by erp_po_number, po_line_number
),

three_way_figures as (
    select
        invoices.*,
        'three_way' as match_type,
        invoices.po_currency as compare_currency,
        case
            when invoices.po_reference_problem is not null then null
            when invoices.erp_line_number is not null then 'line_invoiced_to_date_vs_line_received'
            else 'invoiced_to_date_vs_received'
        end as comparison,
        case when invoices.erp_line_number is not null then invoices.line_invoiced_to_date
            else invoices.po_invoiced_to_date end as invoiced_to_date,
        coalesce(
            case when invoices.erp_line_number is not null then receipts_by_line.receipt_count
                else receipts_by_po.receipt_count end,
            0
        ) as receipt_count,
        case when invoices.erp_line_number is not null then receipts_by_line.first_receipt_date
            else receipts_by_po.first_receipt_date end as first_receipt_date,
        case when invoices.erp_line_number is not null then receipts_by_line.received_amount
            else receipts_by_po.received_amount end as received_amount
    from invoices
    left join receipts_by_po on receipts_by_po.erp_po_number = invoices.erp_po_number
    left join receipts_by_line
        on receipts_by_line.erp_po_number = invoices.erp_po_number
        and receipts_by_line.po_line_number = invoices.erp_line_number
),

three_way as (
    select
        *,
        -- greatest() skips NULLs: no reference, no tolerance
        case when received_amount is not null then greatest(
            getvariable('match_tolerance_amount'), getvariable('match_tolerance_ratio') * abs(received_amount)
        ) end as receipt_tolerance,
        case
            when po_reference_problem is not null then 'missing_po_reference'
            when receipt_count = 0 then 'missing_receipt'
            when invoiced_to_date is null or received_amount is null then 'fx_missing'
            -- invoiced below received is normal: receipts not invoiced yet
            when invoiced_to_date - received_amount > receipt_tolerance then 'amount_mismatch'
            else 'matched'
        end as status
    from three_way_figures
),

-- cloud: the invoice against what the provider billed: its invoice (FOCUS InvoiceId), else the billing
-- period's charges allocated to the invoice's PO
provider_invoices as (
    select InvoiceId as cloud_invoice_id, ProviderName, BillingCurrency, sum(BilledCost) as billed_cost,
        count(*) as charge_count
    from charges
    where InvoiceId in (select cloud_invoice_id from int_invoices)
    group by all
),

po_period_charges as (
    select x_billing_period, x_po_number, ProviderName, BillingCurrency, sum(BilledCost) as billed_cost,
        sum(charge_count) as charge_count
    from charges_daily
    where x_po_number is not null
    group by all
),

cloud_scope as (
    select invoices.vendor_id, invoices.invoice_number, invoices.invoice_date, invoices.currency,
        provider_invoices.BillingCurrency as billing_currency, provider_invoices.billed_cost,
        provider_invoices.charge_count
    from invoices
    inner join provider_invoices
        on provider_invoices.cloud_invoice_id = invoices.cloud_invoice_id
        and (invoices.provider_name is null or lower(provider_invoices.ProviderName) = lower(invoices.provider_name))
    union all
    select invoices.vendor_id, invoices.invoice_number, invoices.invoice_date, invoices.currency,
        po_period_charges.BillingCurrency, po_period_charges.billed_cost, po_period_charges.charge_count
    from invoices
    inner join po_period_charges
        on invoices.cloud_invoice_id is null
        and po_period_charges.x_billing_period = invoices.billing_period
        and po_period_charges.x_po_number = invoices.erp_po_number
        and (invoices.provider_name is null or lower(po_period_charges.ProviderName) = lower(invoices.provider_name))
),

cloud_converted as (
    select
        cloud_scope.*,
        case when cloud_scope.billing_currency = cloud_scope.currency then 1.0 else int_fx_rates.rate end as fx_rate,
        case when cloud_scope.billing_currency <> cloud_scope.currency then int_fx_rates.rate_date end
            as fx_rate_date
    from cloud_scope
    asof left join int_fx_rates
        on int_fx_rates.from_currency = cloud_scope.billing_currency
        and int_fx_rates.to_currency = cloud_scope.currency
        and cloud_scope.invoice_date >= int_fx_rates.rate_date
),

cloud_billed as (
    select
        vendor_id,
        invoice_number,
        case when count(*) filter (where fx_rate is null) = 0 then sum(billed_cost * fx_rate) end as billed_amount,
        min(billing_currency) filter (where fx_rate is null) as fx_missing_currency,
        -- the rate is shown when the charges are in one billing currency
        case when count(*) = 1 then max(fx_rate) end as fx_rate,
        case when count(*) = 1 then max(fx_rate_date) end as fx_rate_date,
        sum(charge_count) as charge_count
    from cloud_converted
    group by vendor_id, invoice_number
),

cloud_figures as (
    select
        invoices.* exclude (fx_rate, fx_rate_date),
        'cloud' as match_type,
        invoices.currency as compare_currency,
        case
            when invoices.cloud_invoice_id is not null then 'invoice_vs_provider_invoice'
            when invoices.billing_period is not null then 'invoice_vs_po_period_charges'
        end as scope,
        -- no charge in the scope: the provider billed nothing
        case when cloud_billed.vendor_id is null then 0.0 else cloud_billed.billed_amount end as billed_amount,
        cloud_billed.fx_missing_currency,
        cloud_billed.fx_rate,
        cloud_billed.fx_rate_date,
        coalesce(cloud_billed.charge_count, 0) as charge_count
    from invoices
    left join cloud_billed
        on cloud_billed.vendor_id = invoices.vendor_id
        and cloud_billed.invoice_number = invoices.invoice_number
),

cloud as (
    select
        *,
        case when billed_amount is not null then greatest(
            getvariable('match_tolerance_amount'), getvariable('match_tolerance_ratio') * abs(billed_amount)
        ) end as cloud_tolerance,
        case
            when scope is null then 'not_applicable'
            when scope = 'invoice_vs_po_period_charges' and po_reference_problem is not null
                then 'missing_po_reference'
            when billed_amount is null then 'fx_missing'
            when abs(amount - billed_amount) > cloud_tolerance then 'amount_mismatch'
            else 'matched'
        end as status
    from cloud_figures
),

matches as (
    select
        vendor_id, invoice_number, match_type, status, comparison, compare_currency,
        case when status = 'missing_po_reference' then null
            when comparison = 'invoiced_to_date_vs_po_total' then po_invoiced_to_date
            else price_compared end as compared_amount,
        case when status = 'missing_po_reference' then null
            when comparison = 'invoiced_to_date_vs_po_total' then po_total_amount
            else price_reference end as reference_amount,
        case when status = 'missing_po_reference' then null
            when comparison = 'invoiced_to_date_vs_po_total' then po_tolerance
            else price_tolerance end as tolerance,
        fx_rate, fx_rate_date, cast(null as bigint) as receipt_count, cast(null as date) as first_receipt_date,
        cast(null as double) as received_amount, cast(null as bigint) as charge_count,
        case
            when fx_rate is null then 'no FX rate ' || currency || '->' || po_currency || ' on or before ' || invoice_date
            else 'an earlier invoice against the PO has no FX rate'
        end as fx_gap
    from two_way
    union all
    select
        vendor_id, invoice_number, match_type, status, comparison, compare_currency,
        case when status not in ('missing_po_reference', 'missing_receipt') then invoiced_to_date end,
        case when status not in ('missing_po_reference', 'missing_receipt') then received_amount end,
        case when status not in ('missing_po_reference', 'missing_receipt') then receipt_tolerance end,
        fx_rate, fx_rate_date, receipt_count, first_receipt_date, received_amount, null,
        case
            when fx_rate is null then 'no FX rate ' || currency || '->' || po_currency || ' on or before ' || invoice_date
            when invoiced_to_date is null then 'an earlier invoice against the PO has no FX rate'
            else 'a goods receipt has no FX rate to the PO currency on or before its date'
        end
    from three_way
    union all
    select
        vendor_id, invoice_number, match_type, status,
        case when status <> 'missing_po_reference' then scope end, compare_currency,
        case when status not in ('not_applicable', 'missing_po_reference') then amount end,
        case when status not in ('not_applicable', 'missing_po_reference') then billed_amount end,
        case when status not in ('not_applicable', 'missing_po_reference') then cloud_tolerance end,
        fx_rate, fx_rate_date, null, null, null, charge_count,
        'no FX rate ' || fx_missing_currency || '->' || currency || ' on or before ' || invoice_date
    from cloud
)

select
    -- the invoice
    invoices.invoice_number,
    invoices.vendor_id,
    invoices.invoice_date,
    invoices.invoice_month,
    invoices.po_number,
    invoices.po_line_number,
    invoices.erp_po_number,
    invoices.currency as invoice_currency,
    invoices.amount as invoice_amount,
    invoices.quantity as invoice_quantity,
    invoices.unit_price as invoice_unit_price,
    invoices.cloud_invoice_id,
    invoices.billing_period,
    invoices.provider_name,
    -- the match
    matches.match_type,
    matches.status,
    matches.comparison,
    matches.compare_currency as currency,
    matches.compared_amount,
    matches.reference_amount,
    matches.compared_amount - matches.reference_amount as difference,
    matches.tolerance,
    matches.fx_rate,
    matches.fx_rate_date,
    case
        when matches.status = 'missing_po_reference' and matches.match_type = 'cloud'
            then invoices.po_reference_problem || ' (the billing-period match takes the charges of the PO)'
        when matches.status = 'missing_po_reference' then invoices.po_reference_problem
        when matches.status = 'missing_receipt' then 'no goods receipt for the PO'
            || case when invoices.erp_line_number is not null then ' line ' || invoices.erp_line_number else '' end
        when matches.status = 'not_applicable' then 'the invoice names no cloud invoice id or billing period'
        when matches.status = 'fx_missing' then matches.fx_gap
        when matches.status = 'over_po' then 'invoiced to date exceeds the PO total'
        when matches.status = 'amount_mismatch' then case matches.comparison
            when 'invoice_vs_quantity_x_po_price' then 'invoice amount differs from quantity × the PO line unit price'
            when 'unit_price_vs_po_price' then 'unit price differs from the PO line unit price'
            when 'invoice_vs_provider_invoice' then 'invoice differs from the provider invoice'
            when 'invoice_vs_po_period_charges' then 'invoice differs from the PO''s charges of the billing period'
            else 'invoiced to date exceeds what was received'
        end
    end as reason,
    -- context
    invoices.po_currency,
    invoices.po_total_amount,
    case when matches.match_type <> 'cloud' then invoices.po_invoiced_to_date end as po_invoiced_to_date,
    matches.receipt_count,
    matches.first_receipt_date,
    matches.received_amount,
    matches.charge_count,
    -- reporting currency: the compared amounts at the as_of rate (reporting_fx_rates)
    reporting_fx_rates.reporting_currency,
    reporting_fx_rates.fx_rate as reporting_fx_rate,
    reporting_fx_rates.fx_rate_date as reporting_fx_rate_date,
    invoices.amount * invoice_rate.fx_rate as invoice_amount_reporting,
    invoices.po_total_amount * po_rate.fx_rate as po_total_amount_reporting,
    matches.received_amount * po_rate.fx_rate as received_amount_reporting,
    matches.compared_amount * reporting_fx_rates.fx_rate as compared_amount_reporting,
    matches.reference_amount * reporting_fx_rates.fx_rate as reference_amount_reporting,
    (matches.compared_amount - matches.reference_amount) * reporting_fx_rates.fx_rate as difference_reporting,
    getvariable('as_of') as as_of
from matches
inner join invoices
    on invoices.vendor_id = matches.vendor_id
    and invoices.invoice_number = matches.invoice_number
left join reporting_fx_rates
    on reporting_fx_rates.rate_day = getvariable('as_of')
    and reporting_fx_rates.from_currency = matches.compare_currency
left join reporting_fx_rates as invoice_rate
    on invoice_rate.rate_day = getvariable('as_of')
    and invoice_rate.from_currency = invoices.currency
left join reporting_fx_rates as po_rate
    on po_rate.rate_day = getvariable('as_of')
    and po_rate.from_currency = invoices.po_currency
order by invoices.invoice_date, invoices.invoice_number, invoices.vendor_id, matches.match_type
