"""The run summary: coverage by provider, the POs burning fastest, commitment utilisation, the closed billing
periods the run restated (before and after), and the books.

Read from the published database (what analysts see), never from the pipeline's working tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
select u.provider_name, u.commitment_discount_id, u.commitment_discount_type, u.billing_month, u.used_cost,
       u.unused_cost, u.cost_utilization_ratio, u.quantity_utilization_ratio, u.commitment_discount_unit,
       u.funded_po_number, i.term_end, i.days_to_expiry, i.term_state
from commitment_utilization as u
left join commitment_inventory as i using (commitment_discount_id)
order by u.provider_name, u.commitment_discount_id, u.billing_month
"""

COMMITMENT_COVERAGE_SQL = """
select provider_name, billing_currency, sum(covered_cost) as covered_cost, sum(eligible_cost) as eligible_cost,
       sum(covered_cost) / nullif(sum(eligible_cost), 0) as coverage_ratio,
       sum(unused_commitment_cost) as unused_commitment_cost
from commitment_coverage
group by all
having sum(eligible_cost) <> 0 or sum(unused_commitment_cost) <> 0
order by provider_name, billing_currency
"""

REPORTING_SQL = """
select any_value(reporting_currency) as reporting_currency,
       case when bool_or(reporting_fx_missing) then null else sum(total_cost_reporting) end as effective_cost,
       case when bool_or(reporting_fx_missing) then null else sum(valid_po_cost_reporting) end as valid_po_cost,
       count(*) filter (where reporting_fx_missing) as days_without_rate
from tag_coverage
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

BLANKET_SQL = """
select po_number, po_currency, ceiling_amount, release_count, released_amount, remaining_ceiling_amount,
       releases_exceed_ceiling, excess_amount, total_consumed_amount, consumed_ratio, fx_missing
from blanket_po_releases
order by releases_exceed_ceiling desc nulls first, po_number
"""

# The lines of the POs that po_cloud_mapping maps spend to (a PO without a mapped line has one unallocated row).
LINE_BURN_SQL = """
select po_number, line_number, line_state, po_currency, line_amount, consumed_amount, consumed_ratio, charge_count
from po_line_burn
where po_number in (select po_number from po_line_burn where line_number is not null and charge_count > 0)
order by po_number, line_number nulls last
"""

# Invoice matching: invoices by match type and status, then every match that needs a person.
INVOICE_MATCH_SQL = """
select match_type, status, count(*) as invoice_count
from invoice_match
group by all
order by match_type, status
"""

INVOICE_EXCEPTIONS_SQL = """
select invoice_number, vendor_id, coalesce(erp_po_number, po_number) as po_number, match_type, status, currency,
       compared_amount, reference_amount, difference, reason
from invoice_match
where status not in ('matched', 'not_applicable')
order by invoice_date, invoice_number, match_type
"""

# Closed billing periods whose published figures this run changed (billing_period_history): re-delivered,
# removed, or a key a re-delivered input added. First publications (a new key nothing restated) are not listed.
KPI_SQL = """
select kpi_month, vendor_name, po_count, avg_approval_days, avg_issue_days, avg_po_to_receipt_days,
       emergency_po_rate, open_po_count, invoice_count, invoice_auto_match_rate
from po_kpis
order by kpi_month desc, vendor_name
limit ?
"""

# One line of data checks: quality flags, duplicated charges, commitments whose amortisation does not add up
CHECKS_SQL = """
select
    (select coalesce(sum(charge_count), 0) from data_quality) as flagged_charges,
    (select string_agg(distinct quality_flag, ', ' order by quality_flag) from data_quality) as quality_flags,
    (select count(*) from duplicate_charges) as duplicated_charges,
    (select count(*) from commitment_amortization where amortization_status = 'over_amortized')
        as over_amortized_commitments,
    (select count(*) from commitment_amortization) as commitments,
    (select count(distinct tag_key) from tag_key_inventory) as tag_keys,
    (select count(distinct tag_key) from tag_key_inventory where is_po_key) as po_tag_keys,
    (select count(distinct tag_key) from tag_key_inventory where looks_like_po_key) as near_miss_tag_keys,
    (select count(*) from restatements) as restatements
