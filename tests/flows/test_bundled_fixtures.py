"""The bundled default (README's first command) on the real public samples: golden figures.

Totals are computed independently from the fixture files with DuckDB's own readers; the PO figures come from
the fixture derivation (data/fixtures/README.md), which tagged known rows.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import duckdb
import pytest
from support import query, run_flow

from finrecon.models.config import DEFAULT_CONFIG_TOML, PROJECT_ROOT
from finrecon.warehouse.models_runner import load_models

FIXTURES = PROJECT_ROOT / "data" / "fixtures" / "focus"


def fixture_totals() -> dict[str, tuple[int, float]]:
    con = duckdb.connect()
    csvs = ", ".join(f"'{p.as_posix()}'" for p in sorted(FIXTURES.glob("*.csv*")))
    sql = f"""
        select ProviderName, count(*), sum(BilledCost::double) from (
            select ProviderName, BilledCost from read_csv([{csvs}], all_varchar = true, union_by_name = true,
                                                          nullstr = ['NULL', ''])
            union all
            select ProviderName, BilledCost::varchar from read_parquet('{(FIXTURES / "azure_focus_1.0_2024-09.parquet").as_posix()}')
        ) group by 1
    """
    return {name: (rows, cost) for name, rows, cost in con.execute(sql).fetchall()}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> Path:
    root = tmp_path_factory.mktemp("bundled")
    text = DEFAULT_CONFIG_TOML.replace(
        '"data/fixtures', f'"{(PROJECT_ROOT / "data" / "fixtures").as_posix()}'
    )
    text = text.replace('"data/finops.duckdb"', '"out/finops.duckdb"').replace('"data/lake"', '"out/lake"')
    text = text.replace('"data/state.duckdb"', '"out/state.duckdb"')
    tomllib.loads(text)
    config = root / "finrecon.toml"
    config.write_text(text)
    return Path(run_flow(config).published_path)


def test_every_fixture_row_and_cent_is_published(published: Path) -> None:
    expected = fixture_totals()
    got = {
        name: (rows, cost)
        for name, rows, cost in query(
            published, "select ProviderName, count(*), sum(BilledCost) from charges group by 1"
        )
    }
    assert set(got) == {"AWS", "Microsoft", "Oracle"}
    for provider, (rows, cost) in expected.items():
        assert got[provider][0] == rows
        assert got[provider][1] == pytest.approx(cost, abs=1e-9)
    # 942 AWS + 17 commitment rows (AWS) + 51 Microsoft + 7 Oracle
    assert sum(rows for rows, _ in got.values()) == 1017


def test_po_statuses_of_the_tagged_fixture_rows(published: Path) -> None:
    rows = query(
        published,
        "select x_po_reason, x_po_number, count(*), sum(BilledCost) from charges "
        "where x_po_status <> 'untagged' group by all order by all",
    )
    by_key = {(reason, number): (count, cost) for reason, number, count, cost in rows}
    assert by_key[("tag", "PO-1001")] == (176, pytest.approx(15.95809931820))
    assert by_key[("tag", "PO-1002")] == (17, pytest.approx(0.23029783980))
    assert by_key[("unknown_po", "PO9999")] == (10, pytest.approx(0.00639010360))
    assert by_key[("cancelled", "PO-1004")] == (6, pytest.approx(0.00001001310))
    assert by_key[("expired", "PO-1003")][0] == 3  # the 3 rows after valid_to 2024-09-10
    assert by_key[("tag", "PO-1003")][0] == 3
    assert by_key[("tag", "PO-1005")][0] == 31
    assert by_key[("tag", "PO-1006")] == (6, pytest.approx(9.00))
    assert by_key[("rule:aws-shared-platform-account", "PO-1007")] == (58, pytest.approx(0.26623176180))
    # erp/po_cloud_mapping.csv maps the untagged charges of AWS sub-account 10961396247 to PO-1001 line 2:
    # 6 rows, 0.00333335250 (EC2) + 0.01000000000 (VPC) = 0.01333335250 (duckdb over the AWS fixture file)
    assert by_key[("mapping:PO-1001/2", "PO-1001")] == (6, pytest.approx(0.01333335250))


def test_burn_commitment_and_as_of(published: Path) -> None:
    burn = {
        row[0]: row[1:]
        for row in query(
            published,
            "select po_number, as_of::varchar, consumed_ratio, threshold_state, po_currency from po_burn",
        )
    }
    # as_of defaults to the last charge day of the data (2024-09-30)
    assert {v[0] for v in burn.values()} == {"2024-09-30"}
    # tagged 15.95809931820 + mapped (po_cloud_mapping, sub-account 10961396247) 0.01333335250 = 15.97143267070
    assert burn["PO-1001"][1:] == (pytest.approx(15.97143267070 / 18.77), "80", "USD")
    assert burn["PO-1006"][1:] == (pytest.approx(9.00 / 18.00), "50", "USD")
    assert burn["PO-1002"][3] == "EUR" and burn["PO-1002"][2] == "ok"
    assert burn["PO-1004"][1:3] == (0.0, "ok")  # cancelled: nothing counts
    commitments = query(
        published,
        "select used_cost, unused_cost, cost_utilization_ratio, funded_po_number from commitment_utilization "
        "where commitment_discount_type = 'Reserved Instance'",
    )
    # 5 Used rows = 5.50, 3 Unused rows = 3.50; 5.50 / 9.00
    assert commitments == [(pytest.approx(5.50), pytest.approx(3.50), pytest.approx(5.50 / 9.00), "PO-1006")]


def test_every_published_column_is_in_the_data_dictionary(published: Path) -> None:
    # the generated dictionary's check (finrecon/warehouse/dictionary.py; tests/docs/ also compares docs/data-dictionary.md)
    from finrecon.warehouse.dictionary import generate

    _, problems = generate(published)
    assert problems == []
    columns = query(published, "select table_name, column_name from duckdb_columns() where not internal")
    marts = {m.name for m in load_models() if m.layer == "marts"}
    assert marts <= {t for t, _ in columns}


def test_summary_is_published_as_prefect_artifacts(published: Path) -> None:
    from prefect.artifacts import Artifact

    summary = Artifact.get("finrecon-nightly-summary")
    assert summary is not None and "PO-1001" in str(summary.data)
    assert "| AWS | USD |" in str(summary.data)
    coverage = Artifact.get("finrecon-coverage-by-provider")
    assert coverage is not None and "Microsoft" in str(coverage.data)


def test_reporting_currency_totals_match_an_independent_conversion(published: Path) -> None:
    """Σ EffectiveCost in EUR (the bundled report.currency): each charge day at the latest USD→EUR rate of the
    fixture's fx_rates.csv on or before it, worked out here in Python from the two files."""
    import csv
    from datetime import date

    with (PROJECT_ROOT / "data" / "fixtures" / "erp" / "fx_rates.csv").open(encoding="utf-8") as handle:
        rates = sorted(
            (date.fromisoformat(r["rate_date"]), float(r["rate"]))
            for r in csv.DictReader(handle)
            if (r["from_currency"], r["to_currency"]) == ("USD", "EUR")
        )
    daily = query(
        published,
        "select x_charge_date, sum(EffectiveCost) from charges where BillingCurrency = 'USD' group by 1",
    )
    expected = sum(cost * [rate for day_, rate in rates if day_ <= day][-1] for day, cost in daily)
    got = query(
        published, "select sum(total_cost_reporting), bool_or(reporting_fx_missing) from tag_coverage"
    )
    assert got == [(pytest.approx(expected, rel=1e-12), False)]
    assert expected != pytest.approx(sum(cost for _, cost in daily))  # a conversion happened


