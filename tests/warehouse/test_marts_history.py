"""The marts history: when a closed billing period is re-delivered, `billing_period_history` shows what the
published figures were before and what they are after; a night that changes nothing adds nothing; a failed
publication never becomes a "before"."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support import charge, make_project, po, query, run_flow, write_csv

from finrecon.report.summary import to_markdown
from finrecon.warehouse import publish

OTHER_ACCOUNT = "333333333333"
PURCHASE_ORDERS = [po("PO-1", valid_from="2025-01-01", valid_to="2025-12-31")]
AS_OF = date(2025, 2, 28)  # January is closed, February open

JANUARY = [
    charge("2025-01-05", ResourceId="j1", BilledCost="10.00", EffectiveCost="10.00", Tags={"po": "PO-1"}),
    charge("2025-01-06", ResourceId="j2", BilledCost="5.00", EffectiveCost="4.00"),
    # PO-9 is not in the ERP: invalid (unknown_po)
    charge("2025-01-07", ResourceId="j3", BilledCost="2.00", EffectiveCost="2.00", Tags={"po": "PO-9"},
           BillingAccountId=OTHER_ACCOUNT),
]  # fmt: skip
# The provider re-delivers January: j1 re-priced 10.00 -> 12.50, j4 added, j3 (the other account) withdrawn.
JANUARY_RESTATED = [
    charge("2025-01-05", ResourceId="j1", BilledCost="12.50", EffectiveCost="12.50", Tags={"po": "PO-1"}),
    charge("2025-01-06", ResourceId="j2", BilledCost="5.00", EffectiveCost="4.00"),
    charge("2025-01-20", ResourceId="j4", BilledCost="1.25", EffectiveCost="1.25", Tags={"po": "PO-1"}),
]
FEBRUARY = [
    charge("2025-02-03", ResourceId="f1", BilledCost="7.00", EffectiveCost="7.00", Tags={"po": "PO-1"}),
    charge("2025-02-04", ResourceId="f2", BilledCost="3.00", EffectiveCost="3.00"),
]

# One version, as (period, account, version, change_kind, period_closed, restated,
#   total before, after, delta, valid PO before, after, delta, invalid PO before, after, delta,
#   untagged before, after, delta, billed before, after, delta, charges before, after, delta)
VERSION_SQL = """
select billing_period, billing_account_id, version, change_kind, period_closed, restated,
       total_cost_before, total_cost_after, total_cost_delta,
       valid_po_cost_before, valid_po_cost_after, valid_po_cost_delta,
       invalid_po_cost_before, invalid_po_cost_after, invalid_po_cost_delta,
       untagged_cost_before, untagged_cost_after, untagged_cost_delta,
       total_billed_cost_before, total_billed_cost_after, total_billed_cost_delta,
       charge_count_before, charge_count_after, charge_count_delta
