-- grain: one supplier invoice (vendor_id × invoice_number), resolved to its ERP PO and PO line, valued in the
-- PO currency at the latest FX rate on or before the invoice date (NULL when there is none: never 1.0), with what
-- had been invoiced against the PO (and the line) up to and including it, in invoice date then number order
with po_lines as (
    select *
    from stg_erp__po_lines
    qualify row_number() over (partition by po_number_norm, line_number order by po_number) = 1
),

resolved as (
    select
        stg_erp__invoices.*,
        int_purchase_orders.po_number as erp_po_number,
        int_purchase_orders.currency as po_currency,
        int_purchase_orders.total_amount as po_total_amount,
        po_lines.line_number as erp_line_number,
        po_lines.quantity as po_line_quantity,
        po_lines.unit_price as po_line_unit_price,
        po_lines.amount as po_line_amount,
        case
            when stg_erp__invoices.po_number_norm is null then 'no PO number on the invoice'
            when int_purchase_orders.po_number is null then 'PO ' || stg_erp__invoices.po_number || ' is not in the ERP'
            when stg_erp__invoices.po_line_number is not null and po_lines.line_number is null
                then 'line ' || stg_erp__invoices.po_line_number || ' is not a line of PO ' || int_purchase_orders.po_number
        end as po_reference_problem
    from stg_erp__invoices
    left join int_purchase_orders on int_purchase_orders.po_number_norm = stg_erp__invoices.po_number_norm
    left join po_lines
        on po_lines.po_number_norm = int_purchase_orders.po_number_norm
        and po_lines.line_number = stg_erp__invoices.po_line_number
),

converted as (
    select
        resolved.*,
        case when resolved.currency = resolved.po_currency then 1.0 else int_fx_rates.rate end as fx_rate,
        case when resolved.currency <> resolved.po_currency then int_fx_rates.rate_date end as fx_rate_date
    from resolved
    asof left join int_fx_rates
        on int_fx_rates.from_currency = resolved.currency
        and int_fx_rates.to_currency = resolved.po_currency
        and resolved.invoice_date >= int_fx_rates.rate_date
)

select
    *,
    amount * fx_rate as amount_po_currency,
    -- NULL when an invoice so far has no FX rate (a partial sum would understate what was invoiced)
    case
        when erp_po_number is not null and count(*) filter (where fx_rate is null) over po_so_far = 0
            then sum(amount * fx_rate) over po_so_far
    end as po_invoiced_to_date,
    case
        when erp_line_number is not null and count(*) filter (where fx_rate is null) over line_so_far = 0
            then sum(amount * fx_rate) over line_so_far
    end as line_invoiced_to_date
from converted
window
    po_so_far as (
        partition by erp_po_number order by invoice_date, invoice_number, vendor_id
        rows between unbounded preceding and current row
    ),
    line_so_far as (
        partition by erp_po_number, erp_line_number order by invoice_date, invoice_number, vendor_id
        rows between unbounded preceding and current row
    )
