"""Alert delivery over real loopback receivers: webhook, Slack, e-mail (SMTP), the log, retries and routing.

Every expected digest below is written out by hand from the four notifications of `NOTES`:
  B  fired     critical  po_burn|PO-1001|1        (PO-1001 at 105 % of 1,000.00)
  A  fired     warning   po_burn|PO-1002|0.8      (PO-1002 at 85 %)
  C  reminder  warning   untagged_spend|AWS|1111… (12 % untagged, limit 5 %)
  D  resolved  warning   po_burn|PO-1003|0.5      (back to 40 %; last night's pending notification)
given in the order A, D, C, B: a digest lists fired, then reminders, then resolved, most severe first, so
B, A, C, D. Open alerts by severity (fired or reminded): B critical, A and C warning → 1 critical, 2 warning;
events: 2 fired, 1 reminder, 1 resolved. The digest is dated by its newest notification (run-3, 2024-09-30).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alert_receivers import HttpReceiver, SmtpReceiver, self_signed_cert

from finrecon.alerts.delivery import deliver
from finrecon.alerts.model import Finding, Notification
from finrecon.alerts.routing import route
from finrecon.models.config import Config

pytestmark = [
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS"),
    pytest.mark.filterwarnings("ignore:Session.login_data is deprecated"),
]

TOKEN_PATH = "/services/T0001/B0002/s3cr3t-t0ken"  # a Slack-style URL: the path is the secret


def note(notification_id: str, **values: Any) -> Notification:
    base: dict[str, Any] = {
        "notification_id": notification_id,
        "channel": "ops",
        "event": "fired",
        "alert_key": "",
        "rule": "po-burn",
        "rule_kind": "po_burn",
        "severity": "warning",
        "title": "",
        "message": "",
        "value": None,
        "threshold": None,
        "scope": {},
        "po_number": None,
        "vendor_id": None,
        "run_id": "run-3",
        "as_of": date(2024, 9, 30),
    }
    return Notification(**{**base, **values})


A = note(
    "n-a",
    alert_key="po_burn|PO-1002|0.8",
    title="PO-1002 crossed 80 % of its committed amount",
    message="PO-1002 has consumed 850.00 of 1,000.00 USD (85.0 %).",
    value=0.85,
    threshold=0.8,
    scope={"po_number": "PO-1002", "cost_center": "CC-200"},
    po_number="PO-1002",
    vendor_id="V-20",
)
B = note(
    "n-b",
    severity="critical",
    alert_key="po_burn|PO-1001|1",
    title="PO-1001 crossed 100 % of its committed amount",
    message="PO-1001 has consumed 1,050.00 of 1,000.00 USD (105.0 %).",
    value=1.05,
    threshold=1.0,
    scope={"po_number": "PO-1001", "cost_center": "CC-100"},
    po_number="PO-1001",
    vendor_id="V-10",
)
C = note(
    "n-c",
    event="reminder",
    alert_key="untagged_spend|AWS|111111111111",
    rule="untagged",
    rule_kind="untagged_spend",
    title="Untagged AWS spend above 5 %",
    message="Untagged spend over 30 days: 120.00 (12.0 %, limit 5.0 %).",
    value=0.12,
    threshold=0.05,
    scope={"provider_name": "AWS", "billing_account_id": "111111111111"},
)
D = note(
    "n-d",
    event="resolved",
    alert_key="po_burn|PO-1003|0.5",
    title="PO-1003 back below 50 % of its committed amount",
    message="PO-1003 is at 40.0 % after a credit.",
    value=0.4,
    threshold=0.5,
    scope={"po_number": "PO-1003"},
    po_number="PO-1003",
    vendor_id="V-30",
    run_id="run-2",
    as_of=date(2024, 9, 29),
)
NOTES = [A, D, C, B]

HEADLINE = "finrecon alerts 2024-09-30: 1 critical, 2 warning | 2 fired, 1 still open, 1 resolved"
TEXT = """\
finrecon alerts 2024-09-30: 1 critical, 2 warning | 2 fired, 1 still open, 1 resolved

