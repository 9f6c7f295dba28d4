"""po_header_history, po_amendments and po_burn's amount in force, over three nightly ERP extracts and a
back-dated run (hand-worked)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import charge, make_project, po, query, run_flow, write_csv

pytestmark = pytest.mark.usefixtures("prefect_harness")

d = date


def _extract(tmp_path: Path, *pos: dict) -> None:
    write_csv(tmp_path / "erp" / "po_headers.csv", list(pos))


def test_three_extracts_make_versions_amendments_and_the_amount_in_force(tmp_path: Path) -> None:
    charges = {
        "a.csv": [charge("2024-09-10", Tags={"po": "PO-1"}, BilledCost="60.00", EffectiveCost="60.00")]
    }
    night_1 = [
        po("PO-1", total_amount="100.00", approved_at="2024-01-02"),
        po("PO-2", vendor_id="V-2", total_amount="50.00", approved_at="2024-01-02"),
    ]
    config = make_project(tmp_path, charges, night_1)
    run_flow(config, as_of=d(2024, 9, 10))
    # night 2: PO-1 raised to 150 with no new approval; PO-2 closed
    _extract(
        tmp_path,
        po("PO-1", total_amount="150.00", approved_at="2024-01-02"),
        po("PO-2", vendor_id="V-2", total_amount="50.00", approved_at="2024-01-02", status="closed"),
    )
    run_flow(config, as_of=d(2024, 9, 20))
    # night 3: PO-1 raised to 200, approved on Sep 25; PO-2 gone, re-issued as PO-3
    night_3 = [
        po("PO-1", total_amount="200.00", approved_at="2024-09-25"),
        po("PO-3", vendor_id="V-2", total_amount="50.00", approved_at="2024-09-28"),
    ]
    _extract(tmp_path, *night_3)
    outcome = run_flow(config, as_of=d(2024, 9, 30))
    published = outcome.published_path

    assert query(
        published,
        "select po_number, version, change_kind, changed_fields, in_force_from, in_force_to, is_current, "
        "total_amount, status from finops.po_header_history order by po_number, version",
    ) == [
        ("PO-1", 1, "new", [], None, d(2024, 9, 20), False, 100.0, "open"),
        ("PO-1", 2, "changed", ["total_amount"], d(2024, 9, 20), d(2024, 9, 30), False, 150.0, "open"),
        ("PO-1", 3, "changed", ["total_amount", "approved_at"], d(2024, 9, 30), None, True, 200.0, "open"),
        ("PO-2", 1, "new", [], None, d(2024, 9, 20), False, 50.0, "open"),
        (
            "PO-2",
            2,
            "changed",
            ["status", "erp_status"],
            d(2024, 9, 20),
            d(2024, 9, 30),
            False,
            50.0,
            "closed",
        ),
        ("PO-2", 3, "removed", [], d(2024, 9, 30), None, True, 50.0, "closed"),
        ("PO-3", 1, "new", [], None, None, True, 50.0, "open"),
    ]
    assert query(
        published,
        "select po_number, version, changed_on, old_total_amount, new_total_amount, amount_delta, old_status, "
        "new_status, approval_recorded, raised_without_approval from finops.po_amendments order by 1, 2",
    ) == [
        ("PO-1", 2, d(2024, 9, 20), 100.0, 150.0, 50.0, "open", "open", False, True),
        ("PO-1", 3, d(2024, 9, 30), 150.0, 200.0, 50.0, "open", "open", True, False),
        ("PO-2", 2, d(2024, 9, 20), 50.0, 50.0, 0.0, "open", "closed", False, False),
        ("PO-2", 3, d(2024, 9, 30), 50.0, 50.0, 0.0, "closed", "closed", False, False),
    ]
    # po_burn per as_of: 60.00 consumed against the amount in force that day
    assert query(
        published,
        "select as_of, committed_amount, committed_amount_version, committed_amount_unapproved, consumed_ratio "
        "from finops.po_burn where po_number = 'PO-1' order by as_of",
    ) == [
        (d(2024, 9, 10), 100.0, 1, False, 0.6),
        (d(2024, 9, 20), 150.0, 2, True, 0.4),
        (d(2024, 9, 30), 200.0, 3, False, 0.3),
    ]

    # a back-dated run reads the version in force then (100.00), and adds no version
    outcome = run_flow(config, as_of=d(2024, 9, 15))
    assert query(
        outcome.published_path,
        "select committed_amount, committed_amount_version, consumed_ratio from finops.po_burn "
        "where po_number = 'PO-1' and as_of = '2024-09-15'",
    ) == [(100.0, 1, 0.6)]
    assert query(outcome.published_path, "select count(*) from finops.po_header_history") == [(7,)]
