"""Source `azure_query`: daily cost of one scope from the Cost Management query API (azure-mgmt-costmanagement).

The API is small and throttled per tenant, so a night makes one query per month (plus pages): daily rows grouped by
the configured dimensions and tag keys. The SDK does not follow `nextLink`; this module does. Azure's 429s often
carry only `x-ms-ratelimit-microsoft.costmanagement-*-retry-after` headers, which azure-core's retry policy ignores:
ours reads them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from azure.core.pipeline.policies import RetryPolicy

from finrecon.connectors._service_errors import answer, one_line
from finrecon.models.config import AzureQuerySource

_RATE_LIMIT_PREFIX = "x-ms-ratelimit-microsoft.costmanagement-"


class QueryError(RuntimeError):
    """A query the API refused or could not answer; the message names the scope (never credentials)."""


class CostManagementRetryPolicy(RetryPolicy):
    """azure-core's retry policy, plus: a 429 on the query POST is retried (azure-core retries POSTs only with a
    standard Retry-After), waiting the longest `x-ms-ratelimit-microsoft.costmanagement-*-retry-after` when there is
    no standard header; a wait above `max_retry_after` is not waited for (the run fails that month instead)."""

    def __init__(self, *, max_retry_after: float = 300.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_retry_after = max_retry_after
        # The query POST only reads: a reset, a timeout or a 502 after it was sent is safe to send again
        # (azure-core retries a POST only on 500, 503 and 504 answers).
        self._method_whitelist = self._method_whitelist | {"POST"}

    def get_retry_after(self, response: Any) -> float | None:
        standard = super().get_retry_after(response)
        if standard is not None:
            return float(standard)
        waits = []
        for name, value in response.http_response.headers.items():
            lowered = name.lower()
            if lowered.startswith(_RATE_LIMIT_PREFIX) and lowered.endswith("-retry-after"):
                try:
                    waits.append(float(self.parse_retry_after(value)))
                except (TypeError, ValueError):
                    continue
        return max(waits) if waits else None

    def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
        if response.http_response.status_code == 429:
            wait = self.get_retry_after(response)
            return bool(settings["total"]) and (wait is None or wait <= self.max_retry_after)
        return bool(super().is_retry(settings, response))


def cost_client(source: AzureQuerySource) -> Any:
    """A Cost Management client with DefaultAzureCredential (environment, managed identity, CLI …)."""
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.costmanagement import CostManagementClient

    policy = CostManagementRetryPolicy(
        retry_total=source.max_retries,
        retry_status=source.max_retries,
        retry_connect=source.max_retries,
        retry_read=source.max_retries,
        retry_backoff_factor=source.retry_backoff_seconds,
    )
    options: dict[str, Any] = {
        "retry_policy": policy,
        "connection_timeout": source.connect_timeout_seconds,
        "read_timeout": source.read_timeout_seconds,
    }
    if source.base_url:
        options["base_url"] = source.base_url
    return CostManagementClient(DefaultAzureCredential(), **options)


def month_bounds(month_start: date) -> tuple[date, date]:
    """First and last day of the month starting at `month_start`."""
    following = (month_start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return month_start, following - timedelta(days=1)


def recent_months(today: date, count: int) -> list[date]:
    """First days of this month and the `count - 1` before it, oldest first."""
    firsts = [today.replace(day=1)]
    while len(firsts) < count:
        firsts.append((firsts[-1] - timedelta(days=1)).replace(day=1))
    return sorted(firsts)


def query_month(client: Any, source: AzureQuerySource, month_start: date) -> list[dict[str, Any]]:
    """Daily cost of the scope in one month, one dict per row (column name → value), every page followed."""
    from azure.core.exceptions import AzureError
    from azure.core.rest import HttpRequest
    from azure.mgmt.costmanagement.models import (
        QueryAggregation,
        QueryDataset,
        QueryDefinition,
        QueryGrouping,
        QueryTimePeriod,
    )

    first, last = month_bounds(month_start)
    cost_column = "PreTaxCost" if source.dataset == "ActualCost" else "Cost"
    grouping = [QueryGrouping(type="Dimension", name=name) for name in source.group_by]
    grouping += [QueryGrouping(type="TagKey", name=key) for key in source.tag_keys]
    definition = QueryDefinition(
        type=source.dataset,
        timeframe="Custom",
        time_period=QueryTimePeriod(
            from_property=datetime.combine(first, time.min, UTC),
            to=datetime.combine(last, time(23, 59, 59), UTC),
        ),
        dataset=QueryDataset(
            granularity="Daily",
            aggregation={"totalCost": QueryAggregation(name=cost_column, function="Sum")},
            grouping=grouping,
        ),
    )
    insecure = {"enforce_https": False} if (source.base_url or "").startswith("http://") else {}
    rows: list[dict[str, Any]] = []
    try:
        page = client.query.usage(source.scope, definition, **insecure)
        columns = [c.name for c in page.columns or []]
        rows += [dict(zip(columns, row, strict=True)) for row in page.rows or []]
        next_link = page.next_link
        while next_link:
            response = client.send_request(
                HttpRequest("POST", next_link, json=definition.as_dict()), **insecure
            )
            response.raise_for_status()
            body = response.json().get("properties", {})
            columns = [c["name"] for c in body.get("columns", [])]
            rows += [dict(zip(columns, row, strict=True)) for row in body.get("rows", [])]
            next_link = body.get("nextLink")
    except AzureError as err:
        # the month is in the input's name (run_files.file_path): one message for months failing alike
        raise QueryError(f"azure-query {source.scope}: {_describe(err, source)}") from None
    return rows


def _describe(err: Exception, source: AzureQuerySource) -> str:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    base_url = source.base_url or "https://management.azure.com"
    if isinstance(err, ClientAuthenticationError) and err.status_code is None:  # no token: nothing was sent
        return (
            f"no Azure credential worked ({type(err).__name__}); run `az login`, set AZURE_CLIENT_ID, "
            "AZURE_TENANT_ID and AZURE_CLIENT_SECRET, or use a managed identity"
        )
    if isinstance(err, ClientAuthenticationError):
        return (
            f"credentials refused ({_answer(err)}): expired or revoked; refresh them (`az login`, a new client "
            "secret or the managed identity) and check what DefaultAzureCredential finds, then rerun"
        )
    if isinstance(err, ServiceRequestError):
        return (
            f"cannot reach Cost Management at {base_url} "
            f"({type(err).__name__}); check the source's `base_url`, the network and any proxy, then rerun"
        )
    if isinstance(err, ServiceResponseError):  # reset or timed out after the request was sent, every retry
        return (
            f"Cost Management at {base_url} kept failing mid-response ({type(err).__name__}) after "
            f"{source.max_retries} retries; check the network and any proxy (or raise `read_timeout_seconds`), "
            "then rerun"
        )
    if isinstance(err, HttpResponseError):
        return _describe_answer(err, source)
    return f"{type(err).__name__}: {one_line(err)}"


def _describe_answer(err: Any, source: AzureQuerySource) -> str:
    """An answer from Cost Management as `what (HTTP status code: message); fix`."""
    status, said = err.status_code or 0, _answer(err)
    if status == 429:
        return f"still throttled after retries ({said}); Cost Management limits queries per tenant: try later"
    if status == 403:
        return f"access denied ({said}); the identity needs Cost Management Reader on the scope"
    if status == 404:
        return f"not found ({said}); check the source's `scope` (e.g. subscriptions/<id>) and `base_url`"
    if status >= 500:
        return (
            f"still failing after {source.max_retries} retries ({said}); a service-side problem: rerun later"
        )
    if status == 400:
        return f"the query was refused ({said}); check the source's `dataset`, `group_by` and `tag_keys`"
    return f"Cost Management refused the request ({said})"


def _answer(err: Any) -> str:
    """HTTP status, and ARM's error code and message from the body (`{"error": {"code", "message"}}`)."""
    error = getattr(err, "error", None)
    message = getattr(error, "message", None) or getattr(err, "reason", None)
    return answer(err.status_code, getattr(error, "code", None), message)
