"""Alert rules evaluated: `evaluate` turns the published marts into findings for the rules the config lists
(their kinds and fields: finrecon/models/alert_rules.py).

Each rule kind reads one mart (see docs/data-dictionary.md) and returns the conditions that hold for this
publication's `as_of`; it knows nothing of what fired before (the lifecycle does). A threshold is crossed when
the measured value reaches it (`>=`); a floor is broken when the value falls below it (`<`).

Every finding's key is `rule:scope:vendor:threshold` (e.g. `po_burn:PO-1001:V-AWS-01:0.8`), so the same
condition on the next night is the same alert and a higher threshold is a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any

import duckdb

from finrecon.alerts.model import SEVERITY_ORDER, Finding, Severity
from finrecon.models.alert_rules import (
    BurnAccelerationRule,
    CommitmentUtilizationRule,
    DuplicateInvoiceRule,
    DuplicatePoRule,
    InvoiceOverPoRule,
    PoBurnRule,
    PoExhaustionRule,
    TagDriftRule,
    UnauthorisedSpendRule,
    UntaggedSpendRule,
    ValidationFailuresRule,
)

if TYPE_CHECKING:
    from finrecon.models.config import Config


def alert_key(rule: str, scope: Iterable[str | None], vendor_id: str | None, threshold: str) -> str:
    """`rule:scope:vendor:threshold`; scope parts joined by `/`, a missing part or vendor as `-`."""
    parts = "/".join(p if p is not None else "-" for p in scope)
    return f"{rule}:{parts}:{vendor_id or '-'}:{threshold}"


def _number(value: float) -> str:
    """A threshold as written in a key: 0.8, 1, 1000."""
    return f"{value:g}"


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _money(value: float | None, currency: str | None = None) -> str:
    if value is None:
        return "—"
    text = f"{value:,.6f}" if abs(value) < 1 else f"{value:,.2f}"
    return f"{text} {currency}" if currency else text


UNTAGGED_SQL = """
select
    {scope_columns},
    billing_currency,
    sum(total_cost) as total_cost,
    sum(untagged_cost) + case when $include_invalid then sum(invalid_po_cost) else 0 end as unallocated_cost
from tag_coverage
where charge_date > $as_of - $window_days and charge_date <= $as_of
group by all
having sum(total_cost) > 0
order by all
"""


def _untagged_spend(
    con: duckdb.DuckDBPyConnection, rule: UntaggedSpendRule, config: Config, as_of: date
) -> list[Finding]:
    sql = UNTAGGED_SQL.format(scope_columns=", ".join(rule.scope))
    params = {"as_of": as_of, "window_days": rule.window_days, "include_invalid": rule.include_invalid}
    ratio_max = rule.ratio_max if rule.ratio_max is not None else config.alerts.untagged_ratio_max
    what = "untagged or invalid-PO" if rule.include_invalid else "untagged"
    findings = []
    for row in _rows(con, sql, params):
        scope: dict[str, str | None] = {c: row[c] for c in rule.scope}
        scope["billing_currency"] = row["billing_currency"]
        label = "/".join(str(v) for v in scope.values())
        amount, total = row["unallocated_cost"], row["total_cost"]
        ratio = amount / total
        spend = f"{_money(amount, row['billing_currency'])} of {_money(total)}"
        window = f"the {rule.window_days} days to {as_of}"
        if ratio >= ratio_max and amount >= rule.min_amount and amount > 0:
            findings.append(
                Finding(
                    alert_key=alert_key(rule.name, scope.values(), None, _number(ratio_max)),
                    rule=rule.name,
                    rule_kind=rule.kind,
                    severity=rule.severity or "warning",
                    title=f"{label}: {ratio:.1%} of spend has no valid PO (limit {ratio_max:.1%})",
                    message=f"{what} spend over {window}: {spend} ({ratio:.1%}, limit {ratio_max:.1%})",
                    value=ratio,
                    threshold=ratio_max,
                    scope=scope,
                )
            )
        if rule.amount_max is not None and amount >= rule.amount_max:
            findings.append(
                Finding(
                    alert_key=alert_key(
                        rule.name, scope.values(), None, f"amount={_number(rule.amount_max)}"
                    ),
                    rule=rule.name,
                    rule_kind=rule.kind,
                    severity=rule.severity or "warning",
                    title=f"{label}: {_money(amount, row['billing_currency'])} of spend has no valid PO",
                    message=f"{what} spend over {window}: {spend} (limit {_money(rule.amount_max)})",
                    value=amount,
                    threshold=rule.amount_max,
                    scope=scope,
                )
            )
    return findings


OPEN_POS_SQL = """
select *
from po_burn
where as_of = $as_of
    and po_status = 'open'