def test_invoice_match_statuses_of_the_bundled_invoices(published: Path) -> None:
    # hand-worked in data/fixtures/README.md ("invoices.csv and goods_receipts.csv")
    found = {
        (number, kind): (status, difference)
        for number, kind, status, difference in query(
            published, "select invoice_number, match_type, status, round(difference, 6) from invoice_match"
        )
    }
    assert found == {
        ("AWS-2024-04-0117", "two_way"): ("amount_mismatch", 2.0),  # 22.00 − 1 × 20.00
        ("AWS-2024-04-0117", "three_way"): ("amount_mismatch", 2.0),  # 22.00 − received 20.00
        ("AWS-2024-04-0117", "cloud"): ("not_applicable", None),
        ("AWS-2024-09-0950", "two_way"): ("over_po", 0.5),  # 5.50 − PO total 5.00
        ("AWS-2024-09-0950", "three_way"): ("amount_mismatch", 0.5),  # 5.50 − received 5.00
        ("AWS-2024-09-0950", "cloud"): ("not_applicable", None),
        ("AWS-2024-10-0021", "two_way"): ("matched", -2.81),  # 15.96 − 18.77
        ("AWS-2024-10-0021", "three_way"): ("matched", 0.0),
        ("AWS-2024-10-0021", "cloud"): ("matched", -0.011433),  # 15.96 − (15.95809931820 + 0.01333335250)
        ("AWS-2024-10-0022", "two_way"): ("matched", -0.41),  # 0.21 − 0.62 EUR
        ("AWS-2024-10-0022", "three_way"): ("missing_receipt", None),
        ("AWS-2024-10-0022", "cloud"): ("matched", 0.002133),  # 0.21 − 0.23029783980 × 0.9026
        ("AWS-2024-10-0035", "two_way"): ("matched", 0.0),  # 9.00 − 720 × 0.0125
        ("AWS-2024-10-0035", "three_way"): ("matched", 0.0),
        ("AWS-2024-10-0035", "cloud"): ("amount_mismatch", -6.25),  # 9.00 − INV-2024-09-AWS-001's 15.25
        ("MS-E0900417", "two_way"): ("matched", -0.000219),  # 0.00027 − 0.000489
        ("MS-E0900417", "three_way"): ("matched", 0.0),
        ("MS-E0900417", "cloud"): ("matched", 0.000001),  # 0.00027 − 0.000269012
        ("ORCL-77120", "two_way"): ("missing_po_reference", None),
        ("ORCL-77120", "three_way"): ("missing_po_reference", None),
        ("ORCL-77120", "cloud"): ("missing_po_reference", None),
    }
    rates = query(
        published,
        "select kpi_month, vendor_id, invoice_count, auto_matched_invoice_count from po_kpis where invoice_count > 0",
    )
    assert sorted(rates) == [
        ("2024-04", "V-AWS-01", 1, 0),
        ("2024-09", "V-AWS-01", 1, 0),
        ("2024-10", "V-AWS-01", 3, 1),  # AWS-2024-10-0021
        ("2024-10", "V-MSFT-01", 1, 1),
        ("2024-10", "V-ORCL-01", 1, 0),
    ]


