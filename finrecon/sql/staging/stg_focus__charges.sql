-- grain: one charge row as landed in the lake (one row of one input file); typed FOCUS columns, dates derived
with landed as (
    select * from lake_charges
)

select
    landed.*,
    -- dates
    cast(ChargePeriodStart as date) as x_charge_date,
    strftime(coalesce(BillingPeriodStart, ChargePeriodStart), '%Y-%m') as x_billing_period
from landed
