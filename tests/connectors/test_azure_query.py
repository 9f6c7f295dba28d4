"""The Cost Management query API through the real azure-mgmt-costmanagement client and DefaultAzureCredential,
against a local server speaking the documented REST shape (paging, 429s), and the reconciliation with the exports.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import azure_rig
import duckdb
import pytest
from azure.storage.blob import ContainerClient
from azure_query_server import (  # noqa: F401
    CostQueryServer,
    FakeManagedIdentityEndpoint,
    cost_query_server_fixture,
    managed_identity_fixture,
)
from support import make_project, po, query, run_flow

# `managed_identity` after `blob_container`, which clears every Azure identity variable for the storage tests
pytestmark = pytest.mark.usefixtures("prefect_harness")

DATA = Path(__file__).parents[1] / "data" / "azure"
SUBSCRIPTION = "ed570627-0265-4620-bb42-bae06bcfa914"
SCOPE = f"subscriptions/{SUBSCRIPTION}"
BILLING_ACCOUNT_SCOPE = "providers/Microsoft.Billing/billingAccounts/8611537"  # the EA sample's account
QPU_WAIT = {"x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": "1"}


def query_source_toml(base_url: str, extra: str = "", scope: str = SCOPE) -> str:
    return f"""
[[sources]]
kind = "azure_query"
name = "azure-api"
scope = "{scope}"
dataset = "ActualCost"
group_by = ["ResourceGroupName"]
months = 1
base_url = "{base_url}"
{extra}
"""


def _daily_actual_cost() -> list[tuple[date, float]]:
    """The sample's own daily Σ Cost of its billing account, computed here with DuckDB (independently of the code)."""
    return duckdb.sql(
        f"""
        select strptime(Date, '%m/%d/%Y')::date, sum(Cost::decimal(38, 10))::double
        from read_csv('{DATA / "EA_ActualCost_Small.csv"}', all_varchar = true)
        where BillingAccountId = '8611537'
        group by 1 order by 1
        """
    ).fetchall()


def test_query_api_totals_reconcile_with_the_export_and_name_the_day_that_differs(
    blob_container: ContainerClient,
    cost_query_server: CostQueryServer,
    managed_identity: FakeManagedIdentityEndpoint,
    tmp_path: Path,
) -> None:
    export = DATA / "EA_ActualCost_Small.csv"
    azure_rig.put_cost_export(blob_container, "exports", "actual", date(2023, 9, 1), [export.read_bytes()],
                              data_version="2021-10-01", export_type="ActualCost", file_format="Csv",
                              compression="None", run_id="r1", submitted_time="2023-10-02T03:00:00Z")  # fmt: skip
    days = _daily_actual_cost()
    assert len(days) >= 2
    off_day = days[0][0]
    # the API agrees with the export except on the first day, where it knows of 1.00 more (a late charge)
    records = [
        {"date": day.isoformat(), "cost": cost + (1.0 if day == off_day else 0.0), "currency": "USD",
         "ResourceGroupName": "rg"}
        for day, cost in days
    ]  # fmt: skip
    cost_query_server.set_records(BILLING_ACCOUNT_SCOPE, records)
    cost_query_server.page_size = 1  # one row per page: every nextLink must be followed
    cost_query_server.throttle_next(1, QPU_WAIT)  # and the first call is throttled with Azure's own header
    sources = f"""
[[sources]]
kind = "azure_export"
name = "azure"
container = "{blob_container.container_name}"
root_folder_path = "exports"
export_name = "actual"
""" + query_source_toml(cost_query_server.base_url, scope=BILLING_ACCOUNT_SCOPE)
    config = make_project(tmp_path, {}, [po("PO-1001")], sources_toml=sources)
    outcome = run_flow(config, as_of=date(2023, 9, 30))
    assert outcome.failed_files == []

    rows = query(
        outcome.published_path,
        "select usage_date, round(reference_cost, 9), round(exported_cost, 9), round(difference, 9), status "
        "from finops.provider_reconciliation order by usage_date",
    )
    assert [(day, status) for day, *_, status in rows] == [
        (day, "mismatch" if day == off_day else "matched") for day, _ in days
    ]
    assert rows[0][3] == -1.0
    assert [(r["usage_date"], r["status"]) for r in outcome.summary.reconciliation_gaps] == [
        (off_day, "mismatch")
    ]
    # the API rows are a reference only: the charges are the export's, not counted twice
    assert query(
        outcome.published_path, "select count(*) from finops.charges where x_source like 'azure_query%'"
    ) == [(0,)]
    queries = cost_query_server.query_requests()
    assert len(queries) == 1 + len(days)  # the throttled first call, then one page per day
    issued = {f"Bearer {t.token}" for t in managed_identity.tokens_issued}  # DefaultAzureCredential's token
    assert issued and {r.authorization for r in queries} <= issued


@pytest.mark.usefixtures("managed_identity")
def test_a_small_estate_lands_the_query_api_as_charges_with_tag_groups(
    cost_query_server: CostQueryServer, tmp_path: Path
) -> None:
    cost_query_server.set_records(SCOPE, [
        {"date": "2024-11-03", "cost": 4.0, "currency": "EUR", "ResourceGroupName": "rg-a", "tags": {"po": "PO-1001"}},
        {"date": "2024-11-03", "cost": 1.5, "currency": "EUR", "ResourceGroupName": "rg-a"},
        {"date": "2024-11-04", "cost": 2.5, "currency": "EUR", "ResourceGroupName": "rg-b", "tags": {"po": "PO-1001"}},
    ])  # fmt: skip
    extra = 'tag_keys = ["po"]\nland_as_charges = true'
    pos = [po("PO-1001", currency="EUR")]
    config = make_project(
        tmp_path, {}, pos, sources_toml=query_source_toml(cost_query_server.base_url, extra)
    )
    outcome = run_flow(config, as_of=date(2024, 11, 30))
    assert outcome.failed_files == []
    # by hand: 4.0 + 2.5 tagged PO-1001; 1.5 untagged
    assert query(outcome.published_path, "select consumed_amount from finops.po_burn") == [(6.5,)]
    assert query(outcome.published_path, "select sum(BilledCost), count(*) from finops.charges") == [(8.0, 3)]


@pytest.mark.usefixtures("managed_identity")
def test_throttling_beyond_the_retries_fails_that_month_with_a_clear_message(
    cost_query_server: CostQueryServer, tmp_path: Path
) -> None:
    cost_query_server.set_records(SCOPE, [{"date": "2024-11-03", "cost": 1.0, "currency": "USD"}])
    cost_query_server.throttle_next(3, {"x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": "0"})
    config = make_project(tmp_path, {}, [po("PO-1001")],
                          sources_toml=query_source_toml(cost_query_server.base_url, "max_retries = 1"))  # fmt: skip
    outcome = run_flow(config, as_of=date(2024, 11, 30))
    [failure] = outcome.failed_files
    assert (
        f"azure-query {SCOPE}: still throttled after retries (HTTP 429: Too many requests. Please retry.)"
        in str(failure["error"])
    )
