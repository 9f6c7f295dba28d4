"""Reliable delivery: one digest per channel per call, retried with exponential backoff, never raising.

The lifecycle marks sent exactly the notifications of results with `ok=True`; everything else stays pending
in the outbox and travels again in the next run's digest. So a result is `ok` only once the channel accepted
the digest (HTTP 2xx, SMTP accepted the message), and a channel that is down, slow or misconfigured costs its
own digest a retry tomorrow, never the other channels' delivery or the night's run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from finrecon.alerts.channels import ChannelError, Sender, prepare, redact
from finrecon.alerts.digest import Digest, build_digest
from finrecon.alerts.model import DeliveryResult, Notification
from finrecon.models.config import AlertChannel, Config

logger = logging.getLogger("finrecon.alerts")


def deliver(
    notifications: list[Notification], config: Config, sleep: Callable[[float], None] = time.sleep
) -> list[DeliveryResult]:
    """Send each channel's notifications as one digest; one result per channel, in first-seen order."""
    by_channel: dict[str, list[Notification]] = {}
    for n in notifications:
        by_channel.setdefault(n.channel, []).append(n)
    channels = config.alerts.channels_by_name()
    results = []
    for name, items in by_channel.items():
        digest = build_digest(name, items)
        channel = channels.get(name)
        if channel is None:
            error = f"channel {name!r} is not configured; its notifications stay pending"
            results.append(_failed(digest, 0, error))
        else:
            results.append(deliver_digest(channel, digest, config, sleep))
    return results


def deliver_digest(
    channel: AlertChannel, digest: Digest, config: Config, sleep: Callable[[float], None] = time.sleep
) -> DeliveryResult:
    """One channel's digest: secrets resolved once, then up to `max_attempts` tries with backoff."""
    label = f"{channel.kind} channel {channel.name!r}"
    try:
        sender = prepare(channel, config)
    except ChannelError as err:  # a missing secret: no attempt can succeed until the setup is fixed
        return _failed(digest, 0, f"{label}: {err}")
    return _send_with_retries(channel, label, sender, digest, sleep)


def _send_with_retries(
    channel: AlertChannel, label: str, sender: Sender, digest: Digest, sleep: Callable[[float], None]
) -> DeliveryResult:
    error = ""
    for attempt in range(1, channel.max_attempts + 1):
        try:
            sender.send(digest)
        except ChannelError as err:
            error, retryable = redact(str(err), sender.secrets), err.retryable
        except Exception as err:  # a bug or an unforeseen failure must not lose the other channels' digests
            error, retryable = redact(f"{type(err).__name__}: {err}", sender.secrets), True
        else:
            logger.info(
                "%s: delivered %d notification(s) on attempt %d", label, len(digest.notifications), attempt
            )
            return DeliveryResult(channel.name, digest.notification_ids, ok=True, attempts=attempt)
        logger.warning("%s: attempt %d of %d failed: %s", label, attempt, channel.max_attempts, error)
        if not retryable:
            return _failed(digest, attempt, f"{label}: {error} (not retried)")
        if attempt < channel.max_attempts:
            sleep(channel.backoff_seconds * 2 ** (attempt - 1))
    return _failed(digest, channel.max_attempts, f"{label}: {error} (after {channel.max_attempts} attempts)")


def _failed(digest: Digest, attempts: int, error: str) -> DeliveryResult:
    return DeliveryResult(digest.channel, digest.notification_ids, ok=False, attempts=attempts, error=error)