"""

RESTATED_SQL = """
select billing_period, provider_name, billing_account_id, billing_currency, change_kind, restated,
       total_cost_before, total_cost_after, total_cost_delta, valid_po_cost_before, valid_po_cost_after,
       untagged_cost_before, untagged_cost_after, charge_count_before, charge_count_after
from billing_period_history
where run_id = ? and period_closed and (change_kind <> 'new' or restated)
order by billing_period, provider_name, billing_account_id, billing_currency
"""


ALERTS_SQL = """
select severity, alert_id, title, first_fired_as_of
from alerts
where status = 'open'
order by case severity when 'critical' then 0 when 'warning' then 1 else 2 end, alert_key
"""


def _alerts(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Open alerts and pending deliveries; none for a publication older than the alert tables."""
    found = con.execute(
        "select count(*) from duckdb_tables() where table_name in ('alerts', 'alert_notifications')"
    )
    if found.fetchall()[0][0] < 2:
        return {}
    pending = con.execute("select count(*) from alert_notifications where status = 'pending'").fetchone()
    return {"alerts": _rows(con, ALERTS_SQL), "pending_notifications": int(pending[0]) if pending else 0}


@dataclass(frozen=True)
class Summary:
    path: Path
    run: Row
    coverage: list[Row]
    burning: list[Row]
    commitments: list[Row]
    commitment_coverage: list[Row]  # by provider over the eligibility map, on-demand-equivalent cost
    reporting: Row  # all charges in the reporting currency
    near_miss_keys: list[Row]  # tag keys that look like PO keys but are not configured
    reconciliation_gaps: list[Row]  # provider API totals that the exports do not match
    restated_periods: list[Row]  # closed billing periods this publication changed: before and after
    blankets: list[Row]  # blanket POs: ceiling against the releases drawn on it, and consumption
    line_burn: list[Row]  # PO lines that po_cloud_mapping maps spend to
    invoice_match: list[Row]  # invoices by match type and status
    invoice_exceptions: list[Row]  # invoice matches that are neither matched nor not applicable
    kpis: list[Row]  # procurement KPIs, latest months first
    checks: Row  # data-quality counts
    alerts: list[Row] = field(default_factory=list)  # open alerts, most severe first
    pending_notifications: int = 0  # alert notifications no channel has accepted yet


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[Row]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_summary(published: Path, top_pos: int = 5) -> Summary:
    con = duckdb.connect(str(published), read_only=True)
    try:
        run = _rows(con, RUN_SQL)[0]
        return Summary(
            path=published,
            run=run,
            coverage=_rows(con, COVERAGE_SQL),
            burning=_rows(con, BURN_SQL, [top_pos]),
            commitments=_rows(con, COMMITMENT_SQL),
            commitment_coverage=_rows(con, COMMITMENT_COVERAGE_SQL),
            reporting=_rows(con, REPORTING_SQL)[0],
            near_miss_keys=_rows(con, NEAR_MISS_SQL),
            reconciliation_gaps=_rows(con, RECONCILIATION_SQL),
            restated_periods=_restated_periods(con, run),
            blankets=_rows(con, BLANKET_SQL),
            line_burn=_rows(con, LINE_BURN_SQL),
            invoice_match=_rows(con, INVOICE_MATCH_SQL),
            kpis=_rows(con, KPI_SQL, [8]),
            checks=_rows(con, CHECKS_SQL)[0],
            invoice_exceptions=_rows(con, INVOICE_EXCEPTIONS_SQL),
            **_alerts(con),
        )
    finally:
        con.close()


