"""Which channels an alert goes to: every configured route that matches it, else the default channels.

Routes are additive (the FinOps team's route and a cost centre's route can both apply), so that adding a route
for one audience never takes alerts away from another; an alert no route matches still reaches
`default_channels` (by default the run's log), so nothing is silently dropped.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from finrecon.alerts.model import Finding
from finrecon.models.config import AlertRoute, Config


def route(finding: Finding, config: Config) -> list[str]:
    """The channel names for one finding, in config order, each once."""
    alerts = config.alerts
    matched = [r for r in alerts.routes if matches(r, finding)]
    names = [name for r in matched for name in r.channels] if matched else list(alerts.default_channels)
    return list(dict.fromkeys(names))


def matches(rule_route: AlertRoute, finding: Finding) -> bool:
    """True when every condition the route lists holds for the finding (an empty route matches everything)."""
    if rule_route.rules and finding.rule not in rule_route.rules:
        return False
    if rule_route.rule_kinds and finding.rule_kind not in rule_route.rule_kinds:
        return False
    if rule_route.severities and finding.severity not in rule_route.severities:
        return False
    return all(_attribute_matches(finding, key, wanted) for key, wanted in rule_route.match.items())


def attribute(finding: Finding, key: str) -> str | None:
    """An alert attribute a route can match: a field of the finding (cost_center, vendor_id, ...) or its scope."""
    if key in ("cost_center", "vendor_id", "po_number", "rule", "rule_kind", "severity", "alert_key"):
        value = getattr(finding, key)
        return None if value is None else str(value)
    return finding.scope.get(key)


def _attribute_matches(finding: Finding, key: str, wanted: str | list[str]) -> bool:
    # A missing attribute never matches: a cost-centre route must not catch alerts that have no cost centre.
    value = attribute(finding, key)
    if value is None:
        return False
    patterns = [wanted] if isinstance(wanted, str) else wanted
    return any(fnmatchcase(value, pattern) for pattern in patterns)
