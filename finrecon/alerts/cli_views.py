"""What `finrecon alerts` prints: open alerts and pending deliveries, or a dry run of tonight's rules.

The alert state is read from the state file (read-only), which is current also after a night with nothing new;
while a run holds the state file, from the last publication's copy instead. The dry run evaluates the rules on
the published database and compares with that state: it sends and records nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from rich.table import Table

from finrecon.alerts.lifecycle import Plan, open_alerts, plan, told_channels
from finrecon.alerts.model import Finding
from finrecon.alerts.routing import route
from finrecon.alerts.rules import evaluate, publication_as_of
from finrecon.models.config import Config

Row = dict[str, Any]

PENDING_SQL = """
select channel, event, alert_key, attempts, last_error, created_run_id, as_of
from alert_notifications
where status = 'pending'
order by created_at, notification_id
"""


class NoPublication(Exception):
    """There is no published database to read yet."""


@dataclass(frozen=True)
class AlertState:
    origin: str  # which file the alert state was read from
    open: list[Row]
    pending: list[Row]
    told: dict[str, list[str]]  # alert_id -> channels its `fired` notifications went to


def _has_alert_tables(con: duckdb.DuckDBPyConnection) -> bool:
    found = con.execute(
        "select count(*) from duckdb_tables() where table_name in ('alerts', 'alert_notifications')"
    ).fetchall()
    return bool(found[0][0] == 2)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[Row]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@contextmanager
def _read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        yield con
    finally:
        con.close()


def read_alert_state(config: Config) -> AlertState:
    """Open alerts and pending notifications: the state file, else (a run holds it) the publication's copy."""
    candidates = [
        (config.resolve(config.warehouse.state_path), "state file"),
        (config.resolve(config.warehouse.published_path), "last publication (a run holds the state file)"),
    ]
    for path, label in candidates:
        if not path.exists():
            continue
        try:
            with _read_only(path) as con:
                if not _has_alert_tables(con):
                    return AlertState(f"{label} {path}", [], [], {})
                rows = open_alerts(con)
                told = {row["alert_id"]: told_channels(con, row["alert_id"]) for row in rows}
                return AlertState(f"{label} {path}", rows, _rows(con, PENDING_SQL), told)
        except duckdb.IOException:
            continue  # locked by a running pipeline: try the publication
    return AlertState("no state file or publication yet", [], [], {})


def dry_run(config: Config) -> tuple[Plan, AlertState, Any]:
    """Tonight's rules on the published database against the current alert state; nothing is written."""
    published = config.resolve(config.warehouse.published_path)
    if not published.exists():
        raise NoPublication(f"no published database at {published}: run `finrecon run` first")
    with _read_only(published) as con:
        as_of = publication_as_of(con)
        if as_of is None:
            raise NoPublication(f"{published} records no successful run")
        findings = evaluate(con, config, as_of)
    state = read_alert_state(config)
    return plan(state.open, findings), state, as_of


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:,.4g}"


def open_table(state: AlertState) -> Table:
    table = Table(title=f"Open alerts, most severe first ({state.origin})")
    for name in ("severity", "alert", "since", "last seen", "value", "threshold", "title"):
        table.add_column(name)
    for r in state.open:
        table.add_row(
            r["severity"],
            r["alert_id"],
            str(r["first_fired_as_of"]),
            str(r["last_seen_as_of"]),
            _figure(r["value"]),
            _figure(r["threshold"]),
            r["title"],
        )
    return table


def pending_table(state: AlertState) -> Table:
    table = Table(title="Pending deliveries (retried on the next run)")
    for name in ("channel", "event", "alert", "attempts", "last error", "run"):
        table.add_column(name)
    for r in state.pending:
        table.add_row(
            r["channel"],
            r["event"],
            r["alert_key"],
            str(r["attempts"]),
            r["last_error"] or "—",
            r["created_run_id"],
        )
    return table


def _finding_row(f: Finding, config: Config) -> list[str]:
    return [f.severity, f.alert_key, ", ".join(route(f, config)) or "—", f.title]


def dry_run_tables(changes: Plan, state: AlertState, config: Config) -> list[Table]:
    """Would fire (with the channels routing picks), would resolve (to the channels told), still open."""
    fire = Table(title="Would fire")
    for name in ("severity", "alert", "channels", "title"):
        fire.add_column(name)
    for f in changes.fire:
        fire.add_row(*_finding_row(f, config))
    resolve = Table(title="Would resolve")
    for name in ("severity", "alert", "channels", "title"):
        resolve.add_column(name)
    for r in changes.resolve:
        resolve.add_row(
            r["severity"], r["alert_id"], ", ".join(state.told.get(r["alert_id"], [])) or "—", r["title"]
        )
    still = Table(title="Stay open (nothing sent)")
    for name in ("severity", "alert", "title"):
        still.add_column(name)
    for row, f in changes.keep:
        still.add_row(row["severity"], row["alert_id"], f.title)
    return [fire, resolve, still]
