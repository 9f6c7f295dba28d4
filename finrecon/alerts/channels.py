"""The alert channels: how a digest is rendered and sent on the log, a webhook, Slack and e-mail.

Each sender makes one attempt and raises `ChannelError` saying whether a retry can help (timeouts, refused
connections, HTTP 429/5xx, SMTP 4xx) or not (other HTTP 4xx, SMTP 5xx, a refused certificate or login);
retries live in `delivery`. Secrets (webhook URLs carry their token, SMTP passwords) are read at send time from
an environment variable or a Prefect Secret block, never from the config, and are scrubbed from every error.

Webhook and Slack posts go through httpx rather than Prefect's `SlackWebhook` block: that block sends through
Apprise, which only accepts hooks.slack.com URLs (no loopback receiver, no relay), sends no Slack `blocks`,
retries on its own terms and reports a failure without the HTTP status needed to tell a 429 from a 400.
Prefect's `Secret` block fits, and holds the secrets.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, cast
from urllib.parse import urlsplit

import httpx

from finrecon.alerts.digest import SECTIONS, Digest, context_line
from finrecon.alerts.model import Notification
from finrecon.models.config import (
    AlertChannel,
    Config,
    EmailAlertChannel,
    LogAlertChannel,
    SlackAlertChannel,
    WebhookAlertChannel,
)

logger = logging.getLogger("finrecon.alerts")

USER_AGENT = "finrecon-alerts/1"
SLACK_MAX_BLOCKS = 50  # Slack refuses a message with more blocks than this
SLACK_MAX_SECTION_TEXT = 3000  # characters of one section block's text
SLACK_MAX_HEADER_TEXT = 150
SLACK_EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


class ChannelError(Exception):
    """One failed attempt; `retryable` says whether trying again can help. The message holds no secret."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Sender:
    """A channel ready to send: one attempt's function, and its secrets (to scrub them from any error)."""

    send: Callable[[Digest], None]
    secrets: tuple[str, ...] = ()


def prepare(channel: AlertChannel, config: Config) -> Sender:
    """Resolve the channel's secrets and pick its sender; a missing secret is a non-retryable ChannelError."""
    if isinstance(channel, LogAlertChannel):
        return Sender(send=send_log)
    if isinstance(channel, SlackAlertChannel):
        url = resolve_secret(channel.url_env, channel.url_secret_block, "URL")
        timeout = channel.timeout_seconds
        return Sender(send=lambda d: post_json(url, slack_body(d), {}, timeout), secrets=secret_forms(url))
    if isinstance(channel, WebhookAlertChannel):
        return _prepare_webhook(channel)
    return _prepare_email(channel, config)


def _prepare_webhook(channel: WebhookAlertChannel) -> Sender:
    url = resolve_secret(channel.url_env, channel.url_secret_block, "URL")
    secret_headers = {
        name: resolve_secret(env, None, f"header {name}") for name, env in channel.header_envs.items()
    }

    def send(digest: Digest) -> None:
        # The digest id lets a receiver drop a digest it already has (a timeout after it accepted the post).
        headers = {**channel.headers, **secret_headers, "Idempotency-Key": digest_id(digest)}
        post_json(url, webhook_body(digest), headers, channel.timeout_seconds)

    return Sender(send=send, secrets=(*secret_forms(url), *secret_headers.values()))


def _prepare_email(channel: EmailAlertChannel, config: Config) -> Sender:
    password = None
    if channel.password_env or channel.password_secret_block:
        password = resolve_secret(channel.password_env, channel.password_secret_block, "password")
    ca_file = str(config.resolve(channel.ca_file)) if channel.ca_file else None
    return Sender(
        send=lambda d: send_email(channel, d, password, ca_file),
        secrets=(password,) if password else (),
    )


def resolve_secret(env: str | None, block: str | None, what: str) -> str:
    """A secret from the named environment variable or Prefect Secret block; errors name where, never what."""
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise ChannelError(f"environment variable {env} (the {what}) is not set", retryable=False)
        return value
    if block is None:
        raise ChannelError(f"no source configured for the {what}", retryable=False)
    from prefect.blocks.system import Secret

    try:
        value = cast(Secret[str], Secret.load(block)).get()  # sync: delivery runs outside an event loop
    except Exception as err:  # a missing block, or no Prefect API: the next run tries again
        raise ChannelError(
            f"Prefect Secret block {block!r} (the {what}) could not be loaded ({type(err).__name__})",
            retryable=False,
        ) from None
    if not isinstance(value, str) or not value:
        raise ChannelError(f"Prefect Secret block {block!r} (the {what}) holds no text", retryable=False)
    return value


