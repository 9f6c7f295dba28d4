"""The Cost Management fake, driven through the real azure-mgmt-costmanagement client and azure-identity.

These tests pin what the Azure connector will rely on: the SDK serialises the query as the fake expects, parses
its answer into ``QueryResult``, follows ``nextLink`` only when asked (``client.send_request`` with the same
body), and what azure-core's default ``RetryPolicy`` does with Cost Management's 429s: a 429 that carries only
``x-ms-ratelimit-microsoft.costmanagement-*-retry-after`` is **not** retried (this query is a POST, and azure-core
retries a POST 429 only when a standard ``Retry-After`` is present), while ``Retry-After: n`` is waited for and
retried (3 times at most, ``retry_status``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.rest import HttpRequest, HttpResponse
from azure.identity import DefaultAzureCredential
from azure.mgmt.costmanagement import CostManagementClient
from azure.mgmt.costmanagement.models import (
    QueryAggregation,
    QueryDataset,
    QueryDefinition,
    QueryGrouping,
    QueryResult,
    QueryTimePeriod,
)
from azure_query_server import (
    CostQueryServer,
    FakeManagedIdentityEndpoint,
    cost_query_server_fixture,  # noqa: F401
    managed_identity_fixture,  # noqa: F401
)

SUB = "subscriptions/00000000-0000-0000-0000-0000000000aa"
QPU_RETRY_AFTER = "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after"

RECORDS: list[dict[str, Any]] = [
    {"date": "2024-11-03", "cost": 1.5, "ResourceGroupName": "rg-a", "tags": {"po": "PO-1001"}},
    {"date": "2024-11-03", "cost": 0.25, "ResourceGroupName": "rg-a", "tags": {"PO": "PO-1002"}},
    {"date": "2024-11-03", "cost": 2.0, "ResourceGroupName": "rg-b"},
    {"date": "2024-11-04", "cost": 3.0, "ResourceGroupName": "rg-a", "tags": {"po": "PO-1001"}},
    {
        "date": "2024-11-04",
        "cost": 4.0,
        "ResourceGroupName": "rg-b",
        "tags": {"po": "PO-1001", "env": "prod"},
    },
    {"date": "2024-11-04", "cost": 0.5, "ResourceGroupName": "rg-b", "tags": {"env": "dev"}},
    # Outside the queried period on both sides: must not be counted.
    {"date": "2024-11-02", "cost": 100.0, "ResourceGroupName": "rg-a"},
    {"date": "2024-11-05", "cost": 100.0, "ResourceGroupName": "rg-b"},
]


class StaticCredential:
    """A TokenCredential for the tests that are not about authentication."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("static-test-token", int(time.time()) + 3600)


def make_client(server: CostQueryServer, credential: Any = None) -> CostManagementClient:
    return CostManagementClient(credential or StaticCredential(), base_url=server.base_url)


def definition(*grouping: QueryGrouping, query_type: str = "ActualCost") -> QueryDefinition:
    """Daily PreTaxCost for 2024-11-03 .. 2024-11-04, as the connector asks for it."""
    return QueryDefinition(
        type=query_type,
        timeframe="Custom",
        time_period=QueryTimePeriod(
            from_property=dt.datetime(2024, 11, 3, tzinfo=dt.UTC),
            to=dt.datetime(2024, 11, 4, 23, 59, 59, tzinfo=dt.UTC),
        ),
        dataset=QueryDataset(
            granularity="Daily",
            aggregation={"totalCost": QueryAggregation(name="PreTaxCost", function="Sum")},
            grouping=list(grouping),
        ),
    )


def usage(client: CostManagementClient, query: QueryDefinition) -> QueryResult:
    """``client.query.usage`` on :data:`SUB` (typed ``QueryResult | None``; a 200 always has a body)."""
    result = client.query.usage(SUB, query, enforce_https=False)
    assert result is not None
    return result


def all_pages(client: CostManagementClient, scope: str, query: QueryDefinition) -> list[QueryResult]:
    """The first page from ``query.usage``, then each ``nextLink`` POSTed with the same body."""
    first = client.query.usage(scope, query, enforce_https=False)
    assert first is not None
    pages = [first]
    while pages[-1].next_link:
        response = client.send_request(
            HttpRequest("POST", pages[-1].next_link, json=query.as_dict()), enforce_https=False
        )
        response.raise_for_status()
        pages.append(QueryResult(response.json()))
    return pages


