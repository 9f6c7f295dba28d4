"""Accounting invariants hold on every build, and a build that breaks one is never published.

The project is small enough to work by hand: three charges land (PO-1 tagged 6.00, untagged 4.00, unknown PO-9
2.50: BilledCost 12.50) and one row with the cost "x" is quarantined. Each tampering below breaks one figure of
a real build the way a bug would (a double-counting join, a bucket that drops cost, books that lose a row), and
the test names exactly which invariants must report it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from support import charge, make_project, po, query, run_flow, write_csv

from finrecon.warehouse import invariants, models_runner, publish

pytestmark = pytest.mark.usefixtures("prefect_harness")

CHARGES = [
    charge("2024-09-01", ResourceId="tagged", BilledCost="6.00", EffectiveCost="6.00", Tags={"po": "PO-1"}),
    charge("2024-09-02", ResourceId="untagged", BilledCost="4.00", EffectiveCost="4.00"),
    charge(
        "2024-09-03", ResourceId="unknown-po", BilledCost="2.50", EffectiveCost="2.50", Tags={"po": "PO-9"}
    ),
    charge("2024-09-03", ResourceId="bad-cost", BilledCost="x", EffectiveCost="1.00"),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    """One real run of the small project; returns its output folder (finops.duckdb, state.duckdb)."""
    root = tmp_path_factory.mktemp("invariants")
    config = make_project(root, {"a.csv": CHARGES}, [po("PO-1", total_amount="10.00")])
    run_flow(config)
    return root / "out"


@pytest.fixture
def con(built: Path, tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Copies of the publication (`pub`) and the state file (`st`), attached for tampering, as_of set."""
    shutil.copy(built / "finops.duckdb", tmp_path / "pub.duckdb")
    shutil.copy(built / "state.duckdb", tmp_path / "st.duckdb")
    connection = duckdb.connect()
    connection.execute(f"attach '{tmp_path / 'pub.duckdb'}' as pub")
    connection.execute(f"attach '{tmp_path / 'st.duckdb'}' as st")
    as_of = connection.execute("select max(as_of) from pub.po_burn").fetchall()[0][0]
    connection.execute("set variable as_of = ?", [as_of])
    yield connection
    connection.close()


def latest_run(con: duckdb.DuckDBPyConnection) -> str:
    return str(con.execute("select run_id from st.runs order by started_at desc limit 1").fetchall()[0][0])


