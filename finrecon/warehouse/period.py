"""`finrecon run --period YYYY-MM`: reprocess one billing period by re-landing every input of it, changed or not.

Which inputs belong to a period depends on the source: an AWS export's BILLING_PERIOD, a BigQuery invoice month,
an Azure export's or query's month, and for FOCUS files every file with rows landed in that billing period (the
lake's parts know their period). An input that already needs landing stays as planned; a remote period that is
no longer listed cannot be fetched again and stands. The rebuild and publication that follow are the usual ones.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from finrecon.models.config import FocusFilesSource

if TYPE_CHECKING:  # the CLI checks --period without importing the warehouse
    from finrecon.warehouse.run import PlannedFile
    from finrecon.warehouse.state import State

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def check_period(text: str) -> str:
    """`YYYY-MM` (a billing period), else ValueError saying what is expected."""
    value = text.strip()
    if not _PERIOD.match(value):
        raise ValueError(f"--period: {text!r} is not a billing period; write it as YYYY-MM, e.g. 2026-09")
    return value


def _in_period(planned: PlannedFile, period: str, landed_in_period: set[str]) -> bool:
    if planned.problem is not None:
        return False
    if planned.manifest is not None:  # AWS
        return planned.manifest.period == period
    if planned.invoice_month is not None:  # GCP, YYYYMM
        return planned.invoice_month == period.replace("-", "")
    if planned.azure_month is not None:
        return planned.azure_month.period == period
    if planned.query_month is not None:
        return f"{planned.query_month:%Y-%m}" == period
    if isinstance(planned.source, FocusFilesSource):
        return planned.file_key in landed_in_period
    return False  # a remote period standing without a listing: nothing to fetch it from


def rerun_period(state: State, planned: list[PlannedFile], period: str) -> tuple[list[PlannedFile], int]:
    """The plan with every input of `period` marked for landing; and how many inputs belong to the period."""
    check_period(period)
    landed = {
        str(row["file_key"])
        for row in state.rows("select distinct file_key from lake_parts where billing_period = ?", [period])
    }
    marked = [p for p in planned if _in_period(p, period, landed)]
    keys = {p.file_key for p in marked}
    return [replace(p, needs_landing=True) if p.file_key in keys else p for p in planned], len(marked)
