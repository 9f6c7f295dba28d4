-- grain: one charge content (every FOCUS attribute and amount that identifies a charge) found in more than one
-- input file: the same line delivered twice by overlapping files. Reported, not removed: which copy is right is
-- for the analyst (or the export's owner) to say. The groups are kept per charge key between runs and recomputed
-- only where the lake changed (sql/partials/duplicate_charge_groups.sql, warehouse/partials.py); the reporting
-- currency's rate (a copy has the same charge day) is applied here
select
    int_duplicate_charge_groups.row_hash,
    int_duplicate_charge_groups.provider_name,
    int_duplicate_charge_groups.billing_period,
    int_duplicate_charge_groups.charge_period_start,
    int_duplicate_charge_groups.service_name,
    int_duplicate_charge_groups.resource_id,
    int_duplicate_charge_groups.billed_cost_each,
    int_duplicate_charge_groups.copies,
    int_duplicate_charge_groups.files,
    int_duplicate_charge_groups.source_files,
    int_duplicate_charge_groups.billed_cost_in_extra_copies,
    int_duplicate_charge_groups.billing_currency,
    getvariable('reporting_currency') as reporting_currency,
    int_duplicate_charge_groups.billed_cost_each * reporting_fx_rates.fx_rate as billed_cost_each_reporting,
    int_duplicate_charge_groups.billed_cost_in_extra_copies * reporting_fx_rates.fx_rate
        as billed_cost_in_extra_copies_reporting
from int_duplicate_charge_groups
left join reporting_fx_rates
    on reporting_fx_rates.rate_day = int_duplicate_charge_groups.charge_date
    and reporting_fx_rates.from_currency = int_duplicate_charge_groups.billing_currency