def test_the_real_build_keeps_every_invariant_and_its_books_are_hand_worked(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert invariants.violations(con, "pub", "st", latest_run(con)) == {}
    books = con.execute(
        "select rows_read, rows_loaded, rows_quarantined, billed_loaded from st.run_files where status = 'landed' "
        "and file_path like '%a.csv'"
    ).fetchall()
    assert books == [(4, 3, 1, pytest.approx(12.50))]
    assert con.execute("select invariants_checked from st.runs").fetchall() == [(len(invariants.INVARIANTS),)]


TAMPERINGS = {
    "untagged charges cost a cent more than the lake holds": (
        "update pub.charges_daily set BilledCost = BilledCost + 0.01 where x_po_status = 'untagged'",
        {"charges_equal_lake", "coverage_buckets_add_up"},
    ),
    "a billing period's untagged bucket counts 1.00 twice": (
        "update pub.billing_period_totals set untagged_cost = untagged_cost + 1",
        {"period_totals_equal_lake"},
    ),
    "tag coverage's valid bucket holds 0.50 that is in no charge": (
        "update pub.tag_coverage set valid_po_cost = valid_po_cost + 0.5 where valid_po_cost > 0",
        {"coverage_buckets_add_up"},
    ),
    "a PO tag resolves twice, so its charge is published twice": (
        "insert into pub.int_charge_po_tags select * from pub.int_charge_po_tags where po_tag_value = 'PO-1'",
        {"one_po_per_charge"},
    ),
    "PO consumption counts the valid charge twice": (
        "update pub.po_consumption_daily set billed_cost = billed_cost * 2",
        {"one_po_per_charge"},
    ),
    "a charge with a status that is no bucket": (
        "update pub.charges_daily set x_po_status = 'unknown' where x_po_status = 'invalid'",
        {"one_po_per_charge"},
    ),
    "the books lose a loaded row": (
        "update st.run_files set rows_loaded = rows_loaded - 1 where status = 'landed'",
        {"books_balance"},
    ),
    "the quarantine loses its row": ("delete from st.quarantine", {"books_balance"}),
}


@pytest.mark.parametrize("tampering", TAMPERINGS, ids=list(TAMPERINGS))
def test_each_broken_figure_is_reported_by_exactly_its_invariants(
    con: duckdb.DuckDBPyConnection, tampering: str
) -> None:
    sql, expected = TAMPERINGS[tampering]
    con.execute(sql)
    broken = invariants.violations(con, "pub", "st", latest_run(con))
    assert set(broken) == expected
    with pytest.raises(invariants.InvariantViolation, match="nothing published") as raised:
        invariants.check(con, "pub", "st", latest_run(con))
    for name in expected:
        assert name in str(raised.value)


def test_the_error_names_the_scope_and_both_figures(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("update pub.billing_period_totals set untagged_cost = untagged_cost + 1")
    [(scope, detail)] = invariants.violations(con, "pub", "st", latest_run(con))["period_totals_equal_lake"]
    assert scope == "aws 2024-09"
    # landed: 6.00 + 4.00 + 2.50; the buckets now hold 1.00 more than their total
    assert "BilledCost 12.5" in detail and "valid + invalid + untagged = 13.5" in detail


def test_a_build_that_breaks_an_invariant_is_not_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_project(tmp_path, {"a.csv": CHARGES[:3]}, [po("PO-1", total_amount="10.00")])
    run_flow(config)
    published = tmp_path / "out" / "finops.duckdb"
    before = published.read_bytes()

    # a model bug ships: tag_coverage drops the invalid-PO bucket (2.50 of PO-9 on 2024-09-03)
    sql_dir = tmp_path / "sql"
    shutil.copytree(models_runner.SQL_DIR, sql_dir)
    coverage = sql_dir / "marts" / "tag_coverage.sql"
    text = coverage.read_text()
    bucket = "coalesce(sum(EffectiveCost) filter (where x_po_status = 'invalid'), 0) as invalid_po_cost"
    assert bucket in text
    coverage.write_text(text.replace(bucket, "0 as invalid_po_cost"))
    monkeypatch.setattr(publish, "load_models", lambda: models_runner.load_models(sql_dir))
    write_csv(tmp_path / "focus" / "b.csv", [charge("2024-09-04", ResourceId="new", BilledCost="1.00")])

    with pytest.raises(invariants.InvariantViolation, match="coverage_buckets_add_up"):
        run_flow(config)
    assert published.read_bytes() == before
    assert not list(published.parent.glob(".finops.duckdb.*"))  # the refused build is gone
    [(status, message)] = query(
        tmp_path / "out" / "state.duckdb", "select status, message from runs order by started_at desc limit 1"
    )
    assert status == "failed" and "coverage_buckets_add_up" in message

    monkeypatch.undo()  # the fixed models publish the new charge: 6.00 + 4.00 + 2.50 + 1.00
    run_flow(config)
    assert query(published, "select sum(BilledCost) from charges") == [(pytest.approx(13.50),)]


def test_a_provider_whose_name_is_not_its_lake_slug_still_balances(tmp_path: Path) -> None:
    # The lake partitions "Google Cloud" as provider=google-cloud; the invariants must see the same provider on
    # both sides (a first version compared "google-cloud" with "google cloud" and refused every GCP night).
    gcp = charge("2024-09-01", ProviderName="Google Cloud", BilledCost="3.00", EffectiveCost="3.00")
    config = make_project(tmp_path, {"g.csv": [gcp]}, [po("PO-1", total_amount="10.00")])
    run_flow(config)
    published = tmp_path / "out" / "finops.duckdb"
    assert query(
        published, "select provider_name, billing_period, total_billed_cost from billing_period_totals"
    ) == [("Google Cloud", "2024-09", 3.0)]
