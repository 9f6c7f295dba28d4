"""The alert rules a config may list (`[[alerts.rules]]`): each kind's fields and defaults.

A contract of the config, so it lives with it; `finrecon/alerts/rules.py` evaluates each kind against the
published marts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Severity = Literal["critical", "warning", "info"]

ScopeColumn = Literal["provider_name", "billing_account_id", "sub_account_id", "service_name"]


class _Rule(BaseModel):
    """Fields every rule has: its name (default: its kind) and a severity override."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    severity: Severity | None = None

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name"):
            kind = data.get("kind") or cls.model_fields["kind"].default
            return {**data, "name": kind}
        return data


class UntaggedSpendRule(_Rule):
    """Spend without a valid PO (untagged, and invalid-PO unless `include_invalid = false`) per scope, summed
    over the trailing `window_days` up to as_of: its share of the scope's cost, and optionally its amount."""

    kind: Literal["untagged_spend"] = "untagged_spend"
    scope: list[ScopeColumn] = ["provider_name", "billing_account_id"]
    window_days: int = Field(default=30, ge=1)
    include_invalid: bool = True
    ratio_max: float | None = Field(default=None, ge=0, le=1)  # None: alerts.untagged_ratio_max
    min_amount: float = Field(default=0.0, ge=0)  # the ratio alert needs at least this much untagged spend
    amount_max: float | None = Field(default=None, gt=0)  # also alert on the amount alone

    @field_validator("scope")
    @classmethod
    def _non_empty(cls, columns: list[ScopeColumn]) -> list[ScopeColumn]:
        if not columns or len(set(columns)) != len(columns):
            raise ValueError("must list distinct scope columns")
        return columns


class PoBurnRule(_Rule):
    """A PO's consumed_ratio (po_burn) reached a threshold: one alert per threshold reached."""

    kind: Literal["po_burn"] = "po_burn"
    thresholds: list[float] | None = None  # None: alerts.burn_thresholds
    critical_from: float = 1.0  # a threshold at or above this is critical
    warning_from: float = 0.8  # ... else at or above this a warning, else info

    @field_validator("thresholds")
    @classmethod
    def _positive(cls, values: list[float] | None) -> list[float] | None:
        if values is not None and (not values or any(v <= 0 for v in values)):
            raise ValueError("must be a non-empty list of positive ratios")
        return None if values is None else sorted(set(values))

    def severity_of(self, threshold: float) -> Severity:
        if self.severity:
            return self.severity
        if threshold >= self.critical_from:
            return "critical"
        return "warning" if threshold >= self.warning_from else "info"


class PoExhaustionRule(_Rule):
    """A PO's projected exhaustion date (po_burn) falls on or before its valid_to, or within `within_days`."""

    kind: Literal["po_exhaustion"] = "po_exhaustion"
    within_days: int | None = Field(default=None, ge=0)  # None: before valid_to


class BurnAccelerationRule(_Rule):
    """A PO's daily burn over the short window is `factor` times its daily burn over the long window or more
    (po_consumption_daily). POs younger than the long window (first charge later than its first day) are not
    compared: their long average would be diluted by days before they started."""

    kind: Literal["burn_acceleration"] = "burn_acceleration"
    short_days: int = Field(default=7, ge=1)
    long_days: int = Field(default=30, ge=2)
    factor: float = Field(default=1.5, gt=0)
    min_amount: float = Field(default=0.0, ge=0)  # short-window consumption needed to alert

    @model_validator(mode="after")
    def _short_within_long(self) -> BurnAccelerationRule:
        if self.short_days >= self.long_days:
            raise ValueError("short_days must be smaller than long_days")
        return self


class CommitmentUtilizationRule(_Rule):
    """A commitment's cost utilisation in the as_of billing month (commitment_utilization) is below `floor`."""

    kind: Literal["commitment_utilization"] = "commitment_utilization"
    floor: float = Field(default=0.8, gt=0, le=1)
    min_unused_cost: float = Field(default=0.0, ge=0)


class InvoiceOverPoRule(_Rule):
    """An invoice brought the invoiced-to-date above its PO total (invoice_match two_way `over_po`)."""

    kind: Literal["invoice_over_po"] = "invoice_over_po"


class ValidationFailuresRule(_Rule):
    """An input file of the publishing run quarantined `max_ratio` of its rows or more (a failed file: 100 %)."""

    kind: Literal["validation_failures"] = "validation_failures"
    max_ratio: float = Field(default=0.01, gt=0, le=1)


UnauthorisedReason = Literal["cancelled", "closed", "expired", "not_yet_valid", "unknown_po", "over_amount"]


class UnauthorisedSpendRule(_Rule):
    """Spend outside a valid PO (unauthorised_spend) per PO, reason and currency reached `min_amount`: charges on
    a cancelled, closed, expired, not-yet-valid or unknown PO, or consumption beyond a PO's amount. Critical for
    `over_amount`, else a warning."""

    kind: Literal["unauthorised_spend"] = "unauthorised_spend"
    reasons: list[UnauthorisedReason] = [
        "cancelled",
        "closed",
        "expired",
        "not_yet_valid",
        "unknown_po",
        "over_amount",
    ]
    min_amount: float = Field(default=0.0, ge=0)  # in the row's currency; 0: any spend at all

    @field_validator("reasons")
    @classmethod
    def _some_reason(cls, reasons: list[UnauthorisedReason]) -> list[UnauthorisedReason]:
        if not reasons:
            raise ValueError("must list at least one reason")
        return reasons


class TagDriftRule(_Rule):
    """A resource's PO allocation drifted (tag_drift: lost, changed or became invalid) and its spend since
    reached `min_amount` (in its billing currency)."""

    kind: Literal["tag_drift"] = "tag_drift"
    min_amount: float = Field(default=0.0, ge=0)


class DuplicatePoRule(_Rule):
    """Two POs may be one purchase raised twice (duplicate_po_candidates; tolerances: `[erp.duplicates]`)."""

    kind: Literal["duplicate_po"] = "duplicate_po"


class DuplicateInvoiceRule(_Rule):
    """Two supplier invoices may be one bill paid twice (duplicate_invoice_candidates)."""

    kind: Literal["duplicate_invoice"] = "duplicate_invoice"


AlertRule = Annotated[
    UntaggedSpendRule
    | PoBurnRule
    | PoExhaustionRule
    | BurnAccelerationRule
    | CommitmentUtilizationRule
    | InvoiceOverPoRule
    | ValidationFailuresRule
    | UnauthorisedSpendRule
    | DuplicatePoRule
    | DuplicateInvoiceRule
    | TagDriftRule,
    Field(discriminator="kind"),
]


def default_rules() -> list[AlertRule]:
    """One rule of every kind with its defaults: what a config without `[[alerts.rules]]` watches."""
    return [
        UntaggedSpendRule(),
        PoBurnRule(),
        PoExhaustionRule(),
        BurnAccelerationRule(),
        CommitmentUtilizationRule(),
        InvoiceOverPoRule(),
        ValidationFailuresRule(),
        UnauthorisedSpendRule(),
        DuplicatePoRule(),
        DuplicateInvoiceRule(),
        TagDriftRule(),
    ]
