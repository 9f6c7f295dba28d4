"""One channel's notifications of one delivery, as a digest: a headline with the counts, then sections.

Readers see what needs action first: newly fired alerts, then reminders of alerts still open, then resolved
ones, each section most severe first and then by alert key, so two runs with the same alerts read the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from finrecon.alerts.model import SEVERITY_ORDER, Notification

SECTIONS: tuple[tuple[str, str], ...] = (
    ("fired", "Fired"),
    ("reminder", "Reminders, still open"),
    ("resolved", "Resolved"),
)


@dataclass(frozen=True)
class Digest:
    """A channel's notifications in reading order, with the run they belong to."""

    channel: str
    run_id: str
    as_of: date
    notifications: tuple[Notification, ...]  # fired, then reminders, then resolved; most severe first in each

    def section(self, event: str) -> list[Notification]:
        """The notifications of one event kind, in digest order."""
        return [n for n in self.notifications if n.event == event]

    @property
    def notification_ids(self) -> tuple[str, ...]:
        return tuple(n.notification_id for n in self.notifications)

    def event_counts(self) -> dict[str, int]:
        """How many notifications of each event kind (every kind present, zero included)."""
        counts = Counter[str](n.event for n in self.notifications)
        return {event: counts[event] for event, _ in SECTIONS}

    def open_by_severity(self) -> dict[str, int]:
        """Alerts needing attention (fired or reminded) by severity, most severe first, zero included."""
        counts = Counter[str](n.severity for n in self.notifications if n.event != "resolved")
        return {severity: counts[severity] for severity in SEVERITY_ORDER}

    @property
    def headline(self) -> str:
        """e.g. "finrecon alerts 2024-09-30: 1 critical, 2 warning | 2 fired, 1 still open, 1 resolved"."""
        severities = ", ".join(f"{n} {s}" for s, n in self.open_by_severity().items() if n) or "nothing open"
        events = self.event_counts()
        return (
            f"finrecon alerts {self.as_of.isoformat()}: {severities} | {events['fired']} fired, "
            f"{events['reminder']} still open, {events['resolved']} resolved"
        )

    def text(self) -> str:
        """The plain-text digest (log, e-mail body): headline, then one block per non-empty section."""
        lines = [self.headline]
        for event, label in SECTIONS:
            items = self.section(event)
            if not items:
                continue
            lines += ["", f"{label.upper()} ({len(items)})"]
            for n in items:
                lines += [f"- [{n.severity.upper()}] {n.title}", f"  {n.message}", f"  {context_line(n)}"]
        return "\n".join(lines) + "\n"


def build_digest(channel: str, notifications: Sequence[Notification]) -> Digest:
    """The digest of one channel's notifications (pending ones from earlier runs included).

    The digest is dated by the newest notification's `as_of` (and that notification's run), since a retry of
    last night's pending alert travels in tonight's digest; each notification keeps its own run and date.
    """
    if not notifications:
        raise ValueError("a digest needs at least one notification")
    event_rank = {event: i for i, (event, _) in enumerate(SECTIONS)}
    ordered = sorted(
        notifications,
        key=lambda n: (event_rank[n.event], SEVERITY_ORDER[n.severity], n.alert_key, n.notification_id),
    )
    newest = max(notifications, key=lambda n: (n.as_of, n.run_id))
    return Digest(channel=channel, run_id=newest.run_id, as_of=newest.as_of, notifications=tuple(ordered))


def figure(value: float | None) -> str:
    """A measured value or threshold as a reader wants it: up to six significant digits, no float noise."""
    return "-" if value is None else f"{value:.6g}"


def context_line(n: Notification) -> str:
    """Rule, PO, vendor, scope, value, threshold and key of one notification, on one line."""
    parts = [f"rule {n.rule} ({n.rule_kind})"]
    if n.po_number:
        parts.append(f"PO {n.po_number}")
    if n.vendor_id:
        parts.append(f"vendor {n.vendor_id}")
    parts += [f"{k} {v}" for k, v in n.scope.items() if v is not None and k not in ("po_number", "vendor_id")]
    if n.value is not None:
        parts.append(f"value {figure(n.value)}")
    if n.threshold is not None:
        parts.append(f"threshold {figure(n.threshold)}")
    parts.append(f"key {n.alert_key}")
    return "; ".join(parts)