def _restated_periods(con: duckdb.DuckDBPyConnection, run: Row) -> list[Row]:
    """Empty for a publication older than billing_period_history (the summary still reads it)."""
    found = con.execute("select count(*) from duckdb_tables() where table_name = 'billing_period_history'")
    if found.fetchall()[0][0] == 0:
        return []
    return _rows(con, RESTATED_SQL, [run["run_id"]])


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
    commitments = Table(title="Commitment utilisation (unused = waste; term from the commitments extract)")
    for name in ("provider", "commitment", "type", "month", "used", "unused", "util. cost", "util. qty",
                 "funded by", "term ends", "state"):  # fmt: skip
        commitments.add_column(name)
    for r in summary.commitments:
        quantity = _pct(r["quantity_utilization_ratio"])
        if r["quantity_utilization_ratio"] is not None and r["commitment_discount_unit"]:
            quantity += f" ({r['commitment_discount_unit']})"
        days = f" ({r['days_to_expiry']} d)" if r["days_to_expiry"] is not None else ""
        commitments.add_row(
            r["provider_name"], r["commitment_discount_id"], r["commitment_discount_type"] or "—",
            r["billing_month"], _money(r["used_cost"]), _money(r["unused_cost"]), _pct(r["cost_utilization_ratio"]),
            quantity, r["funded_po_number"] or "—", f"{r['term_end'] or '—'}{days}", r["term_state"] or "—",
        )  # fmt: skip
    commitment_coverage = Table(
        title="Commitment coverage (on-demand-equivalent cost of eligible services: commitments.eligible_services)"
    )
    for name in ("provider", "currency", "covered", "eligible", "coverage", "unused"):
        commitment_coverage.add_column(name)
    for r in summary.commitment_coverage:
        commitment_coverage.add_row(
            r["provider_name"], r["billing_currency"], _money(r["covered_cost"]), _money(r["eligible_cost"]),
            _pct(r["coverage_ratio"]), _money(r["unused_commitment_cost"]),
        )  # fmt: skip
    tables = [coverage, burning, commitments, commitment_coverage]
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
    if summary.restated_periods:
        tables.append(_restated_table(summary.restated_periods))
    if summary.blankets:
        tables.append(_blanket_table(summary.blankets))
    if summary.line_burn:
        tables.append(_line_burn_table(summary.line_burn))
    tables += _invoice_tables(summary)
    if summary.kpis:
        tables.append(_kpi_table(summary.kpis))
    if summary.alerts or summary.pending_notifications:
        tables.append(_alerts_table(summary))
    return tables


def _alerts_table(summary: Summary) -> Table:
    """Open alerts, most severe first (finops.alerts); the title counts deliveries still pending."""
    pending = summary.pending_notifications
    table = Table(title=f"Alerts open ({pending} notifications pending delivery: `finrecon alerts`)")
    for name in ("severity", "alert", "since", "title"):
        table.add_column(name)
    for r in summary.alerts:
        table.add_row(r["severity"], r["alert_id"], str(r["first_fired_as_of"]), r["title"])
    return table


def _invoice_tables(summary: Summary) -> list[Table]:
    """Invoice matching at a glance, then the invoices someone has to look at (none: only the counts)."""
    if not summary.invoice_match:
        return []
    counts = Table(title="Invoice matching (invoices by match type and status)")
    for name in ("match", "status", "invoices"):
        counts.add_column(name, justify="right" if name == "invoices" else "left")
    for r in summary.invoice_match:
        counts.add_row(r["match_type"], r["status"], str(r["invoice_count"]))
    if not summary.invoice_exceptions:
        return [counts]
    exceptions = Table(title="Invoices not matched (difference = invoice side − reference)")
    for name in ("invoice", "vendor", "PO", "match", "status", "cur.", "invoiced", "reference", "difference",
                 "reason"):  # fmt: skip
        exceptions.add_column(name)
    for r in summary.invoice_exceptions:
        exceptions.add_row(
            r["invoice_number"], r["vendor_id"], r["po_number"] or "—", r["match_type"], r["status"],
            r["currency"] or "—", _money(r["compared_amount"]), _money(r["reference_amount"]),
            _money(r["difference"]), r["reason"] or "",
        )  # fmt: skip
    return [counts, exceptions]


