"""AWS exports end to end: S3 layouts as AWS writes them (on a real moto server) through `finrecon run`'s flow.

One hand-written truth — the usage, commitments and fees of one month — is rendered twice, as CUR 2.0 line items
and as AWS's FOCUS export would state it. The expected marts are worked out by hand below, so both renderings
are checked against figures, not only against each other.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import aws_rig
import pyarrow as pa
import pytest
from aws_billing import (
    BUCKET,
    EC2,
    PAYER,
    RI_1,
    RI_2,
    SP_1,
    TEAM_A,
    TEAM_B,
    Item,
    aws_project,
    aws_source_toml,
    cur2_rows,
    cur2_table,
    focus_rows,
    focus_table,
)  # fmt: skip
from botocore.client import BaseClient
from support import make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")


TRUTH = [
    Item("usage", 3, TEAM_A, EC2, "PO-1001", 10.0),
    Item("usage", 4, TEAM_B, "Amazon Simple Storage Service", None, 4.0),
    Item("usage", 5, TEAM_B, "Amazon Relational Database Service", "PO-1002", 7.0),
    Item("ri_usage", 6, TEAM_A, EC2, "PO-1002", 6.0, effective=2.5, commitment=RI_1),
    Item("ri_fee", 1, PAYER, EC2, None, 3.0, effective=0.5, commitment=RI_1),
    Item("sp_usage", 7, TEAM_A, EC2, "PO-1001", 8.0, effective=5.0, commitment=SP_1),
    Item(
        "sp_fee", 1, PAYER, "Savings Plans for AWS Compute usage", None, 6.0, effective=1.0, commitment=SP_1
    ),
    Item("ri_upfront", 2, PAYER, EC2, None, 100.0, commitment=RI_2),
    Item("tax", 30, PAYER, EC2, None, 1.2),
    Item("credit", 30, PAYER, EC2, None, -2.0),
]

# Worked by hand from TRUTH (November 2024):
# BilledCost: 10 + 4 + 7 + 0 (RI-covered usage is billed through the RI) + 3 + (8 − 8: SP-covered usage and its
# negation) + 6 + 100 + 1.2 − 2 = 129.2
# EffectiveCost: 10 + 4 + 7 + 2.5 + 0.5 + 5 (+ 0 negation) + 1 + 0 (upfront) + 1.2 − 2 = 29.2
BILLED_TOTAL = 129.2
EFFECTIVE_TOTAL = 29.2
# PO consumption is Σ BilledCost of the PO's charges: PO-1001 = 10 + 8 − 8; PO-1002 = 7 + 0.
CONSUMED = {"PO-1001": 10.0, "PO-1002": 7.0}
# Commitment utilisation (EffectiveCost): RI_1 used 2.5 / unused 0.5; SP_1 used 5 (+ 0 negation) / unused 1;
# RI_2 was only bought this month (its upfront fee), nothing used or unused yet.
UTILISATION = {RI_1: (2.5, 0.5), RI_2: (0.0, 0.0), SP_1: (5.0, 1.0)}


def marts(database: Path) -> dict[str, Any]:
    """The figures both renderings must agree on, rounded to cents-and-below noise."""
    charges = query(
        database, "select round(sum(BilledCost), 9), round(sum(EffectiveCost), 9) from finops.charges"
    )
    burn = query(database, "select po_number, round(consumed_amount, 9) from finops.po_burn order by 1")
    coverage = query(
        database,
        "select sub_account_id, round(sum(total_cost), 9), round(sum(valid_po_cost), 9), "
        "round(sum(untagged_cost), 9) from finops.tag_coverage group by 1 order by 1",
    )
    utilisation = query(
        database,
        "select commitment_discount_id, round(used_cost, 9), round(unused_cost, 9) "
        "from finops.commitment_utilization order by 1",
    )
    services = query(
        database, "select ServiceName, round(sum(BilledCost), 9) from finops.charges group by 1 order by 1"
    )
    return {
        "charges": charges[0], "burn": dict(burn), "coverage": coverage, "utilisation": utilisation,
        "services": dict(services),
    }  # fmt: skip


def test_cur2_and_focus_exports_of_one_truth_publish_the_same_marts(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path
) -> None:
    aws_rig.put_data_export(s3, BUCKET, "exports", "cur2", "2024-11", [cur2_table(cur2_rows(TRUTH))],
                            "parquet", execution_id="exec-1")  # fmt: skip
    aws_rig.put_data_export(s3, BUCKET, "exports", "focus", "2024-11", [focus_table(focus_rows(TRUTH))],
                            "parquet", execution_id="exec-1")  # fmt: skip

    results = {}
    for export_type, name in (("cur2", "cur2"), ("focus", "focus")):
        config = aws_project(tmp_path / name, moto.endpoint_url, export_type, name)
        outcome = run_flow(config, as_of=date(2024, 11, 30))
        assert outcome.failed_files == []
        results[name] = marts(outcome.published_path)

    cur2, focus = results["cur2"], results["focus"]
    assert cur2["charges"] == pytest.approx((BILLED_TOTAL, EFFECTIVE_TOTAL))
    assert cur2["burn"] == pytest.approx(CONSUMED)
    assert [(c, u, n) for c, u, n in cur2["utilisation"]] == [
        (commitment, *UTILISATION[commitment]) for commitment in sorted(UTILISATION)
    ]
    # tag coverage by account: TEAM_A 10 + 2.5 + 5 + 0 (negation), all with a PO; TEAM_B 4 untagged + 7 PO-1002
    by_account = {row[0]: row[1:] for row in cur2["coverage"]}
    assert by_account[TEAM_A] == pytest.approx((17.5, 17.5, 0.0))
    assert by_account[TEAM_B] == pytest.approx((11.0, 7.0, 4.0))
    # ServiceName is the product name (CUR 2.0's `product` map) in both: EC2 10 + 0 + 3 + (8 − 8) + 100 + 1.2 − 2
    assert cur2["services"] == pytest.approx({
        EC2: 112.2, "Amazon Relational Database Service": 7.0, "Amazon Simple Storage Service": 4.0,
        "Savings Plans for AWS Compute usage": 6.0,
    })  # fmt: skip
    assert cur2 == focus


def test_a_restated_month_replaces_the_previous_delivery(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path
) -> None:
    first = [Item("usage", 3, TEAM_A, EC2, "PO-1001", 10.0), Item("usage", 4, TEAM_B, EC2, None, 4.0)]
    restated = [Item("usage", 3, TEAM_A, EC2, "PO-1001", 9.25), Item("credit", 20, PAYER, EC2, None, -1.0)]
    october = [Item("usage", 3, TEAM_A, EC2, "PO-1001", 1.5)]
    aws_rig.put_data_export(s3, BUCKET, "exports", "cur2", "2024-11",
                            [cur2_table(cur2_rows(first[:1])), cur2_table(cur2_rows(first[1:]))],
                            "csv.gz", execution_id="exec-1")  # fmt: skip
    october_rows = [r | {"bill_billing_period_start_date": "2024-10-01T00:00:00Z",
                         "bill_billing_period_end_date": "2024-11-01T00:00:00Z",
                         "line_item_usage_start_date": "2024-10-03T00:00:00Z",
                         "line_item_usage_end_date": "2024-10-03T01:00:00Z"} for r in cur2_rows(october)]  # fmt: skip
    aws_rig.put_data_export(s3, BUCKET, "exports", "cur2", "2024-10", [cur2_table(october_rows)], "csv.gz",
                            execution_id="exec-oct")  # fmt: skip
    config = aws_project(tmp_path, moto.endpoint_url, "cur2", "cur2")
    outcome = run_flow(config, as_of=date(2024, 11, 30))
    totals = "select x_billing_period, round(sum(BilledCost), 9), count(*) from finops.charges group by 1 order by 1"
    assert query(outcome.published_path, totals) == [("2024-10", 1.5, 1), ("2024-11", 14.0, 2)]

    # AWS re-delivers November (CREATE_NEW_REPORT: a new execution's files next to the old ones), one file now
    aws_rig.put_data_export(s3, BUCKET, "exports", "cur2", "2024-11", [cur2_table(cur2_rows(restated))],
                            "csv.gz", execution_id="exec-2", subfolder="exec-2")  # fmt: skip
    outcome = run_flow(config, as_of=date(2024, 11, 30))
    assert query(outcome.published_path, totals) == [("2024-10", 1.5, 1), ("2024-11", 8.25, 2)]
    statuses = query(
        outcome.published_path,
        "select status, count(*) from finops.run_files where run_id = ? and source = 'aws' group by 1 order by 1",
        [outcome.run_id],
    )
    assert statuses == [("landed", 1), ("unchanged", 1)]
    # what the restatement moved, by period, provider, account, service and currency (October untouched)
    restated = query(
        outcome.published_path,
        "select billing_period, provider_name, billing_account_id, service_name, billing_currency, rows_before, "
        "rows_after, billed_before, billed_after, round(billed_delta, 9), round(effective_delta, 9) "
        "from finops.restatements",
    )
    # by hand: before 10 + 4 = 14 (2 rows); after 9.25 − 1 = 8.25 (2 rows); Δ −5.75 for both costs
    assert restated == [("2024-11", "AWS", PAYER, EC2, "USD", 2, 2, 14.0, 8.25, -5.75, -5.75)]


LEGACY_SAMPLE = Path(__file__).parents[1] / "data" / "aws" / "aws_cur_legacy_anonymous.csv"


def _legacy_sample_tables() -> list[pa.Table]:
    """The real legacy CUR sample as CSV text, split into two report files as AWS splits large months."""
    import polars as pl

    sample = pl.read_csv(LEGACY_SAMPLE, infer_schema=False).to_arrow()
    return [sample.slice(0, 700), sample.slice(700)]


def test_legacy_cur_create_new_report_csv_loads_the_latest_assembly(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path
) -> None:
    tables = _legacy_sample_tables()
    november, december = date(2023, 11, 1), date(2023, 12, 1)
    # an older assembly of the same month stays in the bucket; only the top-level manifest's assembly counts
    aws_rig.put_legacy_cur(s3, BUCKET, "cur", "legacy", november, december, tables[:1], "create_new",
                           assembly_id="assembly-old", fmt="csv.gz")  # fmt: skip
    aws_rig.put_legacy_cur(s3, BUCKET, "cur", "legacy", november, december, tables, "create_new",
                           assembly_id="assembly-new", fmt="csv.gz")  # fmt: skip
    sources = aws_source_toml(moto.endpoint_url, "cur_legacy", "legacy", prefix="cur")
    config = make_project(tmp_path, {}, [po("PO-1001")], sources_toml=sources)
    outcome = run_flow(config, as_of=date(2023, 11, 30))

    assert outcome.failed_files == []
    # figures of the sample (tests/data/aws/README.md): 1281 rows, Usage 1269 / Tax 12, Σ UnblendedCost 1.6823086974
    rows = query(
        outcome.published_path,
        "select ChargeCategory, count(*), sum(BilledCost) from finops.charges group by 1 order by 1",
    )
    assert [(category, count) for category, count, _ in rows] == [("Tax", 12), ("Usage", 1269)]
    assert sum(billed for *_, billed in rows) == pytest.approx(1.6823086974, abs=1e-9)
    periods = query(
        outcome.published_path, "select distinct x_billing_period, ProviderName from finops.charges"
    )
    assert periods == [("2023-11", "AWS")]


def _legacy_parquet(period_start: str, rows: list[dict[str, Any]]) -> pa.Table:
    """A legacy CUR Parquet file: snake-case names, one `resource_tags_user_*` column per tag key."""
    base = {
        "bill_payer_account_id": PAYER,
        "bill_billing_period_start_date": f"{period_start}T00:00:00Z",
        "line_item_usage_account_id": TEAM_A,
        "line_item_currency_code": "USD",
        "line_item_line_item_type": "Usage",
        "line_item_product_code": "AmazonEC2",
        "line_item_usage_start_date": f"{period_start}T00:00:00Z",
    }
    return pa.Table.from_pylist([base | row for row in rows])


def test_legacy_cur_overwrite_parquet_with_drifting_columns_and_unpadded_months(
    s3: BaseClient, moto: aws_rig.MotoServer, tmp_path: Path
) -> None:
    january = _legacy_parquet("2025-01-01", [
        {"line_item_unblended_cost": 3.0, "resource_tags_user_po_number": "PO-1001"},
        {"line_item_unblended_cost": 2.0, "resource_tags_user_po_number": None},
    ])  # fmt: skip
    # February adds a tag column and a column this pipeline has never heard of; it drops nothing it needs
    february = _legacy_parquet("2025-02-01", [
        {"line_item_unblended_cost": 4.5, "resource_tags_user_po_number": None, "resource_tags_user_team": "x",
         "line_item_brand_new_column": "?"},
        {"line_item_unblended_cost": 0.5, "resource_tags_user_po_number": "1001", "resource_tags_user_team": None,
         "line_item_brand_new_column": "?"},
    ])  # fmt: skip
    aws_rig.put_legacy_cur(s3, BUCKET, "cur", "legacy", date(2025, 1, 1), date(2025, 2, 1), [january],
                           "overwrite", assembly_id="a-jan", fmt="parquet")  # fmt: skip
    aws_rig.put_legacy_cur(s3, BUCKET, "cur", "legacy", date(2025, 2, 1), date(2025, 3, 1), [february],
                           "overwrite", assembly_id="a-feb", fmt="parquet", month_padding=True)  # fmt: skip
    sources = aws_source_toml(moto.endpoint_url, "cur_legacy", "legacy", prefix="cur")
    pos = [po("PO-1001", valid_from="2025-01-01", valid_to="2025-12-31")]
    outcome = run_flow(make_project(tmp_path, {}, pos, sources_toml=sources), as_of=date(2025, 2, 28))

    assert outcome.failed_files == []
    by_period = query(
        outcome.published_path,
        "select x_billing_period, sum(BilledCost), count(*) from finops.charges group by 1 order by 1",
    )
    assert by_period == [("2025-01", 5.0, 2), ("2025-02", 5.0, 2)]
    # PO-1001 from `user:po_number` in both months ("1001" gets the default prefix): 3.0 + 0.5
    assert query(outcome.published_path, "select consumed_amount from finops.po_burn") == [(3.5,)]
    tags = query(outcome.published_path, "select Tags from finops.charges where BilledCost = 4.5")
    assert tags == [('{"user:team":"x"}',)]


def test_a_night_with_nothing_new_downloads_nothing(
    s3: BaseClient, counting_proxy: aws_rig.CountingProxy, tmp_path: Path
) -> None:
    for period, table in (("2024-10", TRUTH[:3]), ("2024-11", TRUTH[3:])):
        rows = [r | {"bill_billing_period_start_date": f"{period}-01T00:00:00Z"} for r in cur2_rows(table)]
        aws_rig.put_data_export(s3, BUCKET, "exports", "cur2", period, [cur2_table(rows)], "parquet",
                                execution_id=f"exec-{period}")  # fmt: skip
    config = aws_project(tmp_path, counting_proxy.endpoint_url, "cur2", "cur2")
    first = run_flow(config, as_of=date(2024, 11, 30))
    fetched = counting_proxy.object_gets()
    assert len([key for key in fetched if key.endswith("-Manifest.json")]) == 2
    assert len([key for key in fetched if key.endswith(".parquet")]) == 2

    counting_proxy.clear()
    second = run_flow(config, as_of=date(2024, 11, 30))
    assert counting_proxy.object_gets() == []  # not a manifest, not a data file
    assert counting_proxy.requests  # but the export was listed (through this proxy)
    assert second.unchanged and second.published_path == first.published_path
