-- grain: one legacy AWS CUR line item (one row of one report file of a billing period), in CUR 2.0 columns
-- applied at landing: runs once per delivered billing period over relation `cur_legacy_delivery`; its output is
-- then mapped to FOCUS by stg_aws__cur2
--
-- The connector has already renamed the columns to CUR 2.0's snake case (`lineItem/UnblendedCost` →
-- `line_item_unblended_cost`), added the ones this month's report lacks as NULL (the manifest's column list
-- drifts month to month), and gathered the per-key tag columns (`resourceTags/user:CostCenter`,
-- `resource_tags_user_cost_center`) into one JSON object, CUR 2.0's `resource_tags`. Legacy CUR has no account
-- names.
select
    * exclude (bill_payer_account_name, line_item_usage_account_name),
    cast(null as varchar) as bill_payer_account_name,
    cast(null as varchar) as line_item_usage_account_name
from cur_legacy_delivery