order by po_number
"""


def _po_scope(row: dict[str, Any]) -> dict[str, str | None]:
    return {"po_number": row["po_number"], "vendor_id": row["vendor_id"], "cost_center": row["cost_center"]}


def _po_finding(
    rule: PoBurnRule | PoExhaustionRule | BurnAccelerationRule | InvoiceOverPoRule,
    row: dict[str, Any],
    threshold_label: str,
    severity: Severity,
    title: str,
    message: str,
    value: float | None,
    threshold: float | None,
) -> Finding:
    """A finding about one PO (keyed by rule, PO, vendor and threshold; routed by its cost centre)."""
    return Finding(
        alert_key=alert_key(rule.name, [row["po_number"]], row["vendor_id"], threshold_label),
        rule=rule.name,
        rule_kind=rule.kind,
        severity=severity,
        title=title,
        message=message,
        value=value,
        threshold=threshold,
        scope=_po_scope(row),
        po_number=row["po_number"],
        vendor_id=row["vendor_id"],
        cost_center=row["cost_center"],
    )


def _po_burn(con: duckdb.DuckDBPyConnection, rule: PoBurnRule, config: Config, as_of: date) -> list[Finding]:
    thresholds = rule.thresholds or config.alerts.burn_thresholds
    findings = []
    for row in _rows(con, OPEN_POS_SQL, {"as_of": as_of}):
        ratio = row["consumed_ratio"]
        if ratio is None:
            continue  # no FX rate: po_burn.error says why; nothing to compare
        amounts = (
            f"{_money(row['consumed_amount'], row['po_currency'])} consumed of "
            f"{_money(row['committed_amount'])} committed ({ratio:.1%}) by {as_of}"
        )
        rungs = [
            _po_finding(
                rule,
                row,
                _number(threshold),
                rule.severity_of(threshold),
                f"{row['po_number']} crossed {threshold:.0%} of its committed amount",
                f"{row['po_number']} ({row['vendor_name']}, cost centre {row['cost_center'] or '—'}): "
                f"{amounts}; valid to {row['valid_to']}",
                ratio,
                threshold,
            )
            for threshold in thresholds
            if ratio >= threshold
        ]
        if rungs:  # one alert at the highest threshold crossed (thresholds are sorted); the rest under it
            findings.append(replace(rungs[-1], supersedes=tuple(rungs[:-1])))
    return findings


def _po_exhaustion(
    con: duckdb.DuckDBPyConnection, rule: PoExhaustionRule, config: Config, as_of: date
) -> list[Finding]:
    findings = []
    for row in _rows(con, OPEN_POS_SQL, {"as_of": as_of}):
        exhausted_on: date | None = row["projected_exhaustion_date"]
        if exhausted_on is None or row["remaining_amount"] is None or row["remaining_amount"] <= 0:
            continue  # not burning, or already used up (po_burn's 100 % threshold tells that)
        days = (exhausted_on - as_of).days
        if rule.within_days is None:
            fires, threshold, limit = (
                exhausted_on <= row["valid_to"],
                None,
                f"before valid_to {row['valid_to']}",
            )
            label = "valid_to"
        else:
            fires, threshold, limit = (
                days <= rule.within_days,
                float(rule.within_days),
                f"within {rule.within_days} days",
            )
            label = f"{rule.within_days}d"
        if not fires:
            continue
        findings.append(
            _po_finding(
                rule,
                row,
                label,
                rule.severity or "warning",
                f"{row['po_number']} runs out on {exhausted_on}, {limit}",
                f"{row['po_number']} ({row['vendor_name']}): {_money(row['remaining_amount'], row['po_currency'])} "
                f"left at {_money(row['burn_rate_daily'])} a day (trailing {config.report.trailing_days} days): "
                f"exhausted in {days} days on {exhausted_on}; valid to {row['valid_to']}",
                float(days),
                threshold,
            )
        )
    return findings


ACCELERATION_SQL = """
with windows as (
    select
        po_number,
        sum(consumed_amount) filter (where charge_date > $as_of - $short_days) as short_amount,
        sum(consumed_amount) as long_amount,
        count(*) filter (where consumed_amount is null) as days_without_rate
    from po_consumption_daily
    where charge_date > $as_of - $long_days and charge_date <= $as_of
    group by po_number
)

