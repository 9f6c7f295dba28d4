-- grain: rate_date × from_currency × to_currency; `rate` = units of to_currency per unit of from_currency
select rate_date, from_currency, to_currency, rate
from erp_fx_rates
