"""The contract between alert evaluation (rules, lifecycle) and delivery (channels, digests).

Evaluation turns the published marts into `Finding`s (conditions that hold tonight), the lifecycle turns findings
into alert state and `Notification`s (one per alert event and channel, kept in an outbox until a channel accepts
it), and delivery sends each channel's pending notifications as one digest and reports a `DeliveryResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from finrecon.models.alert_rules import Severity

Event = Literal["fired", "reminder", "resolved"]

# Digests list the most severe first.
SEVERITY_ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    """A rule's condition that holds in tonight's published marts, for one scope.

    `alert_key` identifies the alert for deduplication: rule, scope (or PO), vendor and threshold, so the same
    condition on the next night is the same alert, and a higher threshold (80 % after 50 %) is a new one.
    """

    alert_key: str
    rule: str  # the configured rule's name
    rule_kind: str  # untagged_spend, po_burn, po_exhaustion, burn_acceleration, commitment_utilization, ...
    severity: Severity
    title: str  # one line, e.g. "PO-1001 crossed 80 % of its committed amount"
    message: str  # the detail a reader acts on, figures included
    value: float | None  # the measured figure (ratio or amount)
    threshold: float | None  # the limit it crossed
    scope: dict[str, str | None] = field(default_factory=dict)  # provider_name, billing_account_id, ...
    po_number: str | None = None
    vendor_id: str | None = None
    cost_center: str | None = None  # from the ERP PO header, for routing
    # the lower rungs of the same ladder that hold too (a PO's 50 % and 80 % under its 100 %): one alert at the
    # highest threshold crossed; open alerts of their keys are closed as `superseded`, without a notification
    supersedes: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class Notification:
    """One alert event to deliver on one channel; stays pending in the outbox until the channel accepts it."""

    notification_id: str
    channel: str  # a configured channel's name
    event: Event
    alert_key: str
    rule: str
    rule_kind: str
    severity: Severity
    title: str
    message: str
    value: float | None
    threshold: float | None
    scope: dict[str, str | None]
    po_number: str | None
    vendor_id: str | None
    run_id: str
    as_of: date


@dataclass(frozen=True)
class DeliveryResult:
    """What one channel did with its digest: accepted (`ok`) or not, after `attempts` tries."""

    channel: str
    notification_ids: tuple[str, ...]
    ok: bool
    attempts: int
    error: str | None = None  # never contains a secret (URLs and passwords are redacted)
