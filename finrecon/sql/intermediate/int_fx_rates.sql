-- grain: rate_date × from_currency × to_currency; the extract's rates plus the inverse of pairs it gives
-- only the other way round (a direct rate always wins over an inverted one)
with direct as (
    select rate_date, from_currency, to_currency, rate, false as is_inverted
    from stg_erp__fx_rates
),

inverted as (
    select rate_date, to_currency as from_currency, from_currency as to_currency, 1.0 / rate as rate, true as is_inverted
    from stg_erp__fx_rates
),

all_rates as (
    select * from direct
    union all
    select * from inverted
)

select rate_date, from_currency, to_currency, rate, is_inverted
from all_rates
qualify row_number() over (partition by rate_date, from_currency, to_currency order by is_inverted) = 1