def column_names(result: QueryResult) -> list[str | None]:
    return [column.name for column in result.columns or []]


def test_daily_costs_grouped_by_resource_group(cost_query_server: CostQueryServer) -> None:
    cost_query_server.set_records(SUB, RECORDS)
    result = usage(
        make_client(cost_query_server), definition(QueryGrouping(type="Dimension", name="ResourceGroupName"))
    )

    assert column_names(result) == ["PreTaxCost", "UsageDate", "ResourceGroupName", "Currency"]
    assert [column.type for column in result.columns or []] == ["Number", "Number", "String", "String"]
    assert result.rows == [
        [1.75, 20241103, "rg-a", "USD"],
        [2.0, 20241103, "rg-b", "USD"],
        [3.0, 20241104, "rg-a", "USD"],
        [4.5, 20241104, "rg-b", "USD"],
    ]
    assert result.next_link is None
    (request,) = cost_query_server.requests
    assert request.method == "POST"
    assert request.path == f"/{SUB}/providers/Microsoft.CostManagement/query"
    assert request.query == {"api-version": "2025-03-01"}
    assert request.authorization == "Bearer static-test-token"
    assert request.body == {
        "type": "ActualCost",
        "timeframe": "Custom",
        "timePeriod": {"from": "2024-11-03T00:00:00Z", "to": "2024-11-04T23:59:59Z"},
        "dataset": {
            "granularity": "Daily",
            "aggregation": {"totalCost": {"name": "PreTaxCost", "function": "Sum"}},
            "grouping": [{"type": "Dimension", "name": "ResourceGroupName"}],
        },
    }


def test_amortized_cost_uses_the_amortized_amount_when_a_record_has_one(
    cost_query_server: CostQueryServer,
) -> None:
    cost_query_server.set_records(
        SUB,
        [
            {"date": "2024-11-03", "cost": 9.0, "actual_cost": 30.0, "amortized_cost": 1.0},
            {"date": "2024-11-03", "cost": 2.0},
        ],
    )
    client = make_client(cost_query_server)
    actual = usage(client, definition())
    amortized = usage(client, definition(query_type="AmortizedCost"))

    assert actual.rows == [[32.0, 20241103, "USD"]]
    assert amortized.rows == [[3.0, 20241103, "USD"]]


def test_next_link_pages_hold_every_row_once(cost_query_server: CostQueryServer) -> None:
    cost_query_server.set_records(SUB, RECORDS)
    cost_query_server.page_size = 1
    query = definition(QueryGrouping(type="Dimension", name="ResourceGroupName"))

    pages = all_pages(make_client(cost_query_server), SUB, query)

    assert [len(page.rows or []) for page in pages] == [1, 1, 1, 1]
    assert [row for page in pages for row in page.rows or []] == [
        [1.75, 20241103, "rg-a", "USD"],
        [2.0, 20241103, "rg-b", "USD"],
        [3.0, 20241104, "rg-a", "USD"],
        [4.5, 20241104, "rg-b", "USD"],
    ]
    assert all(column_names(page) == column_names(pages[0]) for page in pages)
    assert [page.next_link for page in pages[:-1]] == [
        f"{cost_query_server.base_url}/{SUB}/providers/Microsoft.CostManagement/query"
        f"?api-version=2025-03-01&$skiptoken={n}"
        for n in (1, 2, 3)
    ]
    requests = cost_query_server.query_requests()
    assert [r.query.get("$skiptoken") for r in requests] == [None, "1", "2", "3"]
    assert all(r.body == query.as_dict() for r in requests)


def test_tag_key_grouping_answers_tag_key_and_tag_value_columns(cost_query_server: CostQueryServer) -> None:
    cost_query_server.set_records(SUB, RECORDS)
    result = usage(make_client(cost_query_server), definition(QueryGrouping(type="TagKey", name="po")))

    assert column_names(result) == ["PreTaxCost", "UsageDate", "TagKey", "TagValue", "Currency"]
    # Keys match case-insensitively but come back as stored; untagged costs come back with null key and value.
    assert result.rows == [
        [2.0, 20241103, None, None, "USD"],
        [0.25, 20241103, "PO", "PO-1002", "USD"],
        [1.5, 20241103, "po", "PO-1001", "USD"],
        [0.5, 20241104, None, None, "USD"],
        [7.0, 20241104, "po", "PO-1001", "USD"],
    ]


