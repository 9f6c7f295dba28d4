"""untagged_top's two-step aggregation (resource × Tags value, then resource), run on inline tables with no
flow: sums, strict reporting sums and tag keys across a resource's several Tags values (hand-worked)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import duckdb
import pytest

from finrecon.warehouse.models_runner import load_models, run_macros

D1, D2, LATE = date(2024, 9, 1), date(2024, 9, 2), date(2024, 9, 9)
# (ResourceId, Tags, status, reason, tag value, EffectiveCost, BilledCost, day)
CHARGES = [
    ("r-1", '{"env": "a"}', "untagged", "no_po_tag", None, 1.00, 1.10, D1),
    ("r-1", None, "untagged", "no_po_tag", None, 0.50, 0.50, D2),  # D2 has no rate: reporting NULL
    ("r-2", '{"po": "X"}', "invalid", "unknown_po", "X", 0.40, 0.40, D1),
    ("r-2", '{"po": "X", "team": "t"}', "invalid", "unknown_po", "X", 0.20, 0.25, D1),
    ("r-3", '{"po": "P1"}', "valid", "tag", "P1", 9.00, 9.00, D1),  # valid: never listed
    ("r-4", None, "untagged", "no_po_tag", None, 5.00, 5.00, LATE),  # after as_of
]


@pytest.fixture()
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    run_macros(connection)
    connection.execute(
        "create table charges (ProviderName varchar, BillingAccountId varchar, SubAccountId varchar, "
        "ServiceName varchar, ResourceId varchar, ResourceName varchar, Tags varchar, x_po_status varchar, "
        "x_po_reason varchar, x_po_tag_value varchar, BillingCurrency varchar, EffectiveCost double, "
        "BilledCost double, x_charge_date date)"
    )
    for resource, tags, status, reason, value, effective, billed, day in CHARGES:
        connection.execute(
            "insert into charges values ('AWS', 'acct', 'sub', 'svc', ?, ?, ?, ?, ?, ?, 'USD', ?, ?, ?)",
            [resource, f"name-{resource}", tags, status, reason, value, effective, billed, day],
        )
    connection.execute(
        "create table reporting_fx_rates as "
        "select date '2024-09-01' as rate_day, 'USD' as from_currency, 2.0 as fx_rate"
    )
    connection.execute("set variable as_of = date '2024-09-03'")
    connection.execute("set variable untagged_top_n = 10")
    connection.execute("set variable reporting_currency = 'EUR'")
    yield connection
    connection.close()


def test_untagged_top_rolls_up_a_resources_tags_values(con: duckdb.DuckDBPyConnection) -> None:
    [model] = [m for m in load_models() if m.name == "untagged_top"]
    con.execute(f"create table untagged_top as {model.sql}")
    rows = con.execute(
        "select rank, resource_id, po_status, po_reason, po_tag_value, tag_keys, effective_cost, billed_cost, "
        "effective_cost_reporting, billed_cost_reporting, charge_count, first_charge_date, last_charge_date "
        "from untagged_top order by rank"
    ).fetchall()
    assert rows == [
        # r-1: 1.00 + 0.50; D2's rate is missing, so its reporting sums are NULL, not 1.00 × 2.0
        (1, "r-1", "untagged", "no_po_tag", None, ["env"], pytest.approx(1.50), pytest.approx(1.60),
         None, None, 2, D1, D2),
        # r-2: 0.40 + 0.20 (× 2.0 = 1.20); billed 0.40 + 0.25 (× 2.0 = 1.30); keys of both Tags values
        (2, "r-2", "invalid", "unknown_po", "X", ["po", "team"], pytest.approx(0.60), pytest.approx(0.65),
         pytest.approx(1.20), pytest.approx(1.30), 2, D1, D1),
    ]  # fmt: skip
    types = dict(con.execute("select column_name, column_type from (describe untagged_top)").fetchall())
    assert types["charge_count"] == "BIGINT"