def secret_forms(url: str) -> tuple[str, ...]:
    """A secret URL and the parts that carry its token (path, query), each to be scrubbed from errors."""
    parts = urlsplit(url)
    return tuple(p for p in (url, parts.path, parts.query) if len(p) > 1)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """The text with every secret (longest first, so a URL goes before its path) replaced by ***."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def digest_id(digest: Digest) -> str:
    """A stable id of a digest's content: the same pending notifications re-sent give the same id."""
    return hashlib.sha256("\n".join(sorted(digest.notification_ids)).encode()).hexdigest()[:32]


# --- log ---------------------------------------------------------------------------------------------------


def send_log(digest: Digest) -> None:
    """Write the digest to the run's log (Prefect's run logger inside a flow), as a warning if anything is open."""
    level = logging.WARNING if any(digest.open_by_severity().values()) else logging.INFO
    run_logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = logger
    try:
        from prefect import get_run_logger

        run_logger = get_run_logger()
    except Exception:  # outside a flow or task run: the module logger
        pass
    run_logger.log(level, digest.text().rstrip("\n"))


# --- webhook and Slack -------------------------------------------------------------------------------------


def notification_body(n: Notification) -> dict[str, Any]:
    """One notification in the webhook body (README "Alerts" documents every field)."""
    return {
        "notification_id": n.notification_id,
        "event": n.event,
        "severity": n.severity,
        "rule": n.rule,
        "rule_kind": n.rule_kind,
        "alert_key": n.alert_key,
        "title": n.title,
        "message": n.message,
        "value": n.value,
        "threshold": n.threshold,
        "scope": dict(n.scope),
        "po_number": n.po_number,
        "vendor_id": n.vendor_id,
        "run_id": n.run_id,
        "as_of": n.as_of.isoformat(),
    }


def webhook_body(digest: Digest) -> dict[str, Any]:
    """The generic webhook's JSON body: the digest's summary, counts and notifications in digest order."""
    return {
        "source": "finrecon",
        "digest_id": digest_id(digest),
        "channel": digest.channel,
        "run_id": digest.run_id,
        "as_of": digest.as_of.isoformat(),
        "summary": digest.headline,
        "counts": digest.event_counts(),
        "open_by_severity": digest.open_by_severity(),
        "notifications": [notification_body(n) for n in digest.notifications],
    }


def slack_escape(text: str) -> str:
    """Slack's mrkdwn escaping: &, < and > are control characters there."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(digest: Digest) -> dict[str, Any]:
    """A Slack incoming-webhook message: the headline as `text` (notifications, fallback) plus `blocks`."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": digest.headline[:SLACK_MAX_HEADER_TEXT]}}
    ]
    room = SLACK_MAX_BLOCKS - 2  # the header, and a closing "and N more" line if needed
    shown = 0
    for event, label in SECTIONS:
        items = digest.section(event)
        if not items or len(blocks) >= room:
            continue
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*{label} ({len(items)})*"}})
        for n in items:
            if len(blocks) >= room:
                break
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _slack_item(n)}})
            shown += 1
    if shown < len(digest.notifications):
        more = len(digest.notifications) - shown
        note = f"… and {more} more; `finrecon alerts` lists every open alert"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    return {"text": digest.headline, "blocks": blocks}


def _slack_item(n: Notification) -> str:
    emoji = ":white_check_mark:" if n.event == "resolved" else SLACK_EMOJI[n.severity]
    text = (
        f"{emoji} *[{n.severity.upper()}] {slack_escape(n.title)}*\n"
        f"{slack_escape(n.message)}\n_{slack_escape(context_line(n))}_"
    )
    return text if len(text) <= SLACK_MAX_SECTION_TEXT else text[: SLACK_MAX_SECTION_TEXT - 1] + "…"


