"""The alert lifecycle: findings become alert instances and an outbox of notifications in the state file.

Deduplication is by `alert_key`: a finding whose key has no open alert fires (a new instance, one pending
`fired` notification per routed channel); a finding whose alert is open changes nothing but its figures (and
queues a `reminder` after `alerts.remind_after_days`); an open alert without a finding resolves (a `resolved`
notification to the channels that were told it fired) and the key re-arms: its next finding is instance n + 1.

Ladders (a PO's 50 %, 80 %, 100 %): a finding names the lower rungs it `supersedes`. Their open alerts close as
`superseded`, with no notification (the higher alert tells it); a lower rung crossed in the same night as the
higher one is recorded as a `superseded` instance, never sent. A PO jumping from 40 % to 120 % is one alert.

Notifications stay `pending` until a channel accepted them (`record`); pending ones from any earlier run are
delivered again with the next run's digest. The caller runs `apply` and `record` each in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from finrecon.alerts.model import DeliveryResult, Event, Finding, Notification
from finrecon.alerts.routing import route
from finrecon.models.config import Config

Row = dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """What tonight's findings do to the open alerts; `apply` writes it, `--dry-run` only prints it."""

    fire: list[Finding]  # no open alert with this key
    keep: list[tuple[Row, Finding]]  # open alert, finding still present
    resolve: list[Row]  # open alert, no finding any more
    supersede: list[Row]  # open alert of a lower rung under tonight's finding


@dataclass(frozen=True)
class Changes:
    fired: int
    reminded: int
    resolved: int
    superseded: int = 0


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def open_alerts(con: duckdb.DuckDBPyConnection) -> list[Row]:
    """Open alert instances, most severe first (the tables of the state file, or a publication's copy)."""
    return _rows(
        con,
        "select * from alerts where status = 'open' "
        "order by case severity when 'critical' then 0 when 'warning' then 1 else 2 end, alert_key",
    )


def plan(open_rows: Sequence[Row], findings: Sequence[Finding]) -> Plan:
    """Compare tonight's findings with the open alerts, by key."""
    by_key = {f.alert_key: f for f in findings}
    open_keys = {row["alert_key"] for row in open_rows}
    lower = {rung.alert_key for f in findings for rung in f.supersedes} - set(by_key)
    return Plan(
        fire=[f for f in findings if f.alert_key not in open_keys],
        keep=[(row, by_key[row["alert_key"]]) for row in open_rows if row["alert_key"] in by_key],
        resolve=[
            row for row in open_rows if row["alert_key"] not in by_key and row["alert_key"] not in lower
        ],
        supersede=[row for row in open_rows if row["alert_key"] in lower],
    )


def apply(
    con: duckdb.DuckDBPyConnection,
    findings: Sequence[Finding],
    config: Config,
    run_id: str,
    as_of: date,
    now: datetime,
) -> Changes:
    """Write tonight's lifecycle: new instances and their notifications, figures of kept ones, resolutions."""
    open_rows = open_alerts(con)
    changes = plan(open_rows, findings)
    superseded_keys = {row["alert_key"] for row in changes.supersede}
    for finding in changes.fire:
        alert_id = _insert_alert(con, finding, run_id, as_of, now)
        for rung in finding.supersedes:  # crossed tonight together with this one: on record, never sent
            if rung.alert_key not in superseded_keys:
                _record_superseded(con, rung, run_id, as_of, now)
        for channel in route(finding, config):
            _queue(
                con,
                alert_id,
                finding.alert_key,
                channel,
                "fired",
                finding.title,
                finding.message,
                run_id,
                as_of,
                now,
            )
    for row, finding in changes.keep:
        con.execute(
            "update alerts set title = ?, message = ?, value = ?, last_seen_run_id = ?, last_seen_at = ?, "
            "last_seen_as_of = ? where alert_id = ?",
            [finding.title, finding.message, finding.value, run_id, now, as_of, row["alert_id"]],
        )
    for row in changes.resolve:
        con.execute(
            "update alerts set status = 'resolved', resolved_run_id = ?, resolved_at = ? where alert_id = ?",
            [run_id, now, row["alert_id"]],
        )
        message = f"no longer holds as of {as_of} (last seen {row['last_seen_as_of']}: {row['message']})"
        for channel in told_channels(con, row["alert_id"]):
            _queue(
                con,
                row["alert_id"],
                row["alert_key"],
                channel,
                "resolved",
                row["title"],
                message,
                run_id,
                as_of,
                now,
            )
    for row in changes.supersede:
        con.execute(
            "update alerts set status = 'superseded', resolved_run_id = ?, resolved_at = ? where alert_id = ?",
            [run_id, now, row["alert_id"]],
        )
    reminded = queue_reminders(con, config, run_id, as_of, now)
    return Changes(
        fired=len(changes.fire),
        reminded=reminded,
        resolved=len(changes.resolve),
        superseded=len(changes.supersede),
    )


def _record_superseded(
    con: duckdb.DuckDBPyConnection, rung: Finding, run_id: str, as_of: date, now: datetime
) -> None:
    """A lower rung crossed in the same night as a higher one: an instance of its own key, closed at once."""
    alert_id = _insert_alert(con, rung, run_id, as_of, now)
    con.execute(
        "update alerts set status = 'superseded', resolved_run_id = ?, resolved_at = ? where alert_id = ?",
        [run_id, now, alert_id],
    )


