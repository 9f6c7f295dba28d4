-- grain: one goods receipt line (receipt_number × po_number × po_line_number) whose PO is in the ERP, valued in
-- the PO currency at the latest FX rate on or before the receipt date (NULL when there is none: never 1.0); a
-- receipt without a currency is in its PO's currency
with resolved as (
    select
        stg_erp__goods_receipts.*,
        int_purchase_orders.po_number as erp_po_number,
        int_purchase_orders.vendor_id,
        int_purchase_orders.currency as po_currency,
        coalesce(stg_erp__goods_receipts.currency, int_purchase_orders.currency) as receipt_currency
    from stg_erp__goods_receipts
    inner join int_purchase_orders on int_purchase_orders.po_number_norm = stg_erp__goods_receipts.po_number_norm
),

converted as (
    select
        resolved.*,
        case when resolved.receipt_currency = resolved.po_currency then 1.0 else int_fx_rates.rate end as fx_rate
    from resolved
    asof left join int_fx_rates
        on int_fx_rates.from_currency = resolved.receipt_currency
        and int_fx_rates.to_currency = resolved.po_currency
        and resolved.receipt_date >= int_fx_rates.rate_date
)

select
    receipt_number,
    erp_po_number,
    vendor_id,
    po_line_number,
    receipt_date,
    quantity,
    receipt_currency,
    amount,
    po_currency,
    fx_rate,
    amount * fx_rate as amount_po_currency
from converted