FIRED (2)
- [CRITICAL] PO-1001 crossed 100 % of its committed amount
  PO-1001 has consumed 1,050.00 of 1,000.00 USD (105.0 %).
  rule po-burn (po_burn); PO PO-1001; vendor V-10; cost_center CC-100; value 1.05; threshold 1; key po_burn|PO-1001|1
- [WARNING] PO-1002 crossed 80 % of its committed amount
  PO-1002 has consumed 850.00 of 1,000.00 USD (85.0 %).
  rule po-burn (po_burn); PO PO-1002; vendor V-20; cost_center CC-200; value 0.85; threshold 0.8; key po_burn|PO-1002|0.8

REMINDERS, STILL OPEN (1)
- [WARNING] Untagged AWS spend above 5 %
  Untagged spend over 30 days: 120.00 (12.0 %, limit 5.0 %).
  rule untagged (untagged_spend); provider_name AWS; billing_account_id 111111111111; value 0.12; threshold 0.05; key untagged_spend|AWS|111111111111

RESOLVED (1)
- [WARNING] PO-1003 back below 50 % of its committed amount
  PO-1003 is at 40.0 % after a credit.
  rule po-burn (po_burn); PO PO-1003; vendor V-30; value 0.4; threshold 0.5; key po_burn|PO-1003|0.5
"""


def make_config(tmp_path: Path, channels: list[dict[str, Any]], **alerts: Any) -> Config:
    """A config with only the alert settings that matter here (no run needs its sources)."""
    raw = {
        "sources": [],
        "erp": {"po_headers": "unused.csv"},
        "alerts": {"channels": channels, **alerts},
        "base_dir": tmp_path,
    }
    return Config.model_validate(raw)


def on(channel: str, notes: list[Notification]) -> list[Notification]:
    return [replace(n, channel=channel) for n in notes]


class Sleeps(list[float]):
    """Records the backoff waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- generic webhook -----------------------------------------------------------------------------------------


