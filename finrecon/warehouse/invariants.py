"""Accounting invariants, checked on every build before it can be published.

Finance pays invoices from these tables, so a build that loses, invents or double-counts cost must never replace
the last good publication. Each invariant is one query that returns the rows violating it (none when it holds),
run over the database being built (`pub`) and the run's state file (`state`); `check` raises
`InvariantViolation` naming every broken invariant and its first offending rows, which fails the run before the
swap. The queries are fixed SQL: the run id is a bound parameter, and the two catalogs are quoted identifiers.

Costs are compared with the landing books' tolerance (1e-9, relative for large sums).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from finrecon.core.sql_text import identifier
from finrecon.warehouse.landing import ReconciliationError


class InvariantViolation(ReconciliationError):
    """A build broke an accounting invariant; it is not published."""


@dataclass(frozen=True)
class Invariant:
    name: str
    meaning: str
    sql: str  # {pub} and {state}: quoted catalog names; $run_id: this run


def _differs(a: str, b: str) -> str:
    """SQL: two cost expressions differ by more than the books' tolerance (NULL on one side only differs too)."""
    return (
        f"(({a}) is null) <> (({b}) is null) or abs(({a}) - ({b})) > 1e-9 * greatest(1, abs({a}), abs({b}))"
    )


def _provider_key(column: str) -> str:
    """SQL: a provider compared across the lake's partition slug ("google-cloud") and the published name
    ("Google Cloud"): lower-case letters and digits only."""
    return f"regexp_replace(lower({column}), '[^a-z0-9]', '', 'g')"


def _shown(*expressions: str) -> str:
    """SQL: format() arguments that show a side missing from a full join as "nothing" (one NULL argument
    would make the whole message NULL)."""
    return ", ".join(f"coalesce(({expression})::varchar, 'nothing')" for expression in expressions)


_LAKE_PROVIDER = _provider_key("provider")
_PUBLISHED_PROVIDER = _provider_key("provider_name")
_PERIOD_FIGURES = _shown(
    "lake.row_count", "lake.billed", "lake.effective", "published.row_count", "published.billed",
    "published.effective", "published.buckets",
)  # fmt: skip
_COVERAGE_FIGURES = _shown(
    "charges.effective", "charges.billed", "coverage.effective", "coverage.billed", "coverage.total_effective",
    "coverage.total_billed",
)  # fmt: skip

