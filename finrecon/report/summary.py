"""The run summary: coverage by provider, the POs burning fastest, commitment utilisation, and the books.

Read from the published database (what analysts see), never from the pipeline's working tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.table import Table

Row = dict[str, Any]

COVERAGE_SQL = """
select
    provider_name,
    billing_currency,
    sum(total_cost) as effective_cost,
    sum(valid_po_cost) as valid_po_cost,
    sum(invalid_po_cost) as invalid_po_cost,
    sum(untagged_cost) as untagged_cost,
    sum(valid_po_cost) / nullif(sum(total_cost), 0) as coverage_ratio,
    sum(total_billed_cost) as billed_cost,
    sum(valid_po_billed_cost) / nullif(sum(total_billed_cost), 0) as billed_coverage_ratio
from tag_coverage
group by all
order by provider_name, billing_currency
"""

BURN_SQL = """
select po_number, vendor_name, po_currency, committed_amount, consumed_amount, consumed_ratio, burn_rate_daily,
       projected_exhaustion_date, valid_to, threshold_state
from po_burn
where as_of = (select max(as_of) from po_burn)
  and (consumed_amount > 0 or threshold_state = 'fx_missing')
order by projected_exhaustion_date nulls last, consumed_ratio desc nulls last, po_number
limit ?
"""

COMMITMENT_SQL = """
select provider_name, commitment_discount_id, commitment_discount_type, billing_month, used_cost, unused_cost,
       utilization_ratio, coverage_ratio, funded_po_number
from commitment_utilization
order by provider_name, commitment_discount_id, billing_month
"""

NEAR_MISS_SQL = """
select tag_key, sum(effective_cost) as effective_cost, sum(charge_count) as charge_count,
       string_agg(distinct provider_name, ', ' order by provider_name) as providers
