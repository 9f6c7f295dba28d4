"""The bundled fixtures' run delivers its alerts to loopback receivers: routed, digested, retried next night.

Only the `po_burn` rule is configured (thresholds 50/80/100 %: 50 % info, 80 % warning, 100 % critical), so the
alerts can be worked out from the fixtures (data/fixtures/README.md, data/fixtures/erp/po_headers.csv):
  PO-1001  15.958… tagged (BrightPathMatrix) of 18.77 committed ≈ 0.850 → crosses 0.5 and 0.8, not 1.0
  PO-1005  0.000269012 (Project Foo) of 0.000489 = 0.550127 → crosses 0.5
  PO-1006  the RI's purchase rows, 9.00 of 18.00 = 0.5 → crosses 0.5 (reached counts)
  PO-1002 (≈ 33 % in EUR), PO-1007 (0.266 of 5.00) stay below 50 %; PO-1003/1004/1008 are not open.
Routes: CC-100 (PO-1001's cost centre) → e-mail; po_burn warnings and worse → Slack; the rest → the webhook.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from alert_receivers import HttpReceiver, SmtpReceiver
from support import query, run_flow

from finrecon.models.config import DEFAULT_CONFIG_TOML, PROJECT_ROOT

pytestmark = pytest.mark.e2e

SLACK_PATH = "/services/T0001/B0002/fixture-token"


def fixture_config(tmp_path: Path, http: HttpReceiver, smtp: SmtpReceiver) -> Path:
    """The bundled config with its inputs read in place, its outputs in tmp_path and three loopback channels."""
    fixtures = (PROJECT_ROOT / "data" / "fixtures").as_posix()
    toml = DEFAULT_CONFIG_TOML.replace('"data/fixtures/', f'"{fixtures}/').replace(
        '"data/', f'"{tmp_path.as_posix()}/'
    )
    toml = toml.replace("[alerts]\n", '[alerts]\ndefault_channels = ["ops"]\n', 1)
    toml += f"""
[[alerts.rules]]
kind = "po_burn"

[[alerts.channels]]
kind = "webhook"
name = "ops"
url_env = "FINRECON_TEST_OPS_URL"
max_attempts = 2
backoff_seconds = 0

[[alerts.channels]]
kind = "slack"
name = "platform"
url_env = "FINRECON_TEST_SLACK_URL"

[[alerts.channels]]
kind = "email"
name = "cc-100"
host = "127.0.0.1"
port = {smtp.port}
tls = "none"
from = "finrecon@example.org"
to = ["cc-100-owner@example.org"]

[[alerts.routes]]
match = {{ cost_center = "CC-100" }}
channels = ["cc-100"]

[[alerts.routes]]
rule_kinds = ["po_burn"]
severities = ["warning", "critical"]
channels = ["platform"]
"""
    path = tmp_path / "finrecon.toml"
    path.write_text(toml, encoding="utf-8")
    return path


def keys_in(text: str) -> list[str]:
    """The alert keys of a plain-text digest, in digest order (each item's context line ends with `key …`)."""
    return re.findall(r"; key (\S+)$", text, flags=re.MULTILINE)


def test_fixture_alerts_reach_each_receiver_and_a_failed_channel_gets_them_next_night(
    tmp_path: Path, prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HttpReceiver() as http, SmtpReceiver() as smtp:
        monkeypatch.setenv("FINRECON_TEST_OPS_URL", http.url("/ops"))
        monkeypatch.setenv("FINRECON_TEST_SLACK_URL", http.url(SLACK_PATH))
        config = fixture_config(tmp_path, http, smtp)

        http.behave("/ops", "500")  # night 1: the webhook is down
        run_flow(config)
        night_1_ops = len(http.attempts("/ops"))
        http.behave("/ops", "ok")  # night 2: nothing new in the inputs, the webhook is back
        run_flow(config)

    # e-mail: PO-1001 (CC-100) at 85 % crossed 50 % and 80 %: one alert, the 80 % warning (the ladder)
    [(sender, recipients, message)] = smtp.messages
    assert (sender, recipients) == ("finrecon@example.org", ["cc-100-owner@example.org"])
    assert message["Subject"] == (
        "[finrecon] finrecon alerts 2024-09-30: 1 warning | 1 fired, 0 still open, 0 resolved"
    )
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert keys_in(body.get_content().replace("\r\n", "\n")) == ["po_burn:PO-1001:V-AWS-01:0.8"]

    # Slack: the one po_burn warning (PO-1001 at 80 %), once, though two nights ran
    [slack] = http.accepted(SLACK_PATH)
    assert slack.json()["text"] == "finrecon alerts 2024-09-30: 1 warning | 1 fired, 0 still open, 0 resolved"

    # webhook: failed both attempts on night 1, accepted on night 2 with the same two alerts
    assert night_1_ops == 2
    assert [p.status for p in http.attempts("/ops")] == [500, 500, 200]
    webhook = http.accepted("/ops")[0].json()
    assert webhook["counts"] == {"fired": 2, "reminder": 0, "resolved": 0}
    assert webhook["open_by_severity"] == {"critical": 0, "warning": 0, "info": 2}
    items = [
        (n["alert_key"], n["severity"], n["po_number"], n["vendor_id"]) for n in webhook["notifications"]
    ]
    assert items == [
        ("po_burn:PO-1005:V-MSFT-01:0.5", "info", "PO-1005", "V-MSFT-01"),
        ("po_burn:PO-1006:V-AWS-01:0.5", "info", "PO-1006", "V-AWS-01"),
    ]
    values = [n["value"] for n in webhook["notifications"]]
    assert values == [pytest.approx(0.000269012 / 0.000489), pytest.approx(9.00 / 18.00)]

    # the state's outbox: everything sent; the webhook's two took 2 + 1 attempts
    outbox = query(
        tmp_path / "state.duckdb",
        "select channel, status, attempts, count(*) from alert_notifications group by all order by channel",
    )
    assert outbox == [("cc-100", "sent", 1, 1), ("ops", "sent", 3, 2), ("platform", "sent", 1, 1)]