select
    po_burn.po_number, po_burn.vendor_id, po_burn.vendor_name, po_burn.cost_center, po_burn.po_currency,
    coalesce(windows.short_amount, 0) as short_amount,
    windows.long_amount
from windows
join po_burn on po_burn.po_number = windows.po_number and po_burn.as_of = $as_of
where po_burn.po_status = 'open'
    and windows.days_without_rate = 0
    and po_burn.first_charge_date <= $as_of - $long_days + 1
order by po_burn.po_number
"""


def _burn_acceleration(
    con: duckdb.DuckDBPyConnection, rule: BurnAccelerationRule, config: Config, as_of: date
) -> list[Finding]:
    params = {"as_of": as_of, "short_days": rule.short_days, "long_days": rule.long_days}
    findings = []
    for row in _rows(con, ACCELERATION_SQL, params):
        short_rate = row["short_amount"] / rule.short_days
        long_rate = row["long_amount"] / rule.long_days
        if long_rate <= 0 or row["short_amount"] < rule.min_amount:
            continue
        factor = short_rate / long_rate
        if factor < rule.factor:
            continue
        currency = row["po_currency"]
        findings.append(
            _po_finding(
                rule,
                row,
                _number(rule.factor),
                rule.severity or "warning",
                f"{row['po_number']} burns {factor:.1f}× faster over {rule.short_days} days than over {rule.long_days}",
                f"{row['po_number']} ({row['vendor_name']}): {_money(short_rate, currency)} a day over the "
                f"{rule.short_days} days to {as_of} against {_money(long_rate, currency)} a day over {rule.long_days} "
                f"days (×{factor:.2f}, limit ×{rule.factor:g})",
                factor,
                rule.factor,
            )
        )
    return findings


COMMITMENT_SQL = """
select *
from commitment_utilization
where billing_month = strftime($as_of, '%Y-%m')
    and cost_utilization_ratio is not null