from billing_period_history
where run_id = ?
order by billing_period, billing_account_id
"""

# The first publication: every key is new, its "before" all zeros.
FIRST_VERSIONS = [
    # Jan 111: total 10.00 (j1) + 4.00 (j2) = 14.00; valid 10.00 (j1, PO-1); untagged 4.00 (j2);
    # billed 10.00 + 5.00 = 15.00; 2 charges
    ("2025-01", "111111111111", 1, "new", True, False,
     0.0, 14.0, 14.0, 0.0, 10.0, 10.0, 0.0, 0.0, 0.0, 0.0, 4.0, 4.0, 0.0, 15.0, 15.0, 0, 2, 2),
    # Jan 333: j3 alone, 2.00, invalid (PO-9 unknown); billed 2.00; 1 charge
    ("2025-01", OTHER_ACCOUNT, 1, "new", True, False,
     0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 0, 1, 1),
    # Feb 111 (open at 2025-02-28): 7.00 (f1, valid) + 3.00 (f2, untagged) = 10.00; billed 10.00; 2 charges
    ("2025-02", "111111111111", 1, "new", False, False,
     0.0, 10.0, 10.0, 0.0, 7.0, 7.0, 0.0, 0.0, 0.0, 0.0, 3.0, 3.0, 0.0, 10.0, 10.0, 0, 2, 2),
]  # fmt: skip

# After the re-delivery: January's two keys, before (as first published) and after; February untouched.
RESTATED_VERSIONS = [
    # Jan 111: total 12.50 (j1) + 4.00 (j2) + 1.25 (j4) = 17.75, Δ 17.75 - 14.00 = 3.75;
    # valid 12.50 + 1.25 = 13.75, Δ 3.75; untagged 4.00 unchanged; billed 12.50 + 5.00 + 1.25 = 18.75,
    # Δ 18.75 - 15.00 = 3.75; charges 2 -> 3
    ("2025-01", "111111111111", 2, "changed", True, True,
     14.0, 17.75, 3.75, 10.0, 13.75, 3.75, 0.0, 0.0, 0.0, 4.0, 4.0, 0.0, 15.0, 18.75, 3.75, 2, 3, 1),
    # Jan 333: j3 withdrawn, every figure to 0 (invalid 2.00 -> 0, billed 2.00 -> 0, 1 charge -> 0)
    ("2025-01", OTHER_ACCOUNT, 2, "removed", True, True,
     2.0, 0.0, -2.0, 0.0, 0.0, 0.0, 2.0, 0.0, -2.0, 0.0, 0.0, 0.0, 2.0, 0.0, -2.0, 1, 0, -1),
]  # fmt: skip

CURRENT_TOTALS_SQL = """
select billing_period, billing_account_id, total_cost, valid_po_cost, invalid_po_cost, untagged_cost,
       total_billed_cost, charge_count