INVARIANTS: tuple[Invariant, ...] = (
    Invariant(
        "charges_equal_lake",
        "the published charges (charges_daily, which every mart reads) are the lake's current parts, row for row "
        "and cent for cent",
        f"""
        with lake as (
            select coalesce(sum(row_count), 0) as row_count, coalesce(sum(billed_cost), 0) as billed,
                   coalesce(sum(effective_cost), 0) as effective
            from {{state}}.main.lake_parts
        ), published as (
            select coalesce(sum(charge_count), 0) as row_count, coalesce(sum(BilledCost), 0) as billed,
                   coalesce(sum(EffectiveCost), 0) as effective
            from {{pub}}.main.charges_daily
        )
        select 'all charges' as scope,
               format('lake: rows {{}}, BilledCost {{}}, EffectiveCost {{}}; published: rows {{}}, BilledCost {{}}, '
                      'EffectiveCost {{}}', lake.row_count, lake.billed, lake.effective, published.row_count,
                      published.billed, published.effective) as detail
        from lake, published
        where lake.row_count <> published.row_count
           or {_differs("lake.billed", "published.billed")}
           or {_differs("lake.effective", "published.effective")}
        """,
    ),
    Invariant(
        "period_totals_equal_lake",
        "per provider and billing period, the cost landed equals billing_period_totals, and that total equals "
        "its buckets: valid PO + invalid PO + untagged",
        f"""
        with lake as (
            select {_LAKE_PROVIDER} as provider, billing_period, sum(row_count) as row_count,
                   sum(billed_cost) as billed, sum(effective_cost) as effective
            from {{state}}.main.lake_parts
            group by all
        ), published as (
            select {_PUBLISHED_PROVIDER} as provider, billing_period, sum(charge_count) as row_count,
                   sum(total_billed_cost) as billed, sum(total_cost) as effective,
                   sum(valid_po_cost + invalid_po_cost + untagged_cost) as buckets
            from {{pub}}.main.billing_period_totals
            group by all
        )
        select coalesce(lake.provider, published.provider) || ' ' ||
               coalesce(lake.billing_period, published.billing_period) as scope,
               format('landed: rows {{}}, BilledCost {{}}, EffectiveCost {{}}; published: rows {{}}, '
                      'BilledCost {{}}, EffectiveCost {{}} of which valid + invalid + untagged = {{}}',
                      {_PERIOD_FIGURES}) as detail
        from lake
        full join published using (provider, billing_period)
        where lake.row_count is distinct from published.row_count
           or {_differs("lake.billed", "published.billed")}
           or {_differs("lake.effective", "published.effective")}
           or {_differs("published.effective", "published.buckets")}
        """,
    ),
    Invariant(
        "coverage_buckets_add_up",
        "tag_coverage splits each day's cost into valid PO + invalid PO + untagged with nothing left over, and "
        "per provider and month it holds all the charges up to as_of",
        f"""
        with charges as (
            select lower(ProviderName) as provider, strftime(x_charge_date, '%Y-%m') as month,
                   sum(EffectiveCost) as effective, sum(BilledCost) as billed
            from {{pub}}.main.charges_daily
            where x_charge_date <= getvariable('as_of')
            group by all
        ), coverage as (
            select lower(provider_name) as provider, strftime(charge_date, '%Y-%m') as month,
                   sum(valid_po_cost + invalid_po_cost + untagged_cost) as effective,
                   sum(valid_po_billed_cost + invalid_po_billed_cost + untagged_billed_cost) as billed,
                   sum(total_cost) as total_effective, sum(total_billed_cost) as total_billed
            from {{pub}}.main.tag_coverage
            group by all
        )
        select coalesce(charges.provider, coverage.provider) || ' ' || coalesce(charges.month, coverage.month)
                   as scope,
               format('charges: EffectiveCost {{}}, BilledCost {{}}; tag_coverage buckets: {{}}, {{}} '
                      '(totals {{}}, {{}})', {_COVERAGE_FIGURES}) as detail
        from charges
        full join coverage using (provider, month)
        where {_differs("charges.effective", "coverage.effective")}
           or {_differs("charges.billed", "coverage.billed")}
           or {_differs("coverage.effective", "coverage.total_effective")}
           or {_differs("coverage.billed", "coverage.total_billed")}
        """,
    ),
    Invariant(
        "one_po_per_charge",
        "every charge is published once with at most one PO (the PO resolution joins duplicate nothing), and PO "
        "consumption adds up to exactly the valid-PO charges up to as_of",
        f"""
        with lake as (
            select coalesce(sum(row_count), 0) as row_count from {{state}}.main.lake_parts
        ), published as (
            select count(*) as row_count from {{pub}}.main.charges
        ), valid as (
            select coalesce(sum(BilledCost), 0) as billed
            from {{pub}}.main.charges_daily
            where x_po_status = 'valid' and x_charge_date <= getvariable('as_of')
        ), consumed as (
            select coalesce(sum(billed_cost), 0) as billed from {{pub}}.main.po_consumption_daily
        )
        select 'charges' as scope,
               format('{{}} charges published for {{}} landed', published.row_count, lake.row_count) as detail
        from lake, published
        where lake.row_count <> published.row_count
        union all
        select 'charges', format('{{}} published charges are valid without a PO, or carry a PO and a status '
                                 'other than valid/invalid', count(*))
        from {{pub}}.main.charges_daily
        where (x_po_status = 'valid' and x_po_number is null)
           or x_po_status is null or x_po_status not in ('valid', 'invalid', 'untagged')
        having count(*) > 0
        union all
        select 'po_consumption_daily',
               format('Σ BilledCost consumed by POs {{}} <> Σ BilledCost of valid-PO charges {{}}',
                      consumed.billed, valid.billed)
        from valid, consumed
        where {_differs("valid.billed", "consumed.billed")}
        """,
    ),
    Invariant(
        "books_balance",
        "for every file this run read: rows and cost read = loaded + quarantined, and the quarantine holds "
        "exactly the quarantined rows",
        f"""
        with quarantined as (
            select source, file_path, count(distinct (coalesce(source_file, ''), row_number)) as row_count
            from {{state}}.main.quarantine
            where run_id = $run_id and row_number is not null
            group by all
        )
        select f.source || ': ' || f.file_path as scope,
               format('read {{}} rows, BilledCost {{}}, EffectiveCost {{}}; loaded {{}}, {{}}, {{}}; quarantined '
                      '{{}}, {{}}, {{}} ({{}} rows in quarantine)', f.rows_read, f.billed_read, f.effective_read,
                      f.rows_loaded, f.billed_loaded, f.effective_loaded, f.rows_quarantined,
                      f.billed_quarantined, f.effective_quarantined, coalesce(q.row_count, 0)) as detail
        from {{state}}.main.run_files f
        left join quarantined q using (source, file_path)
        where f.run_id = $run_id and f.status = 'landed'
          and (f.rows_read is distinct from f.rows_loaded + f.rows_quarantined
               or {_differs("f.billed_read", "f.billed_loaded + f.billed_quarantined")}
               or {_differs("f.effective_read", "f.effective_loaded + f.effective_quarantined")}
               or coalesce(q.row_count, 0) <> coalesce(f.rows_quarantined, 0))
        """,
    ),
)

_SHOWN = 5  # offending rows named per invariant in the error


def violations(
    con: duckdb.DuckDBPyConnection, pub: str, state: str, run_id: str
) -> dict[str, list[tuple[str, str]]]:
    """Each broken invariant's name and its offending rows (scope, detail); empty when all hold."""
    found: dict[str, list[tuple[str, str]]] = {}
    for invariant in INVARIANTS:
        sql = invariant.sql.replace("{pub}", identifier(pub)).replace("{state}", identifier(state))
        parameters = {"run_id": run_id} if "$run_id" in sql else {}
        rows = con.execute(sql, parameters).fetchall()
        if rows:
            found[invariant.name] = [(str(scope), str(detail)) for scope, detail in rows]
    return found


def check(con: duckdb.DuckDBPyConnection, pub: str, state: str, run_id: str) -> int:
    """Raise `InvariantViolation` when any invariant is broken; else return how many were checked."""
    broken = violations(con, pub, state, run_id)
    if broken:
        meanings = {invariant.name: invariant.meaning for invariant in INVARIANTS}
        lines = [
            f"{name} ({meanings[name]}): "
            + "; ".join(f"{scope}: {detail}" for scope, detail in rows[:_SHOWN])
            for name, rows in broken.items()
        ]
        raise InvariantViolation(
            f"{len(broken)} of {len(INVARIANTS)} accounting invariants broken, nothing published: "
            + " | ".join(lines)
        )
    return len(INVARIANTS)