def _flag(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "no")


def _blanket_table(rows: list[Row]) -> Table:
    table = Table(title="Blanket POs: releases against the ceiling (PO currency)")
    for name in ("PO", "cur.", "ceiling", "releases", "released", "remaining", "exceeded", "excess", "consumed",
                 "used"):  # fmt: skip
        table.add_column(name)
    for r in rows:
        table.add_row(
            r["po_number"], r["po_currency"], _money(r["ceiling_amount"]), str(r["release_count"]),
            _money(r["released_amount"]), _money(r["remaining_ceiling_amount"]),
            "fx_missing" if r["fx_missing"] else _flag(r["releases_exceed_ceiling"]), _money(r["excess_amount"]),
            _money(r["total_consumed_amount"]), _pct(r["consumed_ratio"]),
        )  # fmt: skip
    return table


def _line_burn_table(rows: list[Row]) -> Table:
    table = Table(title="PO line burn (lines mapped by po_cloud_mapping; PO currency)")
    for name in ("PO", "line", "state", "cur.", "line amount", "consumed", "used", "charges"):
        table.add_column(name)
    for r in rows:
        table.add_row(
            r["po_number"], "—" if r["line_number"] is None else str(r["line_number"]), r["line_state"],
            r["po_currency"], _money(r["line_amount"]), _money(r["consumed_amount"]), _pct(r["consumed_ratio"]),
            str(r["charge_count"]),
        )  # fmt: skip
    return table


def _before_after(row: Row, name: str, show: Callable[[Any], str] = _money) -> str:
    return f"{show(row[name + '_before'])} → {show(row[name + '_after'])}"


def _restated_table(rows: list[Row]) -> Table:
    restated = Table(
        title="Restated periods: closed billing periods this run changed (Σ EffectiveCost before → after)"
    )
    for name in ("period", "provider", "account", "cur.", "change", "effective", "Δ effective", "valid PO",
                 "untagged", "charges"):  # fmt: skip
        restated.add_column(name)
    for r in rows:
        restated.add_row(
            r["billing_period"], r["provider_name"], r["billing_account_id"], r["billing_currency"], r["change_kind"],
            _before_after(r, "total_cost"), _money(r["total_cost_delta"]), _before_after(r, "valid_po_cost"),
            _before_after(r, "untagged_cost"), _before_after(r, "charge_count", str),
        )  # fmt: skip
    return restated


def reporting_line(reporting: Row) -> str:
    """Every charge in the reporting currency, or why not."""
    currency = reporting["reporting_currency"]
    if currency is None:
        return "no charges up to as_of"
    if reporting["days_without_rate"]:
        return (
            f"in {currency}: not available, {reporting['days_without_rate']} charge days have no FX rate to "
            f"{currency} (see reporting_fx_rates)"
        )
    return (
        f"in {currency} (report.currency): EffectiveCost {_money(reporting['effective_cost'])}, with a valid PO "
        f"{_money(reporting['valid_po_cost'])}"
    )


def checks_line(checks: Row) -> str:
    flags = f" ({checks['quality_flags']})" if checks["quality_flags"] else ""
    return (
        f"data checks: {checks['flagged_charges']} charges carry quality flags{flags} (data_quality); "
        f"{checks['duplicated_charges']} charges delivered twice (duplicate_charges); "
        f"{checks['over_amortized_commitments']} of {checks['commitments']} commitments amortise more than was "
        "billed (commitment_amortization); "
        f"tag keys: {checks['tag_keys']} seen, {checks['po_tag_keys']} read as PO keys, "
        f"{checks['near_miss_tag_keys']} near misses (tag_key_inventory); "
        f"{checks['restatements']} restatement rows (restatements)"
    )


