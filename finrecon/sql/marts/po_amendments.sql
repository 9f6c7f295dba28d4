-- grain: one change of an ERP PO header between nightly extracts: po_header_history's version n against
-- version n − 1 (n > 1), with what changed. An amount raised without a new approval timestamp is flagged: the
-- ERP extract says the PO grew, but not that anyone approved the growth
with versions as (
    select
        *,
        lag(total_amount) over by_version as old_total_amount,
        lag(currency) over by_version as old_currency,
        lag(status) over by_version as old_status,
        lag(valid_from) over by_version as old_valid_from,
        lag(valid_to) over by_version as old_valid_to,
        lag(approved_at) over by_version as old_approved_at
    from po_header_history
    window by_version as (partition by po_number order by version)
)

select
    -- which change
    po_number,
    version,
    change_kind,
    changed_fields,
    in_force_from as changed_on,
    seen_run_id,
    seen_at,
    vendor_id,
    vendor_name,
    cost_center,
    -- amount (PO currency)
    currency,
    old_total_amount,
    total_amount as new_total_amount,
    total_amount - old_total_amount as amount_delta,
    -- status and validity
    old_status,
    status as new_status,
    old_valid_from,
    valid_from as new_valid_from,
    old_valid_to,
    valid_to as new_valid_to,
    -- approval
    old_approved_at,
    approved_at as new_approved_at,
    approved_at is not null and approved_at is distinct from old_approved_at as approval_recorded,
    total_amount > old_total_amount
        and not (approved_at is not null and approved_at is distinct from old_approved_at)
        as raised_without_approval,
    getvariable('as_of') as as_of
from versions
where version > 1
order by po_number, version
