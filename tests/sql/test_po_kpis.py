"""po_kpis: procurement KPIs from the ERP's PO dates, by month and vendor (hand-worked)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _po(
    number: str, vendor: str, requested: str, approved: str | None, issued: str | None, **extra: str
) -> dict:
    return po(number, vendor_id=vendor, vendor_name=f"Vendor {vendor}", requested_at=requested,
              approved_at=approved, issued_at=issued, po_type=extra.pop("po_type", "standard"), **extra)  # fmt: skip


def test_approval_issue_times_emergency_rate_and_open_po_age(tmp_path: Path) -> None:
    pos = [
        _po("PO-A", "V-1", "2024-01-01", "2024-01-03", "2024-01-05"),
        _po("PO-B", "V-1", "2024-01-10", "2024-01-11", "2024-01-20", po_type="emergency"),
        _po("PO-C", "V-1", "2024-02-01", "2024-02-02", "2024-02-04", status="closed"),
        _po("PO-D", "V-2", "2024-01-15", "2024-01-15", "2024-01-16"),
    ]
    config = make_project(tmp_path, {"a.csv": [charge("2024-02-01")]}, pos)
    outcome = run_flow(config, as_of=date(2024, 3, 1))
    found = query(
        outcome.published_path,
        "select kpi_month, vendor_id, po_count, avg_approval_days, avg_issue_days, max_issue_days, "
        "emergency_po_count, emergency_po_rate, open_po_count, avg_open_po_age_days, max_open_po_age_days "
        "from finops.po_kpis order by 1, 2",
    )
    # by hand (2024 is a leap year): approval 2 and 1 days, issue 4 and 10; open since Jan 5 → 56 days, Jan 20 → 41;
    # PO-D approved the day it was requested, issued the next day, open since Jan 16 → 45 days
    assert found == [
        ("2024-01", "V-1", 2, 1.5, 7.0, 10, 1, 0.5, 2, 48.5, 56),
        ("2024-01", "V-2", 1, 0.0, 1.0, 1, 0, 0.0, 1, 45.0, 45),
        ("2024-02", "V-1", 1, 1.0, 3.0, 3, 0, 0.0, 0, None, None),
    ]
