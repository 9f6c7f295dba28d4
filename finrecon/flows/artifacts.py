"""Prefect artifacts of a published run beyond the summary: the largest untagged spend and the open alerts.

The engineer on call opens the flow run in the Prefect UI and sees, without opening the database, what the night
found: both tables are read from the publication itself, so they show exactly what analysts will query.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from prefect.artifacts import create_table_artifact

UNTAGGED_KEY = "finrecon-untagged-top"
ALERTS_KEY = "finrecon-open-alerts"
UNTAGGED_ROWS = 20

UNTAGGED_SQL = """
select rank, provider_name, billing_account_id, service_name, resource_id, po_status, po_reason, po_tag_value,
    billing_currency, effective_cost, billed_cost, as_of
from untagged_top
order by rank
limit ?
"""

ALERTS_SQL = """
select severity, alert_id, title, message, po_number, first_fired_as_of, last_seen_as_of
from alerts
where status = 'open'
order by case severity when 'critical' then 0 when 'warning' then 1 else 2 end, alert_key
"""


def _cell(value: Any) -> Any:
    """JSON-safe: money rounded to cents as a number, dates as ISO text."""
    if isinstance(value, float | Decimal):
        return round(float(value), 2)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description or []]
    return [{n: _cell(v) for n, v in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute("select count(*) from duckdb_tables() where table_name = ?", [name]).fetchone()
    return bool(found and found[0])


def read_tables(published: Path) -> dict[str, list[dict[str, Any]]]:
    """The artifacts' rows by key; a table the publication lacks (an older file) gives no artifact."""
    con = duckdb.connect(str(published), read_only=True)
    try:
        tables: dict[str, list[dict[str, Any]]] = {}
        if _has_table(con, "untagged_top"):
            tables[UNTAGGED_KEY] = _rows(con, UNTAGGED_SQL, [UNTAGGED_ROWS])
        if _has_table(con, "alerts"):
            tables[ALERTS_KEY] = _rows(con, ALERTS_SQL, [])
        return tables
    finally:
        con.close()


DESCRIPTIONS = {
    UNTAGGED_KEY: f"Largest untagged or invalid-PO spend (top {UNTAGGED_ROWS} of finops.untagged_top, Σ EffectiveCost)",
    ALERTS_KEY: "Open alerts after this run, most severe first (finops.alerts)",
}


def publish_run_artifacts(published: Path) -> None:
    """One table artifact per key (inside a flow run: attached to it)."""
    for key, rows in read_tables(published).items():
        create_table_artifact(table=rows, key=key, description=DESCRIPTIONS[key])
