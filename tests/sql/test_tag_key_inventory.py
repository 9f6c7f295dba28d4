"""tag_key_inventory: every tag key with its spend, whether it is a PO key, and near misses (hand-worked)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_every_tag_key_is_listed_with_its_spend_and_near_miss_keys_are_flagged(tmp_path: Path) -> None:
    rows = [
        charge(
            "2024-09-01", EffectiveCost="2.00", BilledCost="3.00", Tags='{"PO-Number": "PO-1", "env": "prod"}'
        ),
        charge(
            "2024-09-02", EffectiveCost="1.00", BilledCost="1.00", Tags='{"po num": "PO-1", "env": "dev"}'
        ),
        charge(
            "2024-09-03",
            EffectiveCost="0.50",
            BilledCost="0.50",
            Tags='{"purchase-ord": "42", "env": "prod"}',
        ),
        charge("2024-09-04", EffectiveCost="4.00", BilledCost="4.00", Tags='{"user:po_number": "PO-1"}'),
        charge("2024-09-05", EffectiveCost="8.00", BilledCost="8.00", Tags=None),
        charge("2024-10-01", EffectiveCost="9.00", BilledCost="9.00", Tags='{"env": "late"}'),  # after as_of
    ]
    config = make_project(tmp_path, {"a.csv": rows}, [po("PO-1")])
    outcome = run_flow(config, as_of=date(2024, 9, 30))
    found = query(
        outcome.published_path,
        "select tag_key, is_po_key, looks_like_po_key, effective_cost, billed_cost, charge_count, distinct_values, "
        "sample_values from finops.tag_key_inventory order by tag_key",
    )
    # by hand: env on rows 1–3 (2 + 1 + 0.5, billed 3 + 1 + 0.5), values dev/prod; the PO keys per tags.po_keys
    # (po, po_number, purchase_order, po_id): PO-Number and user:po_number are; 'po num' and 'purchase-ord' not
    assert found == [
        ("PO-Number", True, False, 2.0, 3.0, 1, 1, ["PO-1"]),
        ("env", False, False, 3.5, 4.5, 3, 2, ["dev", "prod"]),
        ("po num", False, True, 1.0, 1.0, 1, 1, ["PO-1"]),
        ("purchase-ord", False, True, 0.5, 0.5, 1, 1, ["42"]),
        ("user:po_number", True, False, 4.0, 4.0, 1, 1, ["PO-1"]),
    ]
    # and the run summary (what `make run` prints) names the near misses, largest spend first
    assert [(r["tag_key"], r["effective_cost"]) for r in outcome.summary.near_miss_keys] == [
        ("po num", 1.0),
        ("purchase-ord", 0.5),
    ]