def post_json(url: str, body: dict[str, Any], headers: dict[str, str], timeout: float) -> None:
    """POST one JSON body; 2xx is accepted, 429/5xx/timeouts/connection errors retryable, other 4xx not."""
    try:
        response = httpx.post(
            url,
            json=body,
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=timeout,
            follow_redirects=False,
        )
    except httpx.TimeoutException:
        raise ChannelError(f"timed out after {timeout:g} s", retryable=True) from None
    except httpx.HTTPError as err:  # refused, reset, DNS: the receiver may be back on the next attempt
        raise ChannelError(f"{type(err).__name__}: {err}", retryable=True) from None
    if 200 <= response.status_code < 300:
        return
    retryable = response.status_code == 429 or response.status_code >= 500
    snippet = " ".join(response.text[:200].split())
    raise ChannelError(f"HTTP {response.status_code} {snippet}".rstrip(), retryable=retryable)


# --- e-mail ------------------------------------------------------------------------------------------------


def email_message(channel: EmailAlertChannel, digest: Digest) -> EmailMessage:
    """The e-mail digest: subject with the counts by severity, plain-text body and an HTML alternative."""
    message = EmailMessage()
    message["Subject"] = f"{channel.subject_prefix} {digest.headline}".strip()
    message["From"] = channel.from_address
    message["To"] = ", ".join(channel.to)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=digest_id(digest)[:16], domain="finrecon.invalid")
    message.set_content(digest.text())
    message.add_alternative(_email_html(digest), subtype="html")
    return message


def _email_html(digest: Digest) -> str:
    parts = [f"<h2>{html.escape(digest.headline)}</h2>"]
    for event, label in SECTIONS:
        items = digest.section(event)
        if not items:
            continue
        parts.append(f"<h3>{html.escape(label)} ({len(items)})</h3><ul>")
        for n in items:
            parts.append(
                f"<li><b>[{n.severity.upper()}] {html.escape(n.title)}</b><br>{html.escape(n.message)}"
                f"<br><small>{html.escape(context_line(n))}</small></li>"
            )
        parts.append("</ul>")
    return "<html><body>" + "".join(parts) + "</body></html>\n"


def send_email(channel: EmailAlertChannel, digest: Digest, password: str | None, ca_file: str | None) -> None:
    """One SMTP delivery (STARTTLS, implicit TLS or plain); accepted once the server took the message."""
    message = email_message(channel, digest)
    context = ssl.create_default_context(cafile=ca_file)
    timeout = channel.timeout_seconds
    try:
        if channel.tls == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                channel.host, channel.smtp_port, timeout=timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(channel.host, channel.smtp_port, timeout=timeout)
        with smtp:
            if channel.tls == "starttls":
                smtp.starttls(context=context)
            if channel.username is not None:
                smtp.login(channel.username, password or "")
            refused = smtp.send_message(message, channel.from_address, list(channel.to))
    except Exception as err:
        raise _smtp_error(err, timeout) from None
    if refused:
        logger.warning("e-mail channel %r: recipients refused: %s", channel.name, ", ".join(sorted(refused)))


def _smtp_error(err: Exception, timeout: float) -> ChannelError:
    """An SMTP failure as a ChannelError: 4xx and lost connections retryable, 5xx and TLS/login refusals not."""
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return ChannelError("every recipient was refused", retryable=False)
    if isinstance(err, smtplib.SMTPResponseException):
        reply = (
            err.smtp_error.decode("utf-8", "replace")
            if isinstance(err.smtp_error, bytes)
            else str(err.smtp_error)
        )
        reply = " ".join(reply.split())[:200]
        return ChannelError(f"SMTP {err.smtp_code} {reply}", retryable=400 <= err.smtp_code < 500)
    if isinstance(err, smtplib.SMTPNotSupportedError):
        return ChannelError(f"SMTP server does not support it: {err}", retryable=False)
    if isinstance(err, TimeoutError):
        return ChannelError(f"timed out after {timeout:g} s", retryable=True)
    if isinstance(err, ssl.SSLError):
        return ChannelError(f"TLS failed: {err.reason or type(err).__name__}", retryable=False)
    if isinstance(err, OSError | smtplib.SMTPException):
        return ChannelError(f"{type(err).__name__}: {err}", retryable=True)
    return ChannelError(f"{type(err).__name__}: {err}", retryable=True)