from billing_period_totals
order by billing_period, billing_account_id
"""


def history(database: Path) -> list[tuple[Any, ...]]:
    """The published history without what differs from run to run (run ids and timestamps)."""
    return query(
        database,
        "select * exclude (run_id, published_at) from billing_period_history "
        "order by billing_period, billing_account_id, version",
    )


def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, {"jan.csv": JANUARY, "feb.csv": FEBRUARY}, PURCHASE_ORDERS)


@pytest.mark.usefixtures("prefect_harness")
def test_redelivered_closed_month_shows_before_and_after(tmp_path: Path) -> None:
    config = project(tmp_path)
    first = run_flow(config, as_of=AS_OF)
    assert query(first.published_path, VERSION_SQL, [first.run_id]) == FIRST_VERSIONS
    assert first.summary.restated_periods == []  # a first publication restates nothing

    write_csv(tmp_path / "focus" / "jan.csv", JANUARY_RESTATED)  # new bytes: re-landed
    second = run_flow(config, as_of=AS_OF)  # the same as_of: po_burn replaces that date, the history does not
    db = second.published_path
    assert query(db, VERSION_SQL, [second.run_id]) == RESTATED_VERSIONS
    assert query(db, VERSION_SQL, [first.run_id]) == FIRST_VERSIONS  # the "before" is still there
    assert query(db, "select count(*) from billing_period_history") == [(5,)]  # 3 first + 2 restated, no Feb
    # The current figures: Jan 111 as restated (17.75), Jan 333 gone, Feb as first published (10.00)
    assert query(db, CURRENT_TOTALS_SQL) == [
        ("2025-01", "111111111111", 17.75, 13.75, 0.0, 4.0, 18.75, 3),
        ("2025-02", "111111111111", 10.0, 7.0, 0.0, 3.0, 10.0, 2),
    ]
    # each key's latest version, unless removed, is what billing_period_totals publishes now
    latest_versions = query(
        db,
        "select billing_period, billing_account_id, total_cost_after, valid_po_cost_after, invalid_po_cost_after, "
        "untagged_cost_after, total_billed_cost_after, charge_count_after from billing_period_history "
        "qualify version = max(version) over (partition by billing_period, billing_account_id) "
        "and change_kind <> 'removed' order by 1, 2",
    )
    assert latest_versions == query(db, CURRENT_TOTALS_SQL)
    # The summary lists both January keys: 14.00 -> 17.75 and 2.00 -> 0.00
    restated = [
        (
            r["billing_period"],
            r["billing_account_id"],
            r["change_kind"],
            r["total_cost_before"],
            r["total_cost_after"],
        )
        for r in second.summary.restated_periods
    ]
    assert restated == [
        ("2025-01", "111111111111", "changed", 14.0, 17.75),
        ("2025-01", OTHER_ACCOUNT, "removed", 2.0, 0.0),
    ]
    markdown = to_markdown(second.summary)
    assert "## Restated periods" in markdown
    assert "- 2025-01 AWS 111111111111 (changed): 14.00 → 17.75 USD (Δ 3.75)" in markdown


@pytest.mark.usefixtures("prefect_harness")
def test_a_night_with_nothing_new_adds_nothing(tmp_path: Path) -> None:
    config = project(tmp_path)
    run_flow(config, as_of=AS_OF)
    write_csv(tmp_path / "focus" / "jan.csv", JANUARY_RESTATED)
    restated = run_flow(config, as_of=AS_OF)
    tables = history(restated.published_path), query(restated.published_path, CURRENT_TOTALS_SQL)

    # The same night again: nothing to do, the publication and its history stand as they were.
    again = run_flow(config, as_of=AS_OF)
    assert again.unchanged
    assert (history(again.published_path), query(again.published_path, CURRENT_TOTALS_SQL)) == tables

    # A new as_of is a rebuild, but no billing period's figures moved: still the 5 versions, none new.
    later = run_flow(config, as_of=date(2025, 3, 1))
    assert not later.unchanged
    assert (history(later.published_path), query(later.published_path, CURRENT_TOTALS_SQL)) == tables
    assert later.summary.restated_periods == []
    state = tmp_path / "out" / "state.duckdb"
    assert query(state, "select count(*) from billing_period_history where run_id = ?", [later.run_id]) == [
        (0,)
    ]


@pytest.mark.usefixtures("prefect_harness")
def test_a_failed_publication_is_never_the_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = project(tmp_path)
    first = run_flow(config, as_of=AS_OF)
    published_bytes = first.published_path.read_bytes()

    def disk_full(*args: object) -> Path:
        raise OSError("disk full")

    write_csv(tmp_path / "focus" / "jan.csv", JANUARY_RESTATED)
    with monkeypatch.context() as patched:
        patched.setattr(publish, "swap_in", disk_full)
        with pytest.raises(OSError, match="disk full"):
            run_flow(config, as_of=AS_OF)
    state = tmp_path / "out" / "state.duckdb"
    # the state file was written first (the 2 January versions), the publication was not touched
    assert query(state, "select count(*) from billing_period_history") == [(5,)]
    assert first.published_path.read_bytes() == published_bytes

    # The next night publishes what the failed run landed: its "before" is what analysts last saw (run 1), the
    # failed run's versions are gone, and the re-delivery counts as a restatement though an earlier run landed it.
    retried = run_flow(config, as_of=AS_OF)
    assert query(retried.published_path, VERSION_SQL, [retried.run_id]) == RESTATED_VERSIONS
    assert query(state, "select count(*) from billing_period_history") == [(5,)]
    assert query(retried.published_path, "select count(distinct run_id) from billing_period_history") == [
        (2,)
    ]

    # The other account comes back in a later delivery: a new version from zero, not a change of the removed one.
    write_csv(tmp_path / "focus" / "jan.csv", [*JANUARY_RESTATED, JANUARY[2]])
    back = run_flow(config, as_of=AS_OF)
    assert query(back.published_path, VERSION_SQL, [back.run_id]) == [
        # Jan 333: j3 again, 0 -> 2.00 invalid, billed 0 -> 2.00, 0 -> 1 charge; version 3 after the removal
        ("2025-01", OTHER_ACCOUNT, 3, "new", True, True,
         0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 0, 1, 1),
    ]  # fmt: skip
    # listed in the summary: a closed period changed by a re-delivery, though the key is new
    assert [r["change_kind"] for r in back.summary.restated_periods] == ["new"]