from tag_key_inventory
where looks_like_po_key
group by tag_key
order by effective_cost desc, tag_key
"""

RECONCILIATION_SQL = """
select reference_source, scope, dataset, usage_date, currency, reference_cost, exported_cost, difference, status
from provider_reconciliation
where status <> 'matched'
order by usage_date, scope
"""

RUN_SQL = "select * from runs order by started_at desc limit 1"


@dataclass(frozen=True)
class Summary:
    path: Path
    run: Row
    coverage: list[Row]
    burning: list[Row]
    commitments: list[Row]
    near_miss_keys: list[Row]  # tag keys that look like PO keys but are not configured
    reconciliation_gaps: list[Row]  # provider API totals that the exports do not match


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[Row]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_summary(published: Path, top_pos: int = 5) -> Summary:
    con = duckdb.connect(str(published), read_only=True)
    try:
        return Summary(
            path=published,
            run=_rows(con, RUN_SQL)[0],
            coverage=_rows(con, COVERAGE_SQL),
            burning=_rows(con, BURN_SQL, [top_pos]),
            commitments=_rows(con, COMMITMENT_SQL),
            near_miss_keys=_rows(con, NEAR_MISS_SQL),
            reconciliation_gaps=_rows(con, RECONCILIATION_SQL),
        )
    finally:
        con.close()


def _money(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.6f}" if abs(value) < 1 else f"{value:,.2f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _tables(summary: Summary) -> list[Table]:
    coverage = Table(title="PO coverage by provider (Σ EffectiveCost; billed in the last two columns)")
    for name in (
        "provider",
        "currency",
        "effective",
        "valid PO",
        "invalid PO",
        "untagged",
        "coverage",
        "billed",
        "billed cov.",
    ):
        coverage.add_column(name, justify="left" if name in ("provider", "currency") else "right")
    for r in summary.coverage:
        coverage.add_row(
            r["provider_name"], r["billing_currency"], _money(r["effective_cost"]), _money(r["valid_po_cost"]),
            _money(r["invalid_po_cost"]), _money(r["untagged_cost"]), _pct(r["coverage_ratio"]),
            _money(r["billed_cost"]), _pct(r["billed_coverage_ratio"]),
        )  # fmt: skip
    burning = Table(title="POs burning fastest")
    for name in (
        "PO",
        "vendor",
        "cur.",
        "committed",
        "consumed",
        "used",
        "burn/day",
        "exhausted by",
        "valid to",
        "state",
    ):
        burning.add_column(name)
    for r in summary.burning:
        burning.add_row(
            r["po_number"], r["vendor_name"], r["po_currency"], _money(r["committed_amount"]),
            _money(r["consumed_amount"]), _pct(r["consumed_ratio"]), _money(r["burn_rate_daily"]),
            str(r["projected_exhaustion_date"] or "—"), str(r["valid_to"]), r["threshold_state"],
        )  # fmt: skip
    commitments = Table(title="Commitment utilisation")
    for name in (
        "provider",
        "commitment",
        "type",
        "month",
        "used",
        "unused",
        "utilisation",
        "coverage",
        "funded by",
    ):
        commitments.add_column(name)
    for r in summary.commitments:
        commitments.add_row(
            r["provider_name"], r["commitment_discount_id"], r["commitment_discount_type"] or "—",
            r["billing_month"], _money(r["used_cost"]), _money(r["unused_cost"]), _pct(r["utilization_ratio"]),
            _pct(r["coverage_ratio"]), r["funded_po_number"] or "—",
        )  # fmt: skip
    tables = [coverage, burning, commitments]
    if summary.near_miss_keys:
        near = Table(
            title="Tag keys that look like PO keys but are not in tags.po_keys (add them as aliases?)"
        )
        for name in ("tag key", "providers", "charges", "effective"):
            near.add_column(name)
        for r in summary.near_miss_keys:
            near.add_row(r["tag_key"], r["providers"], str(r["charge_count"]), _money(r["effective_cost"]))
        tables.append(near)
    if summary.reconciliation_gaps:
        gaps = Table(title="Provider API totals the exports do not match")
        for name in ("source", "scope", "day", "cur.", "API", "exported", "difference", "status"):
            gaps.add_column(name)
        for r in summary.reconciliation_gaps:
            gaps.add_row(
                r["reference_source"], r["scope"], str(r["usage_date"]), r["currency"], _money(r["reference_cost"]),
                _money(r["exported_cost"]), _money(r["difference"]), r["status"],
            )  # fmt: skip
        tables.append(gaps)
    return tables


def books_line(run: Row) -> str:
    return (
        f"run {run['run_id']} as_of {run['as_of']}: {run['status']}; files landed {run['files_landed']}, "
        f"unchanged {run['files_unchanged']}, failed {run['files_failed']}, removed {run['files_removed']}; "
        f"rows read {run['rows_read']} = loaded {run['rows_loaded']} + quarantined {run['rows_quarantined']}; "
        f"BilledCost read {_money(run['billed_read'])} = loaded {_money(run['billed_loaded'])} + quarantined "
        f"{_money(run['billed_quarantined'])}; published {run['published_charge_rows']} charges"
    )


def render(summary: Summary, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]Published[/bold] {summary.path}")
    console.print(books_line(summary.run))
    for table in _tables(summary):
        console.print(table)


def to_markdown(summary: Summary) -> str:
    """The same summary as Markdown, for the Prefect run artifact."""
    lines = [f"# Nightly reconciliation {summary.run['as_of']}", "", books_line(summary.run), ""]
    lines += [
        "## Coverage by provider",
        "",
        "| provider | currency | effective | valid PO | coverage |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['provider_name']} | {r['billing_currency']} | {_money(r['effective_cost'])} | "
        f"{_money(r['valid_po_cost'])} | {_pct(r['coverage_ratio'])} |"
        for r in summary.coverage
    ]
    lines += [
        "",
        "## POs burning fastest",
        "",
        "| PO | vendor | consumed | used | exhausted by | state |",
        "|---|---|---:|---:|---|---|",
    ]
    lines += [
        f"| {r['po_number']} | {r['vendor_name']} | {_money(r['consumed_amount'])} {r['po_currency']} | "
        f"{_pct(r['consumed_ratio'])} | {r['projected_exhaustion_date'] or '—'} | {r['threshold_state']} |"
        for r in summary.burning
    ]
    lines += [
        "",
        "## Commitment utilisation",
        "",
        "| commitment | month | used | unused | utilisation |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['commitment_discount_id']} | {r['billing_month']} | {_money(r['used_cost'])} | "
        f"{_money(r['unused_cost'])} | {_pct(r['utilization_ratio'])} |"
        for r in summary.commitments
    ]
    if summary.near_miss_keys:
        lines += ["", "## Tag keys that look like PO keys but are not configured", ""]
        lines += [
            f"- `{r['tag_key']}` ({r['providers']}): {_money(r['effective_cost'])}"
            for r in summary.near_miss_keys
        ]
    if summary.reconciliation_gaps:
        lines += ["", "## Provider API totals the exports do not match", ""]
        lines += [
            f"- {r['scope']} {r['usage_date']}: API {_money(r['reference_cost'])} {r['currency']}, exported "
            f"{_money(r['exported_cost'])} ({r['status']})"
            for r in summary.reconciliation_gaps
        ]
    return "\n".join(lines) + "\n"