def _days(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _kpi_table(kpis: list[Row]) -> Table:
    table = Table(title="Procurement KPIs by request month and vendor (po_kpis, latest 8)")
    for name in ("month", "vendor", "POs", "approval d", "issue d", "to receipt d", "emergency", "open",
                 "invoices", "auto-match"):  # fmt: skip
        table.add_column(name)
    for r in kpis:
        table.add_row(
            r["kpi_month"], r["vendor_name"] or "—", str(r["po_count"]), _days(r["avg_approval_days"]),
            _days(r["avg_issue_days"]), _days(r["avg_po_to_receipt_days"]), _pct(r["emergency_po_rate"]),
            str(r["open_po_count"]), str(r["invoice_count"]), _pct(r["invoice_auto_match_rate"]),
        )  # fmt: skip
    return table


def books_line(run: Row) -> str:
    return (
        f"run {run['run_id']} as_of {run['as_of']}: {run['status']}; files landed {run['files_landed']}, "
        f"unchanged {run['files_unchanged']}, failed {run['files_failed']}, removed {run['files_removed']}; "
        f"rows read {run['rows_read']} = loaded {run['rows_loaded']} + quarantined {run['rows_quarantined']}; "
        f"BilledCost read {_money(run['billed_read'])} = loaded {_money(run['billed_loaded'])} + quarantined "
        f"{_money(run['billed_quarantined'])}; published {run['published_charge_rows']} charges"
        + (
            f"; {run['invariants_checked']} accounting invariants held"
            if run.get("invariants_checked")
            else ""
        )
    )


def render(summary: Summary, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]Published[/bold] {summary.path}")
    console.print(books_line(summary.run))
    console.print(reporting_line(summary.reporting))
    console.print(checks_line(summary.checks))
    for table in _tables(summary):
        console.print(table)


def to_markdown(summary: Summary) -> str:
    """The same summary as Markdown, for the Prefect run artifact."""
    lines = [
        f"# Nightly reconciliation {summary.run['as_of']}",
        "",
        books_line(summary.run),
        "",
        reporting_line(summary.reporting),
        "",
        checks_line(summary.checks),
        "",
    ]
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
        "| commitment | month | used | unused | utilisation (cost) | term ends | state |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    lines += [
        f"| {r['commitment_discount_id']} | {r['billing_month']} | {_money(r['used_cost'])} | "
        f"{_money(r['unused_cost'])} | {_pct(r['cost_utilization_ratio'])} | {r['term_end'] or '—'} | "
        f"{r['term_state'] or '—'} |"
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
    if summary.restated_periods:
        lines += ["", "## Restated periods", ""]
        lines += [
            f"- {r['billing_period']} {r['provider_name']} {r['billing_account_id']} ({r['change_kind']}): "
            f"{_before_after(r, 'total_cost')} {r['billing_currency']} (Δ {_money(r['total_cost_delta'])}), "
            f"valid PO {_before_after(r, 'valid_po_cost')}, charges {_before_after(r, 'charge_count', str)}"
            for r in summary.restated_periods
        ]
    if summary.invoice_exceptions:
        lines += ["", "## Invoices not matched", ""]
        lines += [
            f"- {r['invoice_number']} ({r['vendor_id']}, {r['po_number'] or 'no PO'}) {r['match_type']}: "
            f"{r['status']}, difference {_money(r['difference'])} {r['currency'] or ''}".rstrip()
            + (f" ({r['reason']})" if r["reason"] else "")
            for r in summary.invoice_exceptions
        ]
    if summary.alerts or summary.pending_notifications:
        lines += ["", f"## Alerts open ({summary.pending_notifications} notifications pending delivery)", ""]
        lines += [f"- **{r['severity']}** {r['title']} (`{r['alert_id']}`)" for r in summary.alerts]
    return "\n".join(lines) + "\n"