order by provider_name, commitment_discount_id
"""


def _commitment_utilization(
    con: duckdb.DuckDBPyConnection, rule: CommitmentUtilizationRule, config: Config, as_of: date
) -> list[Finding]:
    findings = []
    for row in _rows(con, COMMITMENT_SQL, {"as_of": as_of}):
        ratio = row["cost_utilization_ratio"]
        if ratio >= rule.floor or row["unused_cost"] < rule.min_unused_cost:
            continue
        scope: dict[str, str | None] = {
            "provider_name": row["provider_name"],
            "billing_account_id": row["billing_account_id"],
            "commitment_discount_id": row["commitment_discount_id"],
            "po_number": row["funded_po_number"],
        }
        currency = row["billing_currency"]
        findings.append(
            Finding(
                alert_key=alert_key(rule.name, [row["commitment_discount_id"]], None, _number(rule.floor)),
                rule=rule.name,
                rule_kind=rule.kind,
                severity=rule.severity or "warning",
                title=f"{row['commitment_discount_id']} used {ratio:.1%} in {row['billing_month']} (floor {rule.floor:.0%})",
                message=f"{row['provider_name']} commitment {row['commitment_discount_id']} in {row['billing_month']}: "
                f"used {_money(row['used_cost'], currency)}, unused {_money(row['unused_cost'], currency)} "
                f"({ratio:.1%} utilised by cost, floor {rule.floor:.0%})",
                value=ratio,
                threshold=rule.floor,
                scope=scope,
                po_number=row["funded_po_number"],
            )
        )
    return findings


INVOICE_SQL = """
select invoice_match.*, po_burn.cost_center
from invoice_match
left join po_burn on po_burn.po_number = invoice_match.erp_po_number and po_burn.as_of = $as_of
where invoice_match.match_type = 'two_way' and invoice_match.status = 'over_po'
order by invoice_match.vendor_id, invoice_match.invoice_number
"""


def _invoice_over_po(
    con: duckdb.DuckDBPyConnection, rule: InvoiceOverPoRule, config: Config, as_of: date
) -> list[Finding]:
    findings = []
    for row in _rows(con, INVOICE_SQL, {"as_of": as_of}):
        currency = row["currency"]
        findings.append(
            Finding(
                alert_key=alert_key(rule.name, [row["invoice_number"]], row["vendor_id"], "over_po"),
                rule=rule.name,
                rule_kind=rule.kind,
                severity=rule.severity or "warning",
                title=f"Invoice {row['invoice_number']} takes {row['erp_po_number']} over its total",
                message=f"invoice {row['invoice_number']} of {row['vendor_id']} ({row['invoice_date']}): invoiced to date "
                f"{_money(row['compared_amount'], currency)} against PO total {_money(row['reference_amount'], currency)} "
                f"(over by {_money(row['difference'], currency)})",
                value=row["difference"],
                threshold=row["tolerance"],
                scope={
                    "invoice_number": row["invoice_number"],
                    "vendor_id": row["vendor_id"],
                    "po_number": row["erp_po_number"],
                    "cost_center": row["cost_center"],
                },
                po_number=row["erp_po_number"],
                vendor_id=row["vendor_id"],
                cost_center=row["cost_center"],
            )
        )
    return findings


VALIDATION_SQL = """
select source, file_path, status, rows_read, rows_quarantined, error
from run_files
where run_id = (select run_id from runs where status = 'succeeded' order by started_at desc limit 1)
    and status <> 'removed'
