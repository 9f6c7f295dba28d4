"""Alerts in the nightly run: evaluate the freshly built marts, apply the lifecycle, deliver, record.

It runs before the new publication is swapped in, so the published `alerts` and `alert_notifications` show
what was delivered. A night with nothing new has no build to evaluate: it delivers what is still pending (and
queues due reminders), so a channel that was down yesterday gets its digest today. Delivery never raises for a
channel; whatever fails stays pending for the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from finrecon.alerts.delivery import deliver
from finrecon.alerts.lifecycle import Changes, apply, pending, queue_reminders, record
from finrecon.alerts.model import Finding
from finrecon.alerts.rules import evaluate
from finrecon.core.failpoints import failpoint
from finrecon.models.config import Config
from finrecon.warehouse.publish import PUBLISH_ALIAS, copy_state_tables
from finrecon.warehouse.state import State

logger = logging.getLogger("finrecon.alerts")

# What the rules read from the run log; copied into the building publication before evaluation.
RULE_STATE_TABLES = ("runs", "run_files")
# The alert state the publication carries.
ALERT_TABLES = ("alerts", "alert_notifications")


@dataclass(frozen=True)
class AlertOutcome:
    findings: int
    changes: Changes
    sent: int  # notifications a channel accepted tonight
    pending: int  # notifications still waiting for their channel
    attempted: int = 0  # notifications tried tonight (their attempts or status changed)

    @property
    def outbox_changed(self) -> bool:
        """Whether tonight changed the alert tables (fired, resolved, reminded, or a delivery was tried)."""
        changes = self.changes
        return bool(self.attempted or changes.fired or changes.resolved or changes.reminded)


def evaluate_building(state: State, config: Config, as_of: date) -> list[Finding]:
    """The rules on the publication being built (attached as PUBLISH_ALIAS), run log included."""
    copy_state_tables(state, RULE_STATE_TABLES)
    state.con.execute(f"use {PUBLISH_ALIAS}")
    try:
        return evaluate(state.con, config, as_of)
    finally:
        state.con.execute(f'use "{state.catalog}"')


def after_build(
    state: State,
    config: Config,
    run_id: str,
    as_of: date,
    now: datetime | None = None,
    sleep: Callable[[float], None] | None = None,
) -> AlertOutcome:
    """Evaluate, apply the lifecycle in one transaction, then deliver everything pending and record it."""
    now = now or datetime.now(UTC)
    findings = evaluate_building(state, config, as_of)
    with state.transaction() as con:
        changes = apply(con, findings, config, run_id, as_of, now)
    sent, still_pending = deliver_pending(state, config, run_id, now, sleep)
    return AlertOutcome(len(findings), changes, sent, still_pending, sent + still_pending)


def unchanged_night(
    state: State,
    config: Config,
    run_id: str,
    now: datetime | None = None,
    sleep: Callable[[float], None] | None = None,
) -> AlertOutcome:
    """No new publication: the findings are last night's, so only due reminders and pending retries."""
    now = now or datetime.now(UTC)
    found = state.con.execute(
        "select as_of from runs where status = 'succeeded' order by started_at desc limit 1"
    ).fetchall()
    as_of = found[0][0] if found else now.date()
    with state.transaction() as con:
        reminded = queue_reminders(con, config, run_id, as_of, now)
    sent, still_pending = deliver_pending(state, config, run_id, now, sleep)
    return AlertOutcome(
        0, Changes(fired=0, reminded=reminded, resolved=0), sent, still_pending, sent + still_pending
    )


def deliver_pending(
    state: State,
    config: Config,
    run_id: str,
    now: datetime,
    sleep: Callable[[float], None] | None = None,
) -> tuple[int, int]:
    """Send every pending notification (one digest per channel); returns (sent, still pending)."""
    notifications = pending(state.con)
    if not notifications:
        return 0, 0
    results = deliver(notifications, config) if sleep is None else deliver(notifications, config, sleep)
    failpoint("alerts.delivered")  # crash tests: sent, not yet recorded as sent
    with state.transaction() as con:
        record(con, results, run_id, now)
    for result in results:
        if not result.ok:
            logger.warning(
                "alerts: %d notifications for channel %r stay pending after %d attempts: %s",
                len(result.notification_ids),
                result.channel,
                result.attempts,
                result.error,
            )
    sent = sum(len(r.notification_ids) for r in results if r.ok)
    return sent, len(notifications) - sent
