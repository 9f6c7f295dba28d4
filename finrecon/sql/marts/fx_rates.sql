-- grain: rate_date × from_currency × to_currency as validated from the ERP extract
select *
from stg_erp__fx_rates
