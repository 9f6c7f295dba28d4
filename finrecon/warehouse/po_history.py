"""Every version of each ERP PO header the nightly extracts delivered (`po_header_versions` in the state file).

The ERP extract is a snapshot: tonight's header replaces last night's, so "what was PO X's committed amount on
date D" or "which night's extract raised it" cannot be read from it. Each build compares the validated headers
with the last version kept per PO and adds a version for every PO that is new, changed, gone from the extract or
back in it. A version is in force from the `as_of` of the run that first saw it (version 1: from the start) to
the next version's; a back-dated run never moves a version before one already kept.

Versions of runs that did not publish (failed, or killed mid-run) are dropped first, so the history is what
analysts saw. Published as `po_header_history`; `po_amendments` and `po_burn` read it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from finrecon.warehouse.state import State

# the header fields compared between versions (stg_erp__po_headers' columns, bar the comparison key)
FIELDS = (
    "vendor_id", "vendor_name", "po_type", "cost_center", "parent_po_number", "currency", "total_amount", "status",
    "erp_status", "valid_from", "valid_to", "requested_at", "approved_at", "issued_at",
)  # fmt: skip

_CHANGED = " || ".join(
    f"case when current.{f} is distinct from kept.{f} then ['{f}'] else [] end" for f in FIELDS
)
# a PO gone from the extract keeps its last fields on its `removed` version
_VALUES = ", ".join(
    f"case when current.po_number is null then kept.{f} else current.{f} end as {f}" for f in FIELDS
)

_NEW_VERSIONS_SQL = f"""
insert into {{versions}}
with kept as (
    select * from {{versions}}
    qualify row_number() over (partition by po_number order by version desc) = 1
),
current as (
    select * from stg_erp__po_headers
),
compared as (
    select
        coalesce(current.po_number, kept.po_number) as po_number,
        coalesce(kept.version, 0) + 1 as version,
        case
            when kept.po_number is null then 'new'
            when current.po_number is null then 'removed'
            when kept.change_kind = 'removed' then 'returned'
            else 'changed'
        end as change_kind,
        case when kept.po_number is null or current.po_number is null then []::varchar[] else {_CHANGED} end
            as changed_fields,
        -- never before a version already kept (a back-dated run)
        case when kept.po_number is not null then greatest($as_of, coalesce(kept.in_force_from, $as_of)) end
            as in_force_from,
        coalesce(kept.change_kind = 'removed', false) as was_gone,
        {_VALUES}
    from current
    full outer join kept on kept.po_number = current.po_number
)
select
    po_number, version, change_kind, changed_fields, in_force_from, $run_id, $seen_at, {", ".join(FIELDS)}
from compared
where change_kind in ('new', 'returned')
    or (change_kind = 'removed' and not was_gone)
    or (change_kind = 'changed' and len(changed_fields) > 0)
"""

_PUBLISHED_SQL = """
create or replace table {target} as
select
    po_number,
    version,
    change_kind,
    changed_fields,
    in_force_from,
    lead(in_force_from) over (partition by po_number order by version) as in_force_to,
    version = max(version) over (partition by po_number) as is_current,
    seen_run_id,
    seen_at,
    {fields}
from {versions}
order by po_number, version
"""


def record_versions(state: State, run_id: str, as_of: date, target_catalog: str) -> None:
    """Add tonight's versions (bare `stg_erp__po_headers` must resolve) and publish the history."""
    versions = f'"{state.catalog}".main.po_header_versions'
    runs = f'"{state.catalog}".main.runs'
    with state.transaction() as con:
        con.execute(
            f"delete from {versions} where seen_run_id in "
            f"(select run_id from {runs} where status <> 'succeeded' and run_id <> ?)",
            [run_id],
        )
        con.execute(
            _NEW_VERSIONS_SQL.format(versions=versions),
            {"run_id": run_id, "as_of": as_of, "seen_at": datetime.now(UTC)},
        )
    state.con.execute(
        _PUBLISHED_SQL.format(
            target=f"{target_catalog}.main.po_header_history", versions=versions, fields=", ".join(FIELDS)
        )
    )