def test_tag_key_after_a_dimension_keeps_the_grouping_order(cost_query_server: CostQueryServer) -> None:
    cost_query_server.set_records(SUB, RECORDS)
    query = definition(
        QueryGrouping(type="Dimension", name="ResourceGroupName"), QueryGrouping(type="TagKey", name="env")
    )
    result = usage(make_client(cost_query_server), query)

    assert column_names(result) == [
        "PreTaxCost",
        "UsageDate",
        "ResourceGroupName",
        "TagKey",
        "TagValue",
        "Currency",
    ]
    assert [row for row in result.rows or [] if row[1] == 20241104] == [
        [3.0, 20241104, "rg-a", None, None, "USD"],
        [0.5, 20241104, "rg-b", "env", "dev", "USD"],
        [4.0, 20241104, "rg-b", "env", "prod", "USD"],
    ]


def test_a_429_with_only_the_qpu_header_is_not_retried_by_the_default_policy(
    cost_query_server: CostQueryServer,
) -> None:
    cost_query_server.set_records(SUB, RECORDS)
    cost_query_server.throttle_next(1, {QPU_RETRY_AFTER: "1"})
    client = make_client(cost_query_server)

    started = time.monotonic()
    with pytest.raises(HttpResponseError) as raised:
        usage(client, definition())
    assert time.monotonic() - started < 0.9  # no wait: azure-core does not read the x-ms-ratelimit headers
    assert raised.value.status_code == 429
    response = raised.value.response
    assert isinstance(response, HttpResponse)
    assert response.headers[QPU_RETRY_AFTER] == "1"
    assert "Retry-After" not in response.headers
    assert raised.value.error is not None and raised.value.error.code == "429"
    assert len(cost_query_server.requests) == 1

    # The caller (or a custom policy) waits as told and asks again: that one succeeds.
    result = usage(client, definition())
    assert result.rows == [[3.75, 20241103, "USD"], [7.5, 20241104, "USD"]]
    assert len(cost_query_server.requests) == 2


def test_a_429_with_retry_after_is_waited_for_and_retried_by_the_sdk(
    cost_query_server: CostQueryServer,
) -> None:
    cost_query_server.set_records(SUB, RECORDS)
    cost_query_server.throttle_next(1, {"Retry-After": "1"})

    started = time.monotonic()
    result = usage(make_client(cost_query_server), definition())

    assert 0.9 <= time.monotonic() - started < 5
    assert result.rows == [[3.75, 20241103, "USD"], [7.5, 20241104, "USD"]]
    assert len(cost_query_server.requests) == 2
    assert cost_query_server.pending_throttles == 0


def test_default_azure_credential_gets_its_token_from_the_fake_managed_identity(
    cost_query_server: CostQueryServer, managed_identity: FakeManagedIdentityEndpoint
) -> None:
    cost_query_server.set_records(SUB, RECORDS)
    client = make_client(cost_query_server, DefaultAzureCredential())

    usage(client, definition())
    usage(client, definition())

    # One token (the credential caches it), asked for ARM, used on both calls.
    (issued,) = managed_identity.tokens_issued
    assert issued.resource == "https://management.azure.com"
    assert issued.query["api-version"] == "2019-08-01"
    assert cost_query_server.bearer_tokens == [issued.token, issued.token]


def test_an_unknown_token_is_rejected_with_401(cost_query_server: CostQueryServer) -> None:
    cost_query_server.accepted_tokens = {"the-only-good-token"}

    with pytest.raises(ClientAuthenticationError) as raised:
        usage(make_client(cost_query_server), definition())

    assert raised.value.status_code == 401
    assert cost_query_server.bearer_tokens == ["static-test-token"]


def test_a_request_without_authorization_is_rejected_with_401(cost_query_server: CostQueryServer) -> None:
    request = urllib.request.Request(
        f"{cost_query_server.base_url}/{SUB}/providers/Microsoft.CostManagement/query?api-version=2025-03-01",
        data=json.dumps(definition().as_dict()).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)

    assert raised.value.code == 401
    assert raised.value.headers["WWW-Authenticate"].startswith("Bearer ")
    assert json.loads(raised.value.read())["error"]["code"] == "AuthenticationFailed"
    assert cost_query_server.requests[0].authorization is None