# Money columns with no `_reporting` twin on purpose: the FOCUS columns of the charge-level views (their daily
# aggregate charges_daily has x_*_reporting), the ERP mirror tables and the run log (figures as delivered), and
# the same money already converted under another name.
NOT_CONVERTED = {
    "charges": "*",
    "lake_charges": "*",
    "charges_daily": "*",  # x_billed_cost_reporting, x_effective_cost_reporting
    "po_headers": "*",
    "po_lines": "*",
    "int_purchase_orders": "*",
    "runs": "*",
    "billing_period_history": "*",
    "billing_period_history_latest": "*",  # a view: the newest version of each key of billing_period_history
    "po_burn": {"consumed_billed_cost"},  # = consumed_amount, converted as consumed_amount_reporting
    "po_burn_latest": {"consumed_billed_cost"},  # a view: po_burn's newest as_of
    "po_consumption_daily": {"consumed_amount"},  # = billed_cost, converted as billed_cost_reporting
    "po_releases": {"release_amount_parent_currency"},  # = release_amount, converted
    # evidence for a person: the ERP's figures as delivered, compared in their own currency
    "duplicate_po_candidates": "*",
    "duplicate_invoice_candidates": "*",
    "unauthorised_spend": {"po_total_amount"},  # the PO header's amount, as po_headers has it
    "po_header_history": "*",  # the ERP mirror, version by version
    "po_amendments": "*",  # the same versions side by side
}


def test_every_money_column_of_the_marts_has_a_reporting_currency_twin(published: Path) -> None:
    columns: dict[str, dict[str, str]] = {}
    for table, column, type_ in query(
        published, "select table_name, column_name, data_type from duckdb_columns() where not internal"
    ):
        columns.setdefault(table, {})[column] = type_
    missing = []
    for table, found in columns.items():
        exempt = NOT_CONVERTED.get(table, set())
        for column, type_ in found.items():
            is_money = type_ == "DOUBLE" and re.search(
                r"(cost|amount)(_each|_before|_after|_delta)?$", column
            )
            if not is_money or column.endswith("_reporting") or exempt == "*" or column in exempt:
                continue
            if f"{column}_reporting" not in found:
                missing.append(f"{table}.{column}")
        if any(c.endswith("_reporting") for c in found) and exempt != "*":
            assert "reporting_currency" in found, f"{table} names no reporting currency"
    assert missing == []
