"""The published marts (DESIGN §4–§5) on tiny hand-built datasets with hand-computed expectations.

Each dataset is run once through the real nightly flow (module-scoped fixtures) and read by several tests.
Every expected number is worked out by hand in a comment next to it; none is copied from the code's output.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.e2e

EC2 = "Amazon Elastic Compute Cloud"
S3 = "Amazon Simple Storage Service"
LAMBDA = "AWS Lambda"
RDS = "Amazon Relational Database Service"
SP_SERVICE = "AWS Savings Plans"
ACCOUNT = "111111111111"
OTHER_ACCOUNT = "999999999999"
SUB = "222222222222"
OTHER_SUB = "333333333333"


@dataclass(frozen=True)
class Published:
    path: Path
    as_of: date


def _published(config: Path, as_of: date) -> Published:
    outcome = run_flow(config, as_of=as_of)
    assert outcome.failed_files == []
    # Nothing quarantined: every hand-built row reached the marts (else the expectations would be vacuous).
    assert query(outcome.published_path, "select count(*) from quarantine") == [(0,)]
    return Published(outcome.published_path, as_of)


def _rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cursor = con.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------------------------
# tag_coverage and untagged_top: one dataset, as_of 2024-09-03
# ---------------------------------------------------------------------------------------------------------------

COVERAGE_AS_OF = date(2024, 9, 3)


def _coverage_charges() -> list[dict[str, Any]]:
    day1, day2 = "2024-09-01", "2024-09-02"
    return [
        # day 1, EC2, USD, sub 222: valid 2.50 + 1.25, invalid (unknown PO) 0.75, untagged 1.00 + 0.50
        charge(day1, EffectiveCost="2.50", BilledCost="3.00", ResourceId="i-a", Tags={"po": "PO-1001"}),
        charge(day1, EffectiveCost="1.25", BilledCost="1.30", ResourceId="i-a", Tags={"po_number": "1001"}),
        charge(
            day1,
            EffectiveCost="0.75",
            BilledCost="0.80",
            ResourceId="i-b",
            Tags={"po": "PO-9999", "env": "prod"},
        ),
        charge(day1, EffectiveCost="1.00", BilledCost="1.10", ResourceId="i-c", Tags={"env": "dev"}),
        charge(day1, EffectiveCost="0.50", BilledCost="0.55", ResourceId="i-c", Tags=None),
        # day 1, EC2, EUR (another billing currency: its own row)
        charge(day1, EffectiveCost="0.20", BilledCost="0.20", BillingCurrency="EUR", ResourceId="i-f"),
        # day 1, EC2, USD, another sub-account (its own row)
        charge(day1, EffectiveCost="0.30", BilledCost="0.30", SubAccountId=OTHER_SUB, ResourceId="i-e"),
        # day 1, S3: valid 0.40, untagged 0.60 with no resource id
        charge(
            day1,
            ServiceName=S3,
            EffectiveCost="0.40",
            BilledCost="0.40",
            ResourceId="bucket-1",
            Tags={"po": "PO-1001"},
        ),
        # BilledCost 5.00 ≫ EffectiveCost 0.60: ranking by BilledCost would put this row first
        charge(day1, ServiceName=S3, EffectiveCost="0.60", BilledCost="5.00", ResourceId=None),
        # day 2, EC2: invalid (cancelled PO) 2.00, untagged 0.10 on i-b (which also has an invalid charge)
        charge(day2, EffectiveCost="2.00", BilledCost="2.00", ResourceId="i-d", Tags={"po": "PO-2002"}),
        charge(day2, EffectiveCost="0.10", BilledCost="0.10", ResourceId="i-b", Tags={"team": "x"}),
        # day 2, S3: valid usage 1.00 and a valid credit −1.00: total 0
        charge(
            day2,
            ServiceName=S3,
            EffectiveCost="1.00",
            BilledCost="1.00",
            ResourceId="bucket-1",
            Tags={"po": "PO-1001"},
        ),
        charge(
            day2,
            ServiceName=S3,
            ChargeCategory="Credit",
            EffectiveCost="-1.00",
            BilledCost="-1.00",
            ResourceId="bucket-1",
            Tags={"po": "PO-1001"},
        ),
        # day 4 (after as_of): excluded everywhere
        charge("2024-09-04", EffectiveCost="100.00", BilledCost="100.00", ResourceId="i-late"),
        charge(
            "2024-09-04", EffectiveCost="50.00", BilledCost="50.00", ResourceId="i-a", Tags={"po": "PO-1001"}
        ),
    ]


def _coverage_pos() -> list[dict[str, Any]]:
    return [po("PO-1001"), po("PO-2002", status="cancelled")]


@pytest.fixture(scope="module")
def coverage_db(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Published:
    root = tmp_path_factory.mktemp("coverage")
    config = make_project(root, {"aws.csv": _coverage_charges()}, _coverage_pos())
    return _published(config, COVERAGE_AS_OF)


@pytest.fixture(scope="module")
def untagged_top2_db(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Published:
    root = tmp_path_factory.mktemp("untagged_top2")
    config = make_project(
        root, {"aws.csv": _coverage_charges()}, _coverage_pos(), extra_toml="[report]\nuntagged_top_n = 2"
    )
    return _published(config, COVERAGE_AS_OF)


def _coverage_by_grain(db: Published) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows = _rows(
        db.path,
        "select * from tag_coverage order by charge_date, sub_account_id, service_name, billing_currency",
    )
    by_grain: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (
            row["charge_date"],
            row["provider_name"],
            row["billing_account_id"],
            row["sub_account_id"],
            row["service_name"],
            row["billing_currency"],
        )
        assert key not in by_grain, f"duplicate grain {key}"
        by_grain[key] = row
    return by_grain


D1, D2 = date(2024, 9, 1), date(2024, 9, 2)
COVERAGE_EXPECTED: dict[tuple[Any, ...], tuple[float, float, float, float, float | None]] = {
    # key: (total, valid, invalid, untagged, coverage_ratio)
    # 2.50 + 1.25 + 0.75 + 1.00 + 0.50 = 6.00; valid 2.50 + 1.25 = 3.75; invalid 0.75; untagged 1.00 + 0.50 = 1.50;
    # coverage 3.75 / 6.00 = 0.625
    (D1, "AWS", ACCOUNT, SUB, EC2, "USD"): (6.00, 3.75, 0.75, 1.50, 0.625),
    # one untagged 0.20 EUR charge: coverage 0 / 0.20 = 0
    (D1, "AWS", ACCOUNT, SUB, EC2, "EUR"): (0.20, 0.0, 0.0, 0.20, 0.0),
    # 0.40 + 0.60 = 1.00; coverage 0.40 / 1.00 = 0.4
    (D1, "AWS", ACCOUNT, SUB, S3, "USD"): (1.00, 0.40, 0.0, 0.60, 0.4),
    # one untagged 0.30 charge in sub-account 333
    (D1, "AWS", ACCOUNT, OTHER_SUB, EC2, "USD"): (0.30, 0.0, 0.0, 0.30, 0.0),
    # cancelled PO 2.00 (invalid) + untagged 0.10 = 2.10; coverage 0 / 2.10 = 0
    (D2, "AWS", ACCOUNT, SUB, EC2, "USD"): (2.10, 0.0, 2.00, 0.10, 0.0),
    # 1.00 − 1.00 = 0 total: coverage NULL
    (D2, "AWS", ACCOUNT, SUB, S3, "USD"): (0.0, 0.0, 0.0, 0.0, None),
}


def test_tag_coverage_has_exactly_the_expected_grains(coverage_db: Published) -> None:
    # 6 grains on days 1–2; the day-4 charges (after as_of 2024-09-03) make no row.
    assert set(_coverage_by_grain(coverage_db)) == set(COVERAGE_EXPECTED)


@pytest.mark.parametrize("key", list(COVERAGE_EXPECTED), ids=lambda k: f"{k[0]}-{k[3]}-{k[4][:10]}-{k[5]}")
def test_tag_coverage_costs_and_ratio(coverage_db: Published, key: tuple[Any, ...]) -> None:
    row = _coverage_by_grain(coverage_db)[key]
    total, valid, invalid, untagged, ratio = COVERAGE_EXPECTED[key]
    assert row["total_cost"] == pytest.approx(total)
    assert row["valid_po_cost"] == pytest.approx(valid)
    assert row["invalid_po_cost"] == pytest.approx(invalid)
    assert row["untagged_cost"] == pytest.approx(untagged)
    if ratio is None:
        assert row["coverage_ratio"] is None
    else:
        assert row["coverage_ratio"] == pytest.approx(ratio)
    # the three buckets partition the total
    assert row["valid_po_cost"] + row["invalid_po_cost"] + row["untagged_cost"] == pytest.approx(
        row["total_cost"]
    )


def test_tag_coverage_totals_exclude_charges_after_as_of(coverage_db: Published) -> None:
    # 6.00 + 0.20 + 1.00 + 0.30 + 2.10 + 0 = 9.60 (the 100.00 and 50.00 on 2024-09-04 are after as_of)
    [(total, latest)] = query(coverage_db.path, "select sum(total_cost), max(charge_date) from tag_coverage")
    assert total == pytest.approx(9.60)
    assert latest == D2


# untagged_top, default N (100): every untagged/invalid resource × status × reason up to as_of
UNTAGGED_EXPECTED = [
    # (rank, resource_id, po_status, po_reason or None when untagged, Σ EffectiveCost, tag_keys)
    (1, "i-d", "invalid", "cancelled", 2.00, ["po"]),
    (2, "i-c", "untagged", None, 1.00 + 0.50, ["env"]),  # 1.50; one charge with {"env"}, one with no tags
    (3, "i-b", "invalid", "unknown_po", 0.75, ["env", "po"]),
    (4, "(no resource id)", "untagged", None, 0.60, []),  # the S3 charge without ResourceId
    (5, "i-e", "untagged", None, 0.30, []),
    (6, "i-f", "untagged", None, 0.20, []),
    (7, "i-b", "untagged", None, 0.10, ["team"]),  # same resource as rank 3, other status: its own row
]


def test_untagged_top_ranks_untagged_and_invalid_by_effective_cost(coverage_db: Published) -> None:
    rows = _rows(coverage_db.path, "select * from untagged_top order by rank")
    got = [(r["rank"], r["resource_id"], r["po_status"], r["effective_cost"]) for r in rows]
    expected = [
        (rank, res, status, pytest.approx(cost)) for rank, res, status, _, cost, _ in UNTAGGED_EXPECTED
    ]
    assert got == expected
    # valid charges (i-a, bucket-1) and the after-as_of charge (i-late) never appear
    assert {r["resource_id"] for r in rows}.isdisjoint({"i-a", "bucket-1", "i-late"})


def test_untagged_top_reasons_and_tag_keys(coverage_db: Published) -> None:
    rows = _rows(coverage_db.path, "select * from untagged_top order by rank")
    assert len(rows) == len(UNTAGGED_EXPECTED)
    for row, (rank, resource, status, reason, _, keys) in zip(rows, UNTAGGED_EXPECTED, strict=True):
        assert (row["rank"], row["resource_id"], row["po_status"]) == (rank, resource, status)
        if reason is not None:
            assert row["po_reason"] == reason
        assert sorted(row["tag_keys"] or []) == keys
    # one row per resource × po_status × po_reason
    keys_seen = [(r["resource_id"], r["po_status"], r["po_reason"]) for r in rows]
    assert len(keys_seen) == len(set(keys_seen))


def test_untagged_top_n_limits_rows(untagged_top2_db: Published) -> None:
    rows = query(
        untagged_top2_db.path, "select rank, resource_id, po_status, effective_cost from untagged_top"
    )
    # untagged_top_n = 2: the two largest, i-d (2.00) then i-c (1.00 + 0.50 = 1.50)
    assert sorted(rows) == [
        (1, "i-d", "invalid", pytest.approx(2.00)),
        (2, "i-c", "untagged", pytest.approx(1.50)),
    ]


# ---------------------------------------------------------------------------------------------------------------
# po_burn: one dataset, as_of 2024-06-30 (window 2024-06-01 … 2024-06-30), then 2024-06-15 and 2024-06-30 again
# ---------------------------------------------------------------------------------------------------------------

BURN_AS_OF = date(2024, 6, 30)
BURN_EARLIER_AS_OF = date(2024, 6, 15)


def _burn_charge(day: str, po_number: str, billed: str, **values: Any) -> dict[str, Any]:
    # EffectiveCost 0.01 everywhere: po_burn must sum BilledCost, so a sum of EffectiveCost would show.
    return charge(day, BilledCost=billed, EffectiveCost="0.01", Tags={"po": po_number}, **values)


def _burn_charges() -> list[dict[str, Any]]:
    return [
        # PO-1001 (USD 1000, valid 2024-05-01 … 2024-12-31)
        _burn_charge("2024-04-30", "PO-1001", "1000.00"),  # before valid_from: invalid, not counted
        _burn_charge("2024-05-31", "PO-1001", "300.00"),  # as_of − 30: consumed, not in the window
        _burn_charge("2024-06-01", "PO-1001", "150.00"),  # as_of − 29: in the window
        _burn_charge("2024-06-30", "PO-1001", "10.00"),  # on as_of: in the window
        _burn_charge("2024-07-01", "PO-1001", "500.00"),  # after as_of: not counted
        # PO-1002 (USD 200, valid to 2024-06-15)
        _burn_charge("2024-05-10", "PO-1002", "40.00"),
        _burn_charge("2024-06-10", "PO-1002", "60.00"),
        _burn_charge("2024-06-20", "PO-1002", "80.00"),  # after valid_to: expired, not counted
        # PO-1003 (USD 100): 85 long ago
        _burn_charge("2024-03-01", "PO-1003", "85.00"),
        # PO-1004 (USD 100): exactly 100 the day before as_of
        _burn_charge("2024-06-29", "PO-1004", "100.00"),
        # PO-1005 (EUR 1000), charges billed in USD
        _burn_charge("2024-06-05", "PO-1005", "100.00"),
        _burn_charge("2024-06-10", "PO-1005", "40.00"),
        _burn_charge("2024-06-19", "PO-1005", "16.00"),
        _burn_charge("2024-06-20", "PO-1005", "10.00"),
        # PO-1006 (GBP 500), charges billed in USD; the only USD/GBP rate is dated 2024-06-20
        _burn_charge("2024-06-15", "PO-1006", "50.00"),
        _burn_charge("2024-06-25", "PO-1006", "50.00"),
        # PO-1007: no charges
        # PO-1008 (cancelled): its charge is invalid
        _burn_charge("2024-06-15", "PO-1008", "70.00"),
    ]


BURN_POS = [
    po("PO-1001", total_amount="1000.00", valid_from="2024-05-01"),
    po("PO-1002", total_amount="200.00", valid_to="2024-06-15"),
    po("PO-1003", total_amount="100.00"),
    po("PO-1004", total_amount="100.00"),
    po("PO-1005", total_amount="1000.00", currency="EUR", vendor_name="Euro Cloud GmbH"),
    po("PO-1006", total_amount="500.00", currency="GBP"),
    po("PO-1007", total_amount="300.00"),
    po("PO-1008", total_amount="100.00", status="cancelled"),
]

BURN_FX = [
    # only EUR→USD is given on 06-01 and 06-10: USD→EUR is the inverse (1 / 1.25 = 0.8, 1 / 1.6 = 0.625)
    {"rate_date": "2024-06-01", "from_currency": "EUR", "to_currency": "USD", "rate": "1.25"},
    {"rate_date": "2024-06-10", "from_currency": "EUR", "to_currency": "USD", "rate": "1.6"},
    # on 06-20 both directions are given (deliberately not inverses): the direct USD→EUR 0.4 is used
    {"rate_date": "2024-06-20", "from_currency": "EUR", "to_currency": "USD", "rate": "2.0"},
    {"rate_date": "2024-06-20", "from_currency": "USD", "to_currency": "EUR", "rate": "0.4"},
    # a rate after as_of must not be used for earlier charges
    {"rate_date": "2024-07-01", "from_currency": "USD", "to_currency": "EUR", "rate": "100"},
    # GBP only from 06-20: the 06-15 charge has no rate on or before its date
    {"rate_date": "2024-06-20", "from_currency": "USD", "to_currency": "GBP", "rate": "0.8"},
]


@dataclass(frozen=True)
class BurnRuns:
    """po_burn as published after each of three runs of one project (read before the next run replaces it)."""

    first: list[dict[str, Any]]  # as_of 2024-06-30
    second: list[dict[str, Any]]  # then as_of 2024-06-15
    third: list[dict[str, Any]]  # then as_of 2024-06-30 again


@pytest.fixture(scope="module")
def burn_runs(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> BurnRuns:
    root = tmp_path_factory.mktemp("po_burn")
    config = make_project(root, {"aws.csv": _burn_charges()}, BURN_POS, fx=BURN_FX)
    published = []
    for as_of in (BURN_AS_OF, BURN_EARLIER_AS_OF, BURN_AS_OF):
        db = _published(config, as_of)
        published.append(_rows(db.path, "select * from po_burn order by as_of, po_number"))
    return BurnRuns(*published)


@pytest.fixture(scope="module")
def burn_first(burn_runs: BurnRuns) -> dict[str, dict[str, Any]]:
    """po_burn of the first run (as_of 2024-06-30), by PO number."""
    by_po = {row["po_number"]: row for row in burn_runs.first}
    assert len(by_po) == len(burn_runs.first)
    return by_po


def test_po_burn_one_row_per_po(burn_first: dict[str, dict[str, Any]]) -> None:
    assert sorted(burn_first) == [f"PO-{n}" for n in range(1001, 1009)]
    assert {row["as_of"] for row in burn_first.values()} == {BURN_AS_OF}


def test_po_burn_usd_po_consumption_window_and_projection(burn_first: dict[str, dict[str, Any]]) -> None:
    row = burn_first["PO-1001"]
    assert row["po_currency"] == "USD"
    assert row["committed_amount"] == pytest.approx(1000.0)
    # 300 (05-31) + 150 (06-01) + 10 (06-30) = 460; the 04-30 charge (not yet valid) and 07-01 (after as_of) excluded
    assert row["consumed_amount"] == pytest.approx(460.0)
    assert row["remaining_amount"] == pytest.approx(540.0)  # 1000 − 460
    assert row["consumed_ratio"] == pytest.approx(0.46)  # 460 / 1000
    # window 06-01 (as_of − 29) … 06-30: 150 + 10 = 160, the 300 on 05-31 (as_of − 30) is outside; 160 / 30
    assert row["burn_rate_daily"] == pytest.approx(160 / 30)
    # 540 / (160 / 30) = 101.25 → ceil 102 days; 06-30 + 102 = 10-10 (Jul 31 +31, Aug 31 +62, Sep 30 +92, Oct 10)
    assert row["projected_exhaustion_date"] == date(2024, 10, 10)
    assert row["threshold_state"] == "ok"  # 0.46 < 0.5
    assert row["valid_to"] == date(2024, 12, 31)
    assert row["vendor_name"] == "Cloud Vendor Ltd"


def test_po_burn_expired_charge_does_not_count_and_50_is_reached_at_exactly_half(
    burn_first: dict[str, dict[str, Any]],
) -> None:
    row = burn_first["PO-1002"]
    # 40 + 60 = 100; the 80 on 06-20 is after valid_to 06-15 (expired)
    assert row["consumed_amount"] == pytest.approx(100.0)
    assert row["remaining_amount"] == pytest.approx(100.0)  # 200 − 100
    assert row["consumed_ratio"] == pytest.approx(0.5)  # 100 / 200
    assert row["threshold_state"] == "50"  # 0.5 ≥ 0.5
    # window: only the 60 on 06-10 → 60 / 30 = 2.0 a day; 100 / 2 = 50 days → 06-30 + 50 = 08-19
    assert row["burn_rate_daily"] == pytest.approx(2.0)
    assert row["projected_exhaustion_date"] == date(2024, 8, 19)
    assert row["valid_to"] == date(2024, 6, 15)


def test_po_burn_80_threshold_and_no_burn_no_projection(burn_first: dict[str, dict[str, Any]]) -> None:
    row = burn_first["PO-1003"]
    assert row["consumed_amount"] == pytest.approx(85.0)
    assert row["remaining_amount"] == pytest.approx(15.0)  # 100 − 85
    assert row["consumed_ratio"] == pytest.approx(0.85)
    assert row["threshold_state"] == "80"  # 0.8 ≤ 0.85 < 1.0
    assert row["burn_rate_daily"] == pytest.approx(0.0)  # the only charge (03-01) is outside the window
    assert row["projected_exhaustion_date"] is None


def test_po_burn_100_threshold_at_exactly_committed(burn_first: dict[str, dict[str, Any]]) -> None:
    row = burn_first["PO-1004"]
    assert row["consumed_amount"] == pytest.approx(100.0)
    assert row["remaining_amount"] == pytest.approx(0.0)
    assert row["consumed_ratio"] == pytest.approx(1.0)
    assert row["threshold_state"] == "100"
    assert row["burn_rate_daily"] == pytest.approx(100 / 30)
    # remaining 0 → as_of + ceil(0 / (100 / 30)) = as_of
    assert row["projected_exhaustion_date"] == BURN_AS_OF


def test_po_burn_converts_with_latest_rate_on_or_before_charge_date(
    burn_first: dict[str, dict[str, Any]],
) -> None:
    row = burn_first["PO-1005"]
    assert row["po_currency"] == "EUR"
    assert row["vendor_name"] == "Euro Cloud GmbH"
    # 06-05: 100 USD × (1 / 1.25 = 0.8, inverse of the 06-01 EUR→USD) = 80 EUR
    # 06-10:  40 USD × (1 / 1.6 = 0.625, the 06-10 rate, on the charge date) = 25 EUR
    # 06-19:  16 USD × 0.625 (06-10 is the latest on or before 06-19; 06-20 is later) = 10 EUR
    # 06-20:  10 USD × 0.4 (direct USD→EUR wins over 1 / 2.0 = 0.5) = 4 EUR
    # total 80 + 25 + 10 + 4 = 119 EUR
    assert row["consumed_amount"] == pytest.approx(119.0)
    assert row["remaining_amount"] == pytest.approx(881.0)  # 1000 − 119
    assert row["consumed_ratio"] == pytest.approx(0.119)
    assert row["threshold_state"] == "ok"
    # all four charges are in the window: 119 / 30 a day
    assert row["burn_rate_daily"] == pytest.approx(119 / 30)
    # 881 / (119 / 30) = 26430 / 119 = 222.1 → ceil 223 days; 06-30 + 223 = 2025-02-08
    # (Dec 31 is +184, Jan 31 +215, Feb 8 +223)
    assert row["projected_exhaustion_date"] == date(2025, 2, 8)
    assert row["error"] is None


def test_po_burn_missing_fx_rate_is_an_error_not_a_silent_rate(burn_first: dict[str, dict[str, Any]]) -> None:
    row = burn_first["PO-1006"]
    # the 06-15 USD charge has no USD→GBP rate on or before 06-15 (the only one is 06-20): not 1.0, not 0.8
    assert row["po_currency"] == "GBP"
    assert row["consumed_amount"] is None
    assert row["threshold_state"] == "fx_missing"
    assert row["error"]
    assert row["consumed_ratio"] is None


def test_po_burn_po_without_charges(burn_first: dict[str, dict[str, Any]]) -> None:
    row = burn_first["PO-1007"]
    assert row["consumed_amount"] == pytest.approx(0.0)
    assert row["remaining_amount"] == pytest.approx(300.0)
    assert row["consumed_ratio"] == pytest.approx(0.0)
    assert row["burn_rate_daily"] == pytest.approx(0.0)
    assert row["projected_exhaustion_date"] is None
    assert row["threshold_state"] == "ok"
    assert row["error"] is None


def test_po_burn_cancelled_po_charges_do_not_count(burn_first: dict[str, dict[str, Any]]) -> None:
    row = burn_first["PO-1008"]
    # the 70 on 06-15 is tagged PO-1008, which is cancelled: invalid, so consumed 0
    assert row["consumed_amount"] == pytest.approx(0.0)
    assert row["remaining_amount"] == pytest.approx(100.0)
    assert row["threshold_state"] == "ok"


def _per_as_of(rows: list[dict[str, Any]]) -> list[tuple[date, int, int]]:
    counts: dict[date, list[str]] = {}
    for row in rows:
        counts.setdefault(row["as_of"], []).append(row["po_number"])
    return sorted((as_of, len(pos), len(set(pos))) for as_of, pos in counts.items())


def test_po_burn_second_run_with_other_as_of_keeps_the_first(burn_runs: BurnRuns) -> None:
    # run 2 (as_of 06-15) adds 8 rows; run 1's 8 rows for 06-30 stay
    assert _per_as_of(burn_runs.second) == [(BURN_EARLIER_AS_OF, 8, 8), (BURN_AS_OF, 8, 8)]


def test_po_burn_rerun_of_same_as_of_does_not_duplicate(burn_runs: BurnRuns) -> None:
    # run 3 (06-30 again) replaces run 1's rows: still 8 POs for each of the two dates
    assert _per_as_of(burn_runs.third) == [(BURN_EARLIER_AS_OF, 8, 8), (BURN_AS_OF, 8, 8)]


def test_po_burn_history_rows_have_their_own_as_of_values(burn_runs: BurnRuns) -> None:
    rows = [r for r in burn_runs.third if r["po_number"] == "PO-1001"]
    assert [r["as_of"] for r in rows] == [BURN_EARLIER_AS_OF, BURN_AS_OF]
    earlier, later = rows
    # as_of 06-15: 300 (05-31) + 150 (06-01) = 450; window 05-17 … 06-15 holds both: 450 / 30 = 15 a day
    assert earlier["consumed_amount"] == pytest.approx(450.0)
    assert earlier["burn_rate_daily"] == pytest.approx(15.0)
    # remaining 1000 − 450 = 550; 550 / 15 = 36.7 → ceil 37; 06-15 + 37 = 07-22
    assert earlier["projected_exhaustion_date"] == date(2024, 7, 22)
    assert earlier["threshold_state"] == "ok"  # 0.45
    # as_of 06-30 as in the first run: 300 + 150 + 10 = 460, window 150 + 10 = 160
    assert later["consumed_amount"] == pytest.approx(460.0)
    assert later["burn_rate_daily"] == pytest.approx(160 / 30)


# ---------------------------------------------------------------------------------------------------------------
# commitment_utilization and commitment_coverage: one dataset, as_of 2024-09-30 (August and September)
# ---------------------------------------------------------------------------------------------------------------

COMMITMENT_AS_OF = date(2024, 9, 30)


def _commitment(
    day: str, commitment: str, status: str, effective: str, service: str, **values: Any
) -> dict[str, Any]:
    return charge(
        day,
        ServiceName=service,
        EffectiveCost=effective,
        BilledCost="0.00",
        CommitmentDiscountId=commitment,
        CommitmentDiscountStatus=status,
        CommitmentDiscountType="Savings Plan" if commitment.startswith("sp") else "Reserved Instance",
        PricingCategory="Committed",
        **values,
    )


def _on_demand(day: str, effective: str, service: str, **values: Any) -> dict[str, Any]:
    return charge(day, ServiceName=service, EffectiveCost=effective, BilledCost=effective, **values)


SP = "arn:aws:savingsplans::111111111111:savingsplan/sp-1"
RI = "arn:aws:ec2:eu-west-1:111111111111:reserved-instances/ri-1"


def _commitment_charges() -> list[dict[str, Any]]:
    return [
        # August, sp-1: the purchase (funded by PO-3001), Used 30 + 20 (EC2) + 10 (Lambda), Unused 15
        charge(
            "2024-08-01",
            ChargeCategory="Purchase",
            ServiceName=SP_SERVICE,
            BilledCost="500.00",
            EffectiveCost="0.00",
            CommitmentDiscountId=SP,
            CommitmentDiscountType="Savings Plan",
            Tags={"po": "PO-3001"},
            ResourceId=SP,
        ),
        _commitment("2024-08-02", SP, "Used", "30.00", EC2),
        _commitment("2024-08-03", SP, "Used", "20.00", EC2),
        _commitment("2024-08-03", SP, "Used", "10.00", LAMBDA),
        _commitment("2024-08-31", SP, "Unused", "15.00", EC2),
        # August on-demand
        _on_demand("2024-08-05", "25.00", EC2),
        _on_demand("2024-08-06", "10.00", LAMBDA),
        _on_demand("2024-08-06", "40.00", S3),  # a service sp-1 did not cover
        _on_demand("2024-08-05", "100.00", EC2, BillingAccountId=OTHER_ACCOUNT),  # another billing account
        # September, sp-1: Used 45 (EC2), Unused 5
        _commitment("2024-09-10", SP, "Used", "45.00", EC2),
        _commitment("2024-09-30", SP, "Unused", "5.00", EC2),
        # September, ri-1: Used 12 (RDS)
        _commitment("2024-09-12", RI, "Used", "12.00", RDS),
        # September on-demand
        _on_demand("2024-09-11", "15.00", EC2),
        _on_demand("2024-09-11", "100.00", LAMBDA),  # sp-1 covered no Lambda in September
        _on_demand("2024-09-12", "8.00", RDS),
        # October (after as_of): excluded
        _commitment("2024-10-01", SP, "Used", "999.00", EC2),
        _on_demand("2024-10-01", "999.00", EC2),
    ]


@pytest.fixture(scope="module")
def commitment_db(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Published:
    root = tmp_path_factory.mktemp("commitments")
    config = make_project(root, {"aws.csv": _commitment_charges()}, [po("PO-3001", total_amount="5000.00")])
    return _published(config, COMMITMENT_AS_OF)


def _utilization(db: Published) -> dict[tuple[str, str], dict[str, Any]]:
    rows = _rows(db.path, "select * from commitment_utilization")
    by_key = {(r["commitment_discount_id"], r["billing_month"]): r for r in rows}
    assert len(by_key) == len(rows), "one row per commitment × billing month"
    return by_key


def test_commitment_utilization_rows(commitment_db: Published) -> None:
    # sp-1 in August and September, ri-1 in September; nothing for October (after as_of)
    assert sorted(_utilization(commitment_db)) == sorted([(SP, "2024-08"), (SP, "2024-09"), (RI, "2024-09")])


def test_commitment_utilization_august(commitment_db: Published) -> None:
    row = _utilization(commitment_db)[(SP, "2024-08")]
    assert row["provider_name"] == "AWS"
    assert row["commitment_discount_type"] == "Savings Plan"
    assert row["used_cost"] == pytest.approx(60.0)  # 30 + 20 + 10
    assert row["unused_cost"] == pytest.approx(15.0)
    assert row["cost_utilization_ratio"] == pytest.approx(0.8)  # 60 / (60 + 15)
    assert row["funded_po_number"] == "PO-3001"
    assert row["purchase_billed_cost"] == pytest.approx(500.0)


def test_commitment_utilization_september(commitment_db: Published) -> None:
    rows = _utilization(commitment_db)
    sp = rows[(SP, "2024-09")]
    assert sp["used_cost"] == pytest.approx(45.0)
    assert sp["unused_cost"] == pytest.approx(5.0)
    assert sp["cost_utilization_ratio"] == pytest.approx(0.9)  # 45 / (45 + 5)
    assert sp["purchase_billed_cost"] == pytest.approx(0.0)  # purchased in August
    assert sp["funded_po_number"] == "PO-3001"  # the commitment's funding PO, whatever the month

    ri = rows[(RI, "2024-09")]
    assert ri["commitment_discount_type"] == "Reserved Instance"
    assert ri["used_cost"] == pytest.approx(12.0)
    assert ri["unused_cost"] == pytest.approx(0.0)
    assert ri["cost_utilization_ratio"] == pytest.approx(1.0)  # 12 / (12 + 0)
    assert ri["funded_po_number"] is None
    assert ri["purchase_billed_cost"] == pytest.approx(0.0)


COMMITMENT_COVERAGE_EXPECTED = {
    # (billing account, month, service): (committed, on_demand, coverage_ratio); no ContractedCost or ListCost in
    # these files, so the on-demand equivalent is EffectiveCost; S3 is not in the default eligibility map
    (ACCOUNT, "2024-08", EC2): (50.0, 25.0, 50 / 75),  # 30 + 20 used; 50 / (50 + 25)
    (ACCOUNT, "2024-08", LAMBDA): (10.0, 10.0, 0.5),  # 10 / (10 + 10)
    (OTHER_ACCOUNT, "2024-08", EC2): (0.0, 100.0, 0.0),
    (ACCOUNT, "2024-09", EC2): (45.0, 15.0, 0.75),  # 45 / (45 + 15)
    (ACCOUNT, "2024-09", LAMBDA): (0.0, 100.0, 0.0),
    (ACCOUNT, "2024-09", RDS): (12.0, 8.0, 0.6),  # 12 / (12 + 8)
}


def test_commitment_coverage(commitment_db: Published) -> None:
    rows = _rows(commitment_db.path, "select * from commitment_coverage")
    by_key = {(r["billing_account_id"], r["billing_month"], r["service_name"]): r for r in rows}
    assert len(by_key) == len(rows), "one row per provider × billing account × month × service"
    # the Purchase row (service "AWS Savings Plans") is not usage; October is after as_of; S3 is not eligible
    assert set(by_key) == set(COMMITMENT_COVERAGE_EXPECTED)
    assert {r["provider_name"] for r in rows} == {"AWS"}
    for key, (committed, on_demand, ratio) in COMMITMENT_COVERAGE_EXPECTED.items():
        row = by_key[key]
        assert row["committed_cost"] == pytest.approx(committed), key
        assert row["on_demand_cost"] == pytest.approx(on_demand), key
        assert row["coverage_ratio"] == pytest.approx(ratio), key
        assert (row["covered_cost"], row["uncovered_cost"]) == (
            pytest.approx(committed),
            pytest.approx(on_demand),
        )
