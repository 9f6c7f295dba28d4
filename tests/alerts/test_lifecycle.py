"""The alert lifecycle over consecutive real runs of the flow, delivered to a webhook receiver on loopback.

One PO of 100.00 USD; the FOCUS file is rewritten each night with the charges to date, so po_burn's
consumed_ratio is their sum / 100. Expected figures are worked out by hand in the comments.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alert_receivers import HttpReceiver
from support import charge, make_project, po, query, run_flow, write_csv
from typer.testing import CliRunner

from finrecon.alerts.lifecycle import apply, pending, record
from finrecon.alerts.model import DeliveryResult, Finding
from finrecon.cli import app
from finrecon.models.config import load_config
from finrecon.warehouse.state import State

pytestmark = pytest.mark.usefixtures("prefect_harness")

HOOK_ENV = "FINRECON_TEST_LIFECYCLE_HOOK"


def alerts_toml(max_attempts: int = 1, remind: str = "") -> str:
    return f"""
[alerts]
default_channels = ["ops"]
{remind}

[[alerts.channels]]
kind = "webhook"
name = "ops"
url_env = "{HOOK_ENV}"
max_attempts = {max_attempts}
backoff_seconds = 0
timeout_seconds = 2

[[alerts.rules]]
kind = "po_burn"
"""


def tagged(day: str, amount: str) -> dict[str, Any]:
    return charge(day, Tags={"po": "PO-1"}, BilledCost=amount, EffectiveCost=amount)


def night(root: Path, charges: list[dict[str, Any]], as_of: date) -> Any:
    """Rewrite the FOCUS file with the charges to date and run the flow for `as_of`."""
    write_csv(root / "focus" / "a.csv", charges)
    return run_flow(root / "finrecon.toml", as_of=as_of)


def digest_items(receiver: HttpReceiver) -> list[list[tuple[str, str, str, float | None]]]:
    """Each accepted post as its (event, alert_key, severity, value) items, in digest order."""
    return [
        [(n["event"], n["alert_key"], n["severity"], n["value"]) for n in post.json()["notifications"]]
        for post in receiver.accepted("/hook")
    ]


def test_nights_fire_once_stay_quiet_climb_the_ladder_resolve_and_re_fire(
    tmp_path: Path, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOOK_ENV, http_receiver.url("/hook"))
    pos = [po("PO-1", vendor_id="V-1", total_amount="100.00", cost_center="CC-1")]
    make_project(tmp_path, {}, pos, extra_toml=alerts_toml())
    fifty, eighty = "po_burn:PO-1:V-1:0.5", "po_burn:PO-1:V-1:0.8"
    charges = [tagged("2024-09-01", "55.00")]

    # night 1: 55.00 of 100.00 = 55 % → crosses 50 %: one digest with one fired alert
    night(tmp_path, charges, date(2024, 9, 1))
    assert digest_items(http_receiver) == [[("fired", fifty, "info", 0.55)]]

    # night 2: 55.00 + 5.00 = 60 % → 50 % still crossed, nothing new: nothing sent
    charges.append(tagged("2024-09-02", "5.00"))
    night(tmp_path, charges, date(2024, 9, 2))
    assert len(http_receiver.requests) == 1

    # night 3: 60.00 + 25.00 = 85 % → crosses 80 %: one more digest with only the 80 % alert; the 50 % alert is
    # superseded by it (closed without a notification: the 80 % one says more)
    charges.append(tagged("2024-09-03", "25.00"))
    night(tmp_path, charges, date(2024, 9, 3))
    assert digest_items(http_receiver)[1:] == [[("fired", eighty, "warning", 0.85)]]

    # night 4: a credit of −45.00 → 85.00 − 45.00 = 40 %: the 80 % alert resolves, with the value it was last
    # seen at (night 3: 85 %); the superseded 50 % one has nothing left to resolve
    charges.append(tagged("2024-09-04", "-45.00") | {"ChargeCategory": "Credit"})
    night(tmp_path, charges, date(2024, 9, 4))
    assert digest_items(http_receiver)[2:] == [[("resolved", eighty, "warning", 0.85)]]

    # night 5: 40.00 + 50.00 = 90 %: from 40 % past 50 % and 80 % in one night → one alert, at 80 %; the 50 %
    # rung is on record as superseded, never sent
    charges.append(tagged("2024-09-05", "50.00"))
    outcome = night(tmp_path, charges, date(2024, 9, 5))
    assert digest_items(http_receiver)[3:] == [[("fired", eighty, "warning", 0.9)]]
    assert len(http_receiver.requests) == 4  # nothing was retried: every digest was accepted at once

    published = outcome.published_path
    # the 50 % instance #1 was last seen on night 2 (60 %), then superseded on night 3
    assert query(
        published,
        "select alert_id, status, first_fired_as_of, last_seen_as_of, resolved_at is not null, value "
        "from finops.alerts order by alert_id",
    ) == [
        (f"{fifty}#1", "superseded", date(2024, 9, 1), date(2024, 9, 2), True, 0.6),
        (f"{fifty}#2", "superseded", date(2024, 9, 5), date(2024, 9, 5), True, 0.9),
        (f"{eighty}#1", "resolved", date(2024, 9, 3), date(2024, 9, 3), True, 0.85),
        (f"{eighty}#2", "open", date(2024, 9, 5), date(2024, 9, 5), False, 0.9),
    ]
    # four notifications in all (fired ×3, resolved ×1), every one accepted at its first attempt
    assert query(
        published,
        "select event, status, attempts, count(*) from finops.alert_notifications group by all order by all",
    ) == [("fired", "sent", 1, 3), ("resolved", "sent", 1, 1)]


def test_a_failed_delivery_stays_pending_and_goes_out_on_the_next_night_with_nothing_new(
    tmp_path: Path, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOOK_ENV, http_receiver.url("/hook"))
    http_receiver.behave("/hook", "500")
    pos = [po("PO-1", vendor_id="V-1", total_amount="100.00")]
    config = make_project(tmp_path, {}, pos, extra_toml=alerts_toml(max_attempts=2))
    key = "po_burn:PO-1:V-1:0.5"

    # 50.00 of 100.00 = 50 %: fires; the receiver answers 500 twice (max_attempts = 2), so it stays pending
    first = night(tmp_path, [tagged("2024-09-01", "50.00")], date(2024, 9, 1))
    assert [p.status for p in http_receiver.attempts("/hook")] == [500, 500]
    pending_row = query(
        first.published_path,
        "select notification_id, event, status, attempts, last_error like '%500%' from finops.alert_notifications",
    )
    assert pending_row == [(f"{key}#1:fired:{first.run_id}:ops", "fired", "pending", 2, True)]
    listed = CliRunner().invoke(app, ["alerts", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert "Pending deliveries" in listed.output and "500" in listed.output

    # the next night nothing is new (no build), but the pending digest goes out and is marked sent
    http_receiver.behave("/hook", "ok")
    second = run_flow(config, as_of=date(2024, 9, 1))
    assert second.unchanged
    assert digest_items(http_receiver) == [[("fired", key, "info", 0.5)]]
    state = tmp_path / "out" / "state.duckdb"
    assert query(state, "select status, attempts, last_error, sent_run_id from alert_notifications") == [
        ("sent", 3, None, second.run_id)
    ]
    # ...and the publication shows it too (its alert tables are refreshed; the marts are untouched)
    assert query(second.published_path, "select status, attempts from finops.alert_notifications") == [
        ("sent", 3)
    ]
    # a third night: nothing pending, nothing new, nothing sent
    run_flow(config, as_of=date(2024, 9, 1))
    assert len(http_receiver.requests) == 3


def _finding(value: float) -> Finding:
    return Finding(
        alert_key="po_burn:PO-1:V-1:0.5", rule="po_burn", rule_kind="po_burn", severity="info",
        title="PO-1 crossed 50% of its committed amount", message="...", value=value, threshold=0.5,
        po_number="PO-1", vendor_id="V-1",
    )  # fmt: skip


def test_a_still_open_alert_is_reminded_after_remind_after_days(tmp_path: Path) -> None:
    config_path = make_project(
        tmp_path, {"a.csv": [charge()]}, [po("PO-1")], extra_toml="[alerts]\nremind_after_days = 3\n"
    )
    config = load_config(config_path)
    state = State.open(tmp_path / "state.duckdb")
    t0 = datetime(2024, 9, 1, 2, 0, tzinfo=UTC)
    try:
        with state.transaction() as con:
            apply(con, [_finding(0.5)], config, "run-1", date(2024, 9, 1), t0)
        [fired] = pending(state.con)
        with state.transaction() as con:
            record(con, [DeliveryResult("log", (fired.notification_id,), True, 1)], "run-1", t0)

        def night(run_id: str, days: float) -> list[tuple[str, str]]:
            with state.transaction() as con:
                apply(con, [_finding(0.6)], config, run_id, date(2024, 9, 1), t0 + timedelta(days=days))
            queued = [(n.event, n.channel) for n in pending(state.con)]
            with state.transaction() as con:
                ids = tuple(n.notification_id for n in pending(state.con))
                record(con, [DeliveryResult("log", ids, True, 1)], run_id, t0 + timedelta(days=days))
            return queued

        # notified at t0: 2 days later nothing; 3 days later (= remind_after_days) a reminder to the told channel
        assert night("run-2", 2) == []
        assert night("run-3", 3) == [("reminder", "log")]
        # the reminder counts as a notification: the next one is due 3 days after it, not after t0
        assert night("run-4", 5) == []
        assert night("run-5", 6) == [("reminder", "log")]
    finally:
        state.close()