def queue_reminders(
    con: duckdb.DuckDBPyConnection, config: Config, run_id: str, as_of: date, now: datetime
) -> int:
    """A reminder for each open alert last notified `alerts.remind_after_days` ago or earlier.

    An alert with a notification still pending gets none: the pending one will tell the same thing.
    """
    days = config.alerts.remind_after_days
    if days is None:
        return 0
    due = _rows(
        con,
        "select * from alerts where status = 'open' and last_notified_at <= ? and not exists ("
        "select 1 from alert_notifications as n where n.alert_id = alerts.alert_id and n.status = 'pending')",
        [now - timedelta(days=days)],
    )
    for row in due:
        for channel in told_channels(con, row["alert_id"]):
            _queue(
                con,
                row["alert_id"],
                row["alert_key"],
                channel,
                "reminder",
                row["title"],
                row["message"],
                run_id,
                as_of,
                now,
            )
    return len(due)


def _insert_alert(con: duckdb.DuckDBPyConnection, f: Finding, run_id: str, as_of: date, now: datetime) -> str:
    """A new open instance of the finding's key: instance n + 1 after n earlier (resolved) ones."""
    instance = int(
        con.execute(
            "select coalesce(max(instance), 0) + 1 from alerts where alert_key = ?", [f.alert_key]
        ).fetchall()[0][0]
    )
    alert_id = f"{f.alert_key}#{instance}"
    con.execute(
        "insert into alerts (alert_id, alert_key, instance, rule, rule_kind, status, severity, title, message, "
        "value, threshold, scope, po_number, vendor_id, cost_center, first_fired_run_id, first_fired_at, "
        "first_fired_as_of, last_seen_run_id, last_seen_at, last_seen_as_of) "
        "values (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            alert_id,
            f.alert_key,
            instance,
            f.rule,
            f.rule_kind,
            f.severity,
            f.title,
            f.message,
            f.value,
            f.threshold,
            json.dumps(f.scope, sort_keys=True),
            f.po_number,
            f.vendor_id,
            f.cost_center,
            run_id,
            now,
            as_of,
            run_id,
            now,
            as_of,
        ],
    )
    return alert_id


def told_channels(con: duckdb.DuckDBPyConnection, alert_id: str) -> list[str]:
    """The channels an instance's `fired` notifications went to: who hears of its reminders and resolution."""
    rows = con.execute(
        "select distinct channel from alert_notifications where alert_id = ? and event = 'fired' order by channel",
        [alert_id],
    ).fetchall()
    return [row[0] for row in rows]


def _queue(
    con: duckdb.DuckDBPyConnection,
    alert_id: str,
    alert_key: str,
    channel: str,
    event: Event,
    title: str,
    message: str,
    run_id: str,
    as_of: date,
    now: datetime,
) -> None:
    con.execute(
        "insert into alert_notifications (notification_id, alert_id, alert_key, channel, event, status, title, "
        "message, attempts, created_run_id, created_at, as_of) values (?, ?, ?, ?, ?, 'pending', ?, ?, 0, ?, ?, ?)",
        [
            f"{alert_id}:{event}:{run_id}:{channel}",
            alert_id,
            alert_key,
            channel,
            event,
            title,
            message,
            run_id,
            now,
            as_of,
        ],
    )


PENDING_SQL = """
select n.notification_id, n.channel, n.event, n.alert_key, a.rule, a.rule_kind, a.severity, n.title, n.message,
       a.value, a.threshold, a.scope, a.po_number, a.vendor_id, n.created_run_id, n.as_of
from alert_notifications as n
join alerts as a on a.alert_id = n.alert_id
where n.status = 'pending'
order by n.created_at, n.notification_id
"""


def pending(con: duckdb.DuckDBPyConnection) -> list[Notification]:
    """Every notification no channel has accepted yet, from any run, oldest first."""
    return [
        Notification(
            notification_id=row["notification_id"],
            channel=row["channel"],
            event=row["event"],
            alert_key=row["alert_key"],
            rule=row["rule"],
            rule_kind=row["rule_kind"],
            severity=row["severity"],
            title=row["title"],
            message=row["message"],
            value=row["value"],
            threshold=row["threshold"],
            scope=json.loads(row["scope"] or "{}"),
            po_number=row["po_number"],
            vendor_id=row["vendor_id"],
            run_id=row["created_run_id"],
            as_of=row["as_of"],
        )
        for row in _rows(con, PENDING_SQL)
    ]


def record(
    con: duckdb.DuckDBPyConnection, results: Sequence[DeliveryResult], run_id: str, now: datetime
) -> None:
    """Mark sent exactly the notifications of accepted digests; the others keep their attempts and error."""
    for result in results:
        ids = list(result.notification_ids)
        if not ids:
            continue
        marks = ", ".join("?" for _ in ids)
        if result.ok:
            con.execute(
                f"update alert_notifications set status = 'sent', attempts = attempts + ?, last_error = null, "
                f"sent_run_id = ?, sent_at = ? where notification_id in ({marks})",
                [result.attempts, run_id, now, *ids],
            )
            con.execute(
                f"update alerts set last_notified_at = ? where alert_id in "
                f"(select alert_id from alert_notifications where notification_id in ({marks}))",
                [now, *ids],
            )
        else:
            con.execute(
                f"update alert_notifications set attempts = attempts + ?, last_error = ? "
                f"where notification_id in ({marks})",
                [result.attempts, result.error, *ids],
            )