order by source, file_path
"""


def _validation_failures(
    con: duckdb.DuckDBPyConnection, rule: ValidationFailuresRule, config: Config, as_of: date
) -> list[Finding]:
    findings = []
    for row in _rows(con, VALIDATION_SQL, {}):
        if row["status"] == "failed":
            ratio, detail = 1.0, f"the file failed: {row['error']}"
        elif row["rows_read"]:
            ratio = row["rows_quarantined"] / row["rows_read"]
            detail = f"{row['rows_quarantined']} of {row['rows_read']} rows quarantined"
        else:
            continue
        if ratio < rule.max_ratio:
            continue
        findings.append(
            Finding(
                alert_key=alert_key(
                    rule.name, [row["source"], row["file_path"]], None, _number(rule.max_ratio)
                ),
                rule=rule.name,
                rule_kind=rule.kind,
                severity=rule.severity or "warning",
                title=f"{row['source']}: {row['file_path']} failed validation ({ratio:.1%})",
                message=f"{row['source']}: {row['file_path']}: {detail} ({ratio:.1%}, limit {rule.max_ratio:.1%}); "
                "see finops.quarantine",
                value=ratio,
                threshold=rule.max_ratio,
                scope={"source": row["source"], "file_path": row["file_path"]},
            )
        )
    return findings


UNAUTHORISED_SQL = """
select *
from unauthorised_spend
where reason in (select unnest($reasons::varchar[])) and amount > 0 and amount >= $min_amount
order by po_number, reason, currency
"""

_UNAUTHORISED_WHY = {
    "cancelled": "charged to a cancelled PO",
    "closed": "charged to a closed PO",
    "expired": "charged after the PO's validity ended",
    "not_yet_valid": "charged before the PO's validity began",
    "unknown_po": "charged to a PO number the ERP does not know",
    "over_amount": "consumed beyond the PO's total amount",
}


def _unauthorised_spend(
    con: duckdb.DuckDBPyConnection, rule: UnauthorisedSpendRule, config: Config, as_of: date
) -> list[Finding]:
    findings = []
    params = {"reasons": list(rule.reasons), "min_amount": rule.min_amount}
    for row in _rows(con, UNAUTHORISED_SQL, params):
        po, reason, currency = row["po_number"], row["reason"], row["currency"]
        since = row["first_charge_date"]
        findings.append(
            Finding(
                alert_key=alert_key(
                    rule.name, [po, reason, currency], row["vendor_id"], _number(rule.min_amount)
                ),
                rule=rule.name,
                rule_kind=rule.kind,
                severity=rule.severity or ("critical" if reason == "over_amount" else "warning"),
                title=f"{po}: {_money(row['amount'], currency)} {_UNAUTHORISED_WHY[reason]}",
                message=f"{po} ({row['vendor_name'] or 'no ERP vendor'}): {_money(row['amount'], currency)} "
                f"{_UNAUTHORISED_WHY[reason]} on {row['charge_days']} day(s) from {since} to {row['last_charge_date']}"
                + (f"; valid {row['valid_from']} to {row['valid_to']}" if row["valid_from"] else ""),
                value=row["amount"],
                threshold=rule.min_amount,
                scope={
                    "po_number": po,
                    "reason": reason,
                    "currency": currency,
                    "vendor_id": row["vendor_id"],
                },
                po_number=po,
                vendor_id=row["vendor_id"],
                cost_center=row["cost_center"],
            )
        )
    return findings


DUPLICATE_PO_SQL = "select * from duplicate_po_candidates order by vendor_id, po_number, other_po_number"
DUPLICATE_INVOICE_SQL = (
    "select * from duplicate_invoice_candidates order by vendor_id, invoice_number, other_invoice_number"
)


def _duplicate_po(
    con: duckdb.DuckDBPyConnection, rule: DuplicatePoRule, config: Config, as_of: date
) -> list[Finding]:
    findings = []
    for row in _rows(con, DUPLICATE_PO_SQL, {}):
        a, b, currency = row["po_number"], row["other_po_number"], row["currency"]
        similarity = row["description_similarity"]
        findings.append(
            Finding(
                alert_key=alert_key(rule.name, [a, b], row["vendor_id"], "pair"),
                rule=rule.name,
                rule_kind=rule.kind,
                severity=rule.severity or "warning",
                title=f"{a} and {b} of {row['vendor_id']} may be one purchase: "
                f"{_money(row['total_amount'])} and {_money(row['other_total_amount'], currency)}",
                message=f"{a} ({row['status']}, valid {row['valid_from']} to {row['valid_to']}) and {b} "
                f"({row['other_status']}, valid {row['other_valid_from']} to {row['other_valid_to']}) of "
                f"{row['vendor_name']}: amounts {_money(row['amount_difference'], currency)} apart, valid together "
                f"{row['overlap_from']} to {row['overlap_to']}"
                + (f"; line descriptions {similarity:.0%} alike" if similarity is not None else ""),
                value=row["amount_difference"],
                threshold=row["amount_tolerance"],
                scope={"po_number": a, "other_po_number": b, "vendor_id": row["vendor_id"]},
                po_number=a,
                vendor_id=row["vendor_id"],
                cost_center=row["cost_center"],
            )
        )
    return findings


def _duplicate_invoice(
    con: duckdb.DuckDBPyConnection, rule: DuplicateInvoiceRule, config: Config, as_of: date
) -> list[Finding]:
    findings = []
    for row in _rows(con, DUPLICATE_INVOICE_SQL, {}):
        a, b, currency = row["invoice_number"], row["other_invoice_number"], row["currency"]
        dates = (
            f"on {row['invoice_date']}"
            if row["days_apart"] == 0
            else f"on {row['invoice_date']} and {row['other_invoice_date']}"
        )
        findings.append(
            Finding(
                alert_key=alert_key(rule.name, [a, b], row["vendor_id"], "pair"),
                rule=rule.name,
                rule_kind=rule.kind,
                severity=rule.severity or "warning",
                title=f"{a} and {b} of {row['vendor_id']} may be one bill: "
                f"{_money(row['amount'])} and {_money(row['other_amount'], currency)} {dates}",
                message=f"invoices {a} (PO {row['po_number'] or '—'}) and {b} (PO {row['other_po_number'] or '—'}) "
                f"of {row['vendor_id']}: {_money(row['amount_difference'], currency)} apart, {row['days_apart']} "
                f"day(s) apart; check that only one is paid",
                value=row["amount_difference"],
                threshold=row["amount_tolerance"],
                scope={"invoice_number": a, "other_invoice_number": b, "vendor_id": row["vendor_id"]},
                po_number=row["po_number"],
                vendor_id=row["vendor_id"],
            )
        )
    return findings


TAG_DRIFT_SQL = """
select *
from tag_drift
where billed_cost_since > 0 and billed_cost_since >= $min_amount
order by provider_name, resource_id, billing_currency
"""

_DRIFT_WHAT = {
    "lost": "lost its PO tag",
    "changed": "moved to another PO",
    "became_invalid": "moved to an invalid PO",
}


def _tag_drift(
    con: duckdb.DuckDBPyConnection, rule: TagDriftRule, config: Config, as_of: date
) -> list[Finding]:
    findings = []
    for row in _rows(con, TAG_DRIFT_SQL, {"min_amount": rule.min_amount}):
        resource, currency = row["resource_id"], row["billing_currency"]
        now = row["po_number_now"] or "no PO"
        if row["drift"] == "became_invalid":
            now = f"{now} ({row['po_reason_now']})"
        findings.append(
            Finding(
                alert_key=alert_key(
                    rule.name, [row["provider_name"], resource, currency], None, row["drift"]
                ),
                rule=rule.name,
                rule_kind=rule.kind,
                severity=rule.severity or "warning",
                title=f"{resource} {_DRIFT_WHAT[row['drift']]} on {row['drifted_on']}",
                message=f"{row['provider_name']} {row['service_name']} resource {resource}: {row['po_number_before']} "
                f"until {row['before_last_day']}, {now} from {row['drifted_on']}; "
                f"{_money(row['billed_cost_since'], currency)} since, on {row['charge_days_since']} day(s)",
                value=row["billed_cost_since"],
                threshold=rule.min_amount,
                scope={
                    "provider_name": row["provider_name"],
                    "resource_id": resource,
                    "billing_currency": currency,
                    "po_number": row["po_number_before"],
                },
                po_number=row["po_number_before"],
            )
        )
    return findings


Evaluator = Callable[[duckdb.DuckDBPyConnection, Any, "Config", date], list[Finding]]
EVALUATORS: dict[str, Evaluator] = {
    "untagged_spend": _untagged_spend,
    "po_burn": _po_burn,
    "po_exhaustion": _po_exhaustion,
    "burn_acceleration": _burn_acceleration,
    "commitment_utilization": _commitment_utilization,
    "invoice_over_po": _invoice_over_po,
    "validation_failures": _validation_failures,
    "unauthorised_spend": _unauthorised_spend,
    "duplicate_po": _duplicate_po,
    "duplicate_invoice": _duplicate_invoice,
    "tag_drift": _tag_drift,
}


def publication_as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    """The as_of of the last successful run recorded in a publication (what its marts describe)."""
    found = con.execute(
        "select as_of from runs where status = 'succeeded' order by started_at desc limit 1"
    ).fetchall()
    return found[0][0] if found else None


def evaluate(con: duckdb.DuckDBPyConnection, config: Config, as_of: date) -> list[Finding]:
    """Every configured rule on the marts that `con` sees by bare name; most severe first, then by key.

    One finding per key (the first): two scopes whose parts join to the same key text are one alert, never
    two open instances of one key.
    """
    by_key: dict[str, Finding] = {}
    for rule in config.alerts.rules:
        for finding in EVALUATORS[rule.kind](con, rule, config, as_of):
            by_key.setdefault(finding.alert_key, finding)
    return sorted(by_key.values(), key=lambda f: (SEVERITY_ORDER[f.severity], f.alert_key))