def test_webhook_posts_one_json_digest_most_severe_first(
    tmp_path: Path, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPS_HOOK_URL", http_receiver.url("/hooks/ops?token=abc123secret"))
    monkeypatch.setenv("OPS_HOOK_AUTH", "Bearer xyz-secret")
    channel = {
        "kind": "webhook",
        "name": "ops",
        "url_env": "OPS_HOOK_URL",
        "headers": {"X-Team": "finops"},
        "header_envs": {"Authorization": "OPS_HOOK_AUTH"},
    }
    config = make_config(tmp_path, [channel])

    results = deliver(on("ops", NOTES), config)

    assert [(r.channel, r.notification_ids, r.ok, r.attempts, r.error) for r in results] == [
        ("ops", ("n-b", "n-a", "n-c", "n-d"), True, 1, None)
    ]
    [post] = http_receiver.accepted("/hooks/ops?token=abc123secret")
    assert post.headers["content-type"] == "application/json"
    assert post.headers["x-team"] == "finops"
    assert post.headers["authorization"] == "Bearer xyz-secret"
    body = post.json()
    assert post.headers["idempotency-key"] == body["digest_id"]
    assert len(body["digest_id"]) == 32
    del body["digest_id"]
    assert body == {
        "source": "finrecon",
        "channel": "ops",
        "run_id": "run-3",
        "as_of": "2024-09-30",
        "summary": HEADLINE,
        "counts": {"fired": 2, "reminder": 1, "resolved": 1},
        "open_by_severity": {"critical": 1, "warning": 2, "info": 0},
        "notifications": [
            {
                "notification_id": "n-b",
                "event": "fired",
                "severity": "critical",
                "rule": "po-burn",
                "rule_kind": "po_burn",
                "alert_key": "po_burn|PO-1001|1",
                "title": "PO-1001 crossed 100 % of its committed amount",
                "message": "PO-1001 has consumed 1,050.00 of 1,000.00 USD (105.0 %).",
                "value": 1.05,
                "threshold": 1.0,
                "scope": {"po_number": "PO-1001", "cost_center": "CC-100"},
                "po_number": "PO-1001",
                "vendor_id": "V-10",
                "run_id": "run-3",
                "as_of": "2024-09-30",
            },
            {
                "notification_id": "n-a",
                "event": "fired",
                "severity": "warning",
                "rule": "po-burn",
                "rule_kind": "po_burn",
                "alert_key": "po_burn|PO-1002|0.8",
                "title": "PO-1002 crossed 80 % of its committed amount",
                "message": "PO-1002 has consumed 850.00 of 1,000.00 USD (85.0 %).",
                "value": 0.85,
                "threshold": 0.8,
                "scope": {"po_number": "PO-1002", "cost_center": "CC-200"},
                "po_number": "PO-1002",
                "vendor_id": "V-20",
                "run_id": "run-3",
                "as_of": "2024-09-30",
            },
            {
                "notification_id": "n-c",
                "event": "reminder",
                "severity": "warning",
                "rule": "untagged",
                "rule_kind": "untagged_spend",
                "alert_key": "untagged_spend|AWS|111111111111",
                "title": "Untagged AWS spend above 5 %",
                "message": "Untagged spend over 30 days: 120.00 (12.0 %, limit 5.0 %).",
                "value": 0.12,
                "threshold": 0.05,
                "scope": {"provider_name": "AWS", "billing_account_id": "111111111111"},
                "po_number": None,
                "vendor_id": None,
                "run_id": "run-3",
                "as_of": "2024-09-30",
            },
            {
                "notification_id": "n-d",
                "event": "resolved",
                "severity": "warning",
                "rule": "po-burn",
                "rule_kind": "po_burn",
                "alert_key": "po_burn|PO-1003|0.5",
                "title": "PO-1003 back below 50 % of its committed amount",
                "message": "PO-1003 is at 40.0 % after a credit.",
                "value": 0.4,
                "threshold": 0.5,
                "scope": {"po_number": "PO-1003"},
                "po_number": "PO-1003",
                "vendor_id": "V-30",
                "run_id": "run-2",
                "as_of": "2024-09-29",
            },
        ],
    }


def test_webhook_500_then_200_is_accepted_on_the_second_attempt(
    tmp_path: Path, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_receiver.behave("/flaky", "500-then-200")
    monkeypatch.setenv("FLAKY_URL", http_receiver.url("/flaky"))
    channel = {
        "kind": "webhook",
        "name": "ops",
        "url_env": "FLAKY_URL",
        "max_attempts": 3,
        "backoff_seconds": 0.5,
    }
    sleeps = Sleeps()

    [result] = deliver(on("ops", [A, B]), make_config(tmp_path, [channel]), sleep=sleeps)

    assert (result.ok, result.attempts, result.error) == (True, 2, None)
    assert [p.status for p in http_receiver.attempts("/flaky")] == [500, 200]
    first, second = http_receiver.attempts("/flaky")
    assert first.body == second.body  # the same digest, so a receiver can drop a duplicate by digest_id
    assert sleeps == [0.5]  # one wait: backoff × 2^0 before attempt 2


def test_webhook_that_hangs_fails_after_max_attempts_without_leaking_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with HttpReceiver(hang_seconds=1.5) as receiver:
        receiver.behave(TOKEN_PATH, "hang")
        monkeypatch.setenv("SLOW_URL", receiver.url(TOKEN_PATH))
        channel = {
            "kind": "webhook",
            "name": "ops",
            "url_env": "SLOW_URL",
            "timeout_seconds": 0.2,
            "max_attempts": 2,
            "backoff_seconds": 1,
        }
        sleeps = Sleeps()
        with caplog.at_level(logging.DEBUG):
            [result] = deliver(on("ops", [A]), make_config(tmp_path, [channel]), sleep=sleeps)
        tried = receiver.arrivals(TOKEN_PATH)

    assert (result.ok, result.attempts) == (False, 2)
    assert result.notification_ids == ("n-a",)
    assert result.error == "webhook channel 'ops': timed out after 0.2 s (after 2 attempts)"
    assert sleeps == [1.0]  # backoff × 2^0 between attempt 1 and 2; none after the last
    assert tried == 2  # both attempts reached the receiver
    assert "s3cr3t-t0ken" not in caplog.text and "attempt 2 of 2 failed" in caplog.text


def test_webhook_4xx_is_not_retried(
    tmp_path: Path, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_receiver.behave("/gone", "404")
    monkeypatch.setenv("GONE_URL", http_receiver.url("/gone"))
    channel = {"kind": "webhook", "name": "ops", "url_env": "GONE_URL", "backoff_seconds": 0}

    [result] = deliver(on("ops", [A]), make_config(tmp_path, [channel]))

    assert (result.ok, result.attempts) == (False, 1)
    assert result.error == "webhook channel 'ops': HTTP 404 server error (not retried)"
    assert len(http_receiver.attempts("/gone")) == 1


def test_a_missing_secret_leaves_the_digest_pending_without_an_attempt(tmp_path: Path) -> None:
    channel = {"kind": "slack", "name": "team", "url_env": "FINRECON_TEST_UNSET_SLACK_URL"}

    [result] = deliver(on("team", [A]), make_config(tmp_path, [channel]))

    assert (result.ok, result.attempts) == (False, 0)
    assert result.error == (
        "slack channel 'team': environment variable FINRECON_TEST_UNSET_SLACK_URL (the URL) is not set"
    )


def test_one_channel_down_does_not_stop_the_others(
    tmp_path: Path, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_receiver.behave("/down", "500")
    monkeypatch.setenv("DOWN_URL", http_receiver.url("/down"))
    monkeypatch.setenv("TEAM_URL", http_receiver.url(TOKEN_PATH))
    channels = [
        {"kind": "webhook", "name": "ops", "url_env": "DOWN_URL", "max_attempts": 2, "backoff_seconds": 0},
        {"kind": "slack", "name": "team", "url_env": "TEAM_URL"},
    ]
    notes = [*on("ops", [A]), *on("team", [B]), *on("log", [C]), *on("retired", [D])]

    results = deliver(notes, make_config(tmp_path, channels))

    assert [(r.channel, r.notification_ids, r.ok, r.attempts, r.error) for r in results] == [
        ("ops", ("n-a",), False, 2, "webhook channel 'ops': HTTP 500 server error (after 2 attempts)"),
        ("team", ("n-b",), True, 1, None),
        ("log", ("n-c",), True, 1, None),
        (
            "retired",
            ("n-d",),
            False,
            0,
            "channel 'retired' is not configured; its notifications stay pending",
        ),
    ]


# --- Slack ---------------------------------------------------------------------------------------------------


def test_slack_message_has_the_headline_as_text_and_one_block_per_alert(
    tmp_path: Path, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_SLACK_URL", http_receiver.url(TOKEN_PATH))
    config = make_config(tmp_path, [{"kind": "slack", "name": "team", "url_env": "TEAM_SLACK_URL"}])

    [result] = deliver(on("team", NOTES), config)

    assert result.ok and result.attempts == 1
    [post] = http_receiver.accepted(TOKEN_PATH)

    def section(text: str) -> dict[str, Any]:
        return {"type": "section", "text": {"type": "mrkdwn", "text": text}}

    assert post.json() == {
        "text": HEADLINE,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": HEADLINE}},
            section("*Fired (2)*"),
            section(
                ":rotating_light: *[CRITICAL] PO-1001 crossed 100 % of its committed amount*\n"
                "PO-1001 has consumed 1,050.00 of 1,000.00 USD (105.0 %).\n"
                "_rule po-burn (po_burn); PO PO-1001; vendor V-10; cost_center CC-100; value 1.05; threshold 1; "
                "key po_burn|PO-1001|1_"
            ),
            section(
                ":warning: *[WARNING] PO-1002 crossed 80 % of its committed amount*\n"
                "PO-1002 has consumed 850.00 of 1,000.00 USD (85.0 %).\n"
                "_rule po-burn (po_burn); PO PO-1002; vendor V-20; cost_center CC-200; value 0.85; threshold 0.8; "
                "key po_burn|PO-1002|0.8_"
            ),
            section("*Reminders, still open (1)*"),
            section(
                ":warning: *[WARNING] Untagged AWS spend above 5 %*\n"
                "Untagged spend over 30 days: 120.00 (12.0 %, limit 5.0 %).\n"
                "_rule untagged (untagged_spend); provider_name AWS; billing_account_id 111111111111; "
                "value 0.12; threshold 0.05; key untagged_spend|AWS|111111111111_"
            ),
            section("*Resolved (1)*"),
            section(
                ":white_check_mark: *[WARNING] PO-1003 back below 50 % of its committed amount*\n"
                "PO-1003 is at 40.0 % after a credit.\n"
                "_rule po-burn (po_burn); PO PO-1003; vendor V-30; value 0.4; threshold 0.5; key po_burn|PO-1003|0.5_"
            ),
        ],
    }


def test_slack_caps_a_long_digest_at_fifty_blocks(
    tmp_path: Path, http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_SLACK_URL", http_receiver.url("/slack"))
    config = make_config(tmp_path, [{"kind": "slack", "name": "team", "url_env": "TEAM_SLACK_URL"}])
    many = [replace(A, notification_id=f"n-{i:02d}", alert_key=f"po_burn|PO-{i:02d}|0.8") for i in range(60)]

    [result] = deliver(on("team", many), config)

    assert result.ok and len(result.notification_ids) == 60  # all 60 accepted: the digest as a whole
    blocks = http_receiver.accepted("/slack")[0].json()["blocks"]
    # header + "Fired (60)" + 46 alerts = 48 blocks, then one closing line: 49 ≤ 50; 60 − 46 = 14 not shown
    assert len(blocks) == 49
    assert blocks[-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "… and 14 more; `finrecon alerts` lists every open alert"}],
    }


def test_slack_url_from_a_prefect_secret_block(
    tmp_path: Path, http_receiver: HttpReceiver, prefect_harness: None
) -> None:
    from prefect.blocks.system import Secret

    Secret(value=http_receiver.url(TOKEN_PATH)).save("finrecon-test-slack-url", overwrite=True)
    channel = {"kind": "slack", "name": "team", "url_secret_block": "finrecon-test-slack-url"}

    [result] = deliver(on("team", [C]), make_config(tmp_path, [channel]))

    assert (result.ok, result.attempts) == (True, 1)
    assert http_receiver.accepted(TOKEN_PATH)[0].json()["text"] == (
        "finrecon alerts 2024-09-30: 1 warning | 0 fired, 1 still open, 0 resolved"
    )


# --- e-mail --------------------------------------------------------------------------------------------------


def email_channel(port: int, **values: Any) -> dict[str, Any]:
    return {
        "kind": "email",
        "name": "mail",
        "host": "127.0.0.1",
        "port": port,
        "tls": "none",
        "from": "finrecon@example.org",
        "to": ["finops@example.org", "cc-100-owner@example.org"],
        "max_attempts": 1,
        **values,
    }


def test_email_digest_over_starttls_with_a_password_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = self_signed_cert(tmp_path)
    monkeypatch.setenv("SMTP_PASSWORD", "pa55-w0rd")
    channel = email_channel(
        0, tls="starttls", ca_file="smtp-cert.pem", username="finrecon", password_env="SMTP_PASSWORD"
    )
    with SmtpReceiver(users={"finrecon": "pa55-w0rd"}, tls="starttls", cert=(cert, key)) as smtp:
        channel["port"] = smtp.port
        [result] = deliver(on("mail", NOTES), make_config(tmp_path, [channel]))

    assert (result.ok, result.attempts, result.error) == (True, 1, None)
    assert smtp.logins == ["finrecon"]
    [(sender, recipients, message)] = smtp.messages
    assert sender == "finrecon@example.org"
    assert recipients == ["finops@example.org", "cc-100-owner@example.org"]
    assert message["Subject"] == f"[finrecon] {HEADLINE}"
    assert message["To"] == "finops@example.org, cc-100-owner@example.org"
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == TEXT  # SMTP carries CRLF line ends
    assert "<b>[CRITICAL] PO-1001 crossed 100 % of its committed amount</b>" in html.get_content()


def test_email_over_implicit_tls(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    channel = email_channel(0, tls="ssl", ca_file="smtp-cert.pem", subject_prefix="[FinOps]")
    with SmtpReceiver(tls="ssl", cert=(cert, key)) as smtp:
        channel["port"] = smtp.port
        [result] = deliver(on("mail", [D]), make_config(tmp_path, [channel]))

    assert result.ok
    # only D, resolved: nothing open
    assert (
        smtp.messages[0][2]["Subject"]
        == "[FinOps] finrecon alerts 2024-09-29: nothing open | 0 fired, 0 still open, 1 resolved"
    )


def test_email_without_auth_to_a_plain_relay(tmp_path: Path, smtp_receiver: SmtpReceiver) -> None:
    channel = email_channel(smtp_receiver.port, to=["finops@example.org"])

    [result] = deliver(on("mail", [B]), make_config(tmp_path, [channel]))

    assert result.ok
    [(_, recipients, message)] = smtp_receiver.messages
    assert recipients == ["finops@example.org"]
    assert (
        message["Subject"]
        == "[finrecon] finrecon alerts 2024-09-30: 1 critical | 1 fired, 0 still open, 0 resolved"
    )


def test_email_with_a_wrong_password_is_refused_once_and_the_password_is_not_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "not-the-password")
    with SmtpReceiver(users={"finrecon": "pa55-w0rd"}) as smtp:
        channel = email_channel(smtp.port, username="finrecon", password_env="SMTP_PASSWORD", max_attempts=3)
        [result] = deliver(on("mail", [A]), make_config(tmp_path, [channel]))

    assert (result.ok, result.attempts) == (False, 1)  # SMTP 535 is permanent: not retried
    assert result.error is not None
    assert result.error.startswith("email channel 'mail': SMTP 535 ")
    assert "not-the-password" not in result.error
    assert smtp.messages == []


def test_email_to_a_closed_port_is_retried_then_left_pending(tmp_path: Path) -> None:
    from alert_receivers import free_port

    channel = email_channel(free_port(), max_attempts=3, backoff_seconds=0.25, timeout_seconds=2)
    sleeps = Sleeps()

    [result] = deliver(on("mail", [A]), make_config(tmp_path, [channel]), sleep=sleeps)

    assert (result.ok, result.attempts) == (False, 3)
    assert result.error is not None and result.error.startswith(
        "email channel 'mail': ConnectionRefusedError"
    )
    assert sleeps == [0.25, 0.5]  # 0.25 × 2^0, 0.25 × 2^1


# --- log -----------------------------------------------------------------------------------------------------


class _Records(logging.Handler):
    """Every record of one logger, kept (caplog's handlers sit on the root, which Prefect's first import
    reconfigures: run alone, this test then saw no record)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_log_channel_writes_the_digest(tmp_path: Path) -> None:
    alerts_logger, kept = logging.getLogger("finrecon.alerts"), _Records()
    alerts_logger.addHandler(kept)
    try:
        [result] = deliver(on("log", NOTES), make_config(tmp_path, []))
    finally:
        alerts_logger.removeHandler(kept)

    assert (result.channel, result.ok) == ("log", True)
    [record] = [r for r in kept.records if r.getMessage().startswith("finrecon alerts")]
    assert record.levelno == logging.WARNING  # something is open
    assert record.getMessage() == TEXT.rstrip("\n")


# --- routing -------------------------------------------------------------------------------------------------


def finding(**values: Any) -> Finding:
    base: dict[str, Any] = {
        "alert_key": "k",
        "rule": "po-burn",
        "rule_kind": "po_burn",
        "severity": "warning",
        "title": "t",
        "message": "m",
        "value": None,
        "threshold": None,
    }
    return Finding(**{**base, **values})


def routed_config(tmp_path: Path) -> Config:
    channels = [
        {"kind": "webhook", "name": "ops", "url_env": "X"},
        {"kind": "slack", "name": "platform", "url_env": "Y"},
        {
            "kind": "email",
            "name": "cc-100",
            "host": "smtp.example.org",
            "from": "f@example.org",
            "to": ["o@example.org"],
        },
    ]
    routes = [
        {"name": "untagged to the platform team", "rules": ["untagged"], "channels": ["platform"]},
        {"name": "CC-100 owners", "match": {"cost_center": "CC-1*"}, "channels": ["cc-100", "ops"]},
        {"name": "critical burn", "rule_kinds": ["po_burn"], "severities": ["critical"], "channels": ["ops"]},
        {"name": "two vendors", "match": {"vendor_id": ["V-7", "V-8"]}, "channels": ["platform"]},
    ]
    return make_config(tmp_path, channels, routes=routes, default_channels=["log", "ops"])


def test_route_by_rule(tmp_path: Path) -> None:
    config = routed_config(tmp_path)
    assert route(finding(rule="untagged", rule_kind="untagged_spend"), config) == ["platform"]


def test_route_by_cost_center_with_a_wildcard(tmp_path: Path) -> None:
    config = routed_config(tmp_path)
    assert route(finding(cost_center="CC-100"), config) == ["cc-100", "ops"]
    assert route(finding(cost_center="CC-200"), config) == ["log", "ops"]  # no route: the defaults


def test_every_matching_route_applies_each_channel_once(tmp_path: Path) -> None:
    config = routed_config(tmp_path)
    # CC-100 owners (cc-100, ops) + critical burn (ops) + two vendors (platform): ops once
    assert route(finding(cost_center="CC-150", severity="critical", vendor_id="V-8"), config) == [
        "cc-100",
        "ops",
        "platform",
    ]


def test_route_by_scope_column_and_a_missing_attribute_never_matches(tmp_path: Path) -> None:
    channels = [{"kind": "webhook", "name": "aws", "url_env": "X"}]
    routes = [{"match": {"provider_name": "AWS"}, "channels": ["aws"]}]
    config = make_config(tmp_path, channels, routes=routes)
    assert route(finding(scope={"provider_name": "AWS"}), config) == ["aws"]
    assert route(finding(scope={"provider_name": "Microsoft"}), config) == ["log"]
    assert route(finding(), config) == ["log"]  # no provider at all: not an AWS alert


def test_routes_must_name_configured_channels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"routes\[0\]\.channels: unknown channel 'pager' \(known: log\)"):
        make_config(tmp_path, [], routes=[{"rules": ["x"], "channels": ["pager"]}])


def test_a_webhook_url_is_never_a_config_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="url"):
        make_config(tmp_path, [{"kind": "webhook", "name": "ops", "url": "https://hooks.example.org/abc"}])
    with pytest.raises(ValueError, match="set exactly one of `url_env` and `url_secret_block`"):
        make_config(tmp_path, [{"kind": "slack", "name": "team"}])
    with pytest.raises(
        ValueError, match="'Authorization' looks like a credential: set it in `header_envs` instead"
    ):
        make_config(
            tmp_path, [{"kind": "webhook", "url_env": "X", "headers": {"Authorization": "Bearer abc"}}]
        )
