"""Loopback fakes of Azure Cost Management's query API and of the App Service managed-identity endpoint.

Why a server and not mocks: the Azure connector goes through the real ``azure-mgmt-costmanagement`` client
(``CostManagementClient.query.usage``) and the real ``azure-identity`` credentials. Their behaviour that the
connector relies on lives in the HTTP pipeline: how the body is serialised, how ``QueryResult`` is parsed, how
``nextLink`` pages are fetched, what the built-in ``RetryPolicy`` does with a 429, which token ends up in the
``Authorization`` header. A server on 127.0.0.1 that speaks the documented wire format tests exactly that path,
unchanged from production except for ``base_url`` (and ``enforce_https=False`` per call, since it is plain
HTTP).

:class:`CostQueryServer` answers ``POST /{scope}/providers/Microsoft.CostManagement/query?api-version=...``
from cost records that the test sets per scope (``set_records``). It filters them by ``timePeriod``
(inclusive days), groups them by date, the requested dimensions and tag key, sums the requested aggregation,
and answers ``{"id","name","type","location","sku","eTag","properties":{"nextLink","columns","rows"}}`` pages
of ``page_size`` rows, with ``nextLink`` = the same URL plus ``$skiptoken=<row offset>``; a POST of the same
body to ``nextLink`` returns the next page (the SDK's ``query.usage`` does not follow it by itself).

Records are plain dicts::

    {"date": "2024-11-03", "cost": 1.5, "currency": "USD", "ResourceGroupName": "rg-a",
     "ServiceName": "Virtual Machines", "SubscriptionId": "...", "tags": {"po": "PO-1001"}}

* ``date`` (``YYYY-MM-DD``) and ``cost`` are required; ``currency`` defaults to ``USD``.
* ``ActualCost`` and ``AmortizedCost`` queries both sum ``cost``, unless the record carries
  ``actual_cost`` / ``amortized_cost``, which then win for that query type (so a reservation purchase can be
  cost on one side and spread on the other). ``cost_usd`` feeds the ``CostUSD`` / ``PreTaxCostUSD``
  aggregations (default: the cost), ``quantity`` feeds ``UsageQuantity`` (default 0).
* Every other key except ``tags`` is a dimension, looked up case-insensitively (as Azure does); a record
  without the dimension groups under ``""``.

Wire details emulated, and where they come from:

* Columns are ``[<aggregation names>..., UsageDate | BillingMonth, <groupings in request order>..., Currency]``:
  the aggregation column is named by the aggregation's ``name`` (``PreTaxCost``, ``Cost``), not its alias;
  ``UsageDate`` is a ``Number`` ``YYYYMMDD`` for ``Daily``; ``BillingMonth`` a ``Datetime`` string
  ``YYYY-MM-01T00:00:00`` for ``Monthly``; no date column for granularity ``None``. A dimension column is
  named as requested (Azure may normalise the case: read columns by case-insensitive name, not position).
* A ``TagKey`` grouping yields **two** ``String`` columns, ``TagKey`` and ``TagValue``, at the grouping's
  position. Rows carry the tag key as stored on the resource (matched case-insensitively to the requested name)
  and its value; costs without that tag carry ``null`` in both (``untagged_value``). Sources: Microsoft's
  Cost Management team on Azure/azure-sdk-for-java#24285 ("When Query API is called with group by TagKeys, the
  response will have both TagKey and TagValue (by design). And if you have null values for TagKeys it is
  expected to see null values in the response."); a recorded real response in a public repository's test mock
  with columns ``PreTaxCost, BillingMonth, ServiceName, TagKey, TagValue, Currency`` and rows like
  ``[0.164, "2023-03-01T00:00:00", "Azure Monitor", "environment", "build", "CHF"]``; and
  webdevops/azure-resourcemanager-exporter, which reads a ``TagKey`` grouping back from the ``TagValue``
  column and guards against ``nil`` cells. More than one ``TagKey`` grouping is answered with 400 here: how
  Azure lays that out is not documented (#24285 reports only the first one filled).
* Only ``timeframe: "Custom"`` with ``timePeriod`` is supported (what the connector sends); other timeframes
  get a 400 that says so, rather than guessed dates. ``filter`` supports ``and`` / ``or`` / ``not`` and
  ``dimensions`` / ``tags`` with operator ``In`` (case-insensitive values).
* Scopes match exactly (leading/trailing ``/`` and case ignored): records set for a resource group are not
  rolled up into its subscription. An unknown scope answers 200 with no rows.
* Row order is deterministic (date, then grouping values); Azure's is unspecified.

Authentication: every request must carry ``Authorization: Bearer <token>``, else 401 with ARM's
``AuthenticationFailed`` error and a ``WWW-Authenticate`` challenge. If ``accepted_tokens`` is set, any other
token gets 401 ``InvalidAuthenticationToken``. The header is recorded in ``requests`` either way.

Throttling: ``throttle_next(count, headers)`` answers the next ``count`` queries (after authentication) with
HTTP 429 ``{"error":{"code":"429","message":"Too many requests. Please retry."}}`` and exactly the given
headers, e.g. only ``x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after`` (no standard ``Retry-After``).
Note that azure-core's default ``RetryPolicy`` does **not** retry such a 429 on this POST at all; see
``tests/connectors/test_azure_query_server.py``.

:class:`FakeManagedIdentityEndpoint` implements the App Service / Azure Functions managed-identity protocol that
``azure.identity.ManagedIdentityCredential`` (and so ``DefaultAzureCredential``) uses when ``IDENTITY_ENDPOINT``
and ``IDENTITY_HEADER`` are set, as implemented by MSAL's ``_obtain_token_on_app_service``: ``GET
<IDENTITY_ENDPOINT>?api-version=2019-08-01&resource=<resource>`` (plus ``client_id`` / ``mi_res_id`` /
``object_id`` for a user-assigned identity) with header ``X-IDENTITY-HEADER: <IDENTITY_HEADER>``, answered with
``{"access_token", "expires_on" (epoch seconds, a string), "resource", "token_type"}``.

The pytest fixtures ``cost_query_server`` and ``managed_identity`` live here (not in a conftest), so that a test
module opts in with one import::

    from azure_query_server import cost_query_server_fixture, managed_identity_fixture  # noqa: F401

The functions are named ``*_fixture`` and registered under the short name (``@pytest.fixture(name=...)``):
importing a fixture under the same name as the test parameter that uses it makes ruff report F811
("redefinition of unused name") at every such test.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

import pytest

QUERY_SUFFIX = "/providers/microsoft.costmanagement/query"
THROTTLE_BODY: dict[str, Any] = {"error": {"code": "429", "message": "Too many requests. Please retry."}}
DEFAULT_PAGE_SIZE = 1000
# serve_forever's poll interval: ``stop()`` waits up to this long (the default 0.5 s made each test 0.5 s slower).
_POLL_INTERVAL = 0.05
MANAGED_IDENTITY_API_VERSION = "2019-08-01"
# Keys of a record that are not dimensions.
_RESERVED_KEYS = frozenset(
    {"date", "cost", "currency", "tags", "actual_cost", "amortized_cost", "cost_usd", "quantity"}
)
_COST_AGGREGATIONS = frozenset({"pretaxcost", "cost"})
_USD_AGGREGATIONS = frozenset({"pretaxcostusd", "costusd"})
_QUERY_TYPES = frozenset({"usage", "actualcost", "amortizedcost"})

# Environment variables that would make azure-identity pick another credential (or another managed-identity
# flavour) before, or instead of, the App Service endpoint; :func:`managed_identity` removes them all.
AZURE_IDENTITY_ENV_VARS = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TOKEN_CREDENTIALS",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)


class RecordedRequest(NamedTuple):
    """One HTTP request as the fake saw it; a tuple ``(method, path, query, body, authorization)``."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None


class QueryError(Exception):
    """A request the fake answers with an ARM error body (``{"error": {"code", "message"}}``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def arm_error(code: str, message: str) -> dict[str, Any]:
    """ARM's error body."""
    return {"error": {"code": code, "message": message}}


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def _lookup(mapping: Mapping[str, Any], name: str) -> tuple[str, Any] | None:
    """``(stored key, value)`` for ``name`` looked up case-insensitively, as Azure compares names."""
    wanted = name.casefold()
    for key, value in mapping.items():
        if key.casefold() == wanted:
            return key, value
    return None


def _parse_day(value: Any, field: str) -> dt.date:
    if not isinstance(value, str):
        raise QueryError(400, "BadRequest", f"Invalid query definition: timePeriod.{field} is required")
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            raise QueryError(400, "BadRequest", f"Invalid timePeriod.{field}: {value!r}") from None


def _sort_key(row: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    return tuple((0, "") if value is None else (1, value) for value in row)


class _Grouping(NamedTuple):
    kind: str  # "dimension" or "tag"
    name: str


class CostQueryServer:
    """The fake Cost Management query endpoint on 127.0.0.1 (a daemon-threaded ``ThreadingHTTPServer``).

    ``base_url`` goes to ``CostManagementClient(credential, base_url=...)``. ``requests`` records every request
    (queries, rejected and throttled ones included). ``page_size`` (default 1000), ``accepted_tokens``
    (``None``: any bearer token), ``untagged_value`` (``None``: JSON null in TagKey/TagValue for untagged costs)
    and ``success_headers`` (extra headers on 200 answers) may be changed at any time.
    """

    def __init__(self, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        self.page_size = page_size
        self.accepted_tokens: set[str] | None = None
        self.untagged_value: str | None = None
        self.success_headers: dict[str, str] = {}
        self.requests: list[RecordedRequest] = []
        self._records: dict[str, list[dict[str, Any]]] = {}
        self._throttles: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._httpd = _QueryHTTPServer(self)
        self.port: int = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name="azure-query-fake",
            daemon=True,
        )
        self._thread.start()

    # -- test API -------------------------------------------------------------------------------------------
    def set_records(self, scope: str, records: Sequence[Mapping[str, Any]]) -> None:
        """Replace the cost records of ``scope`` (e.g. ``subscriptions/<id>``), validating their shape."""
        checked = []
        for record in records:
            if "date" not in record or "cost" not in record:
                raise ValueError(f"a cost record needs 'date' and 'cost': {record!r}")
            dt.date.fromisoformat(str(record["date"]))
            checked.append(dict(record))
        with self._lock:
            self._records[self._scope_key(scope)] = checked

    def throttle_next(self, count: int, headers: Mapping[str, str]) -> None:
        """Answer the next ``count`` authenticated queries with 429 and exactly ``headers``."""
        with self._lock:
            self._throttles.extend(dict(headers) for _ in range(count))

    @property
    def pending_throttles(self) -> int:
        """How many 429 answers are still queued."""
        with self._lock:
            return len(self._throttles)

    @property
    def bearer_tokens(self) -> list[str | None]:
        """The bearer token of every recorded request (``None`` where there was none)."""
        return [_bearer_token(r.authorization) for r in self.requests]

    def query_requests(self) -> list[RecordedRequest]:
        """The recorded POSTs to a query path."""
        return [r for r in self.requests if r.method == "POST" and r.path.lower().endswith(QUERY_SUFFIX)]

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> CostQueryServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling (called from handler threads) -----------------------------------------------------
    @staticmethod
    def _scope_key(scope: str) -> str:
        return scope.strip("/").casefold()

    def handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        """Answer one request: ``(status, headers, JSON body)``."""
        parts = urlsplit(raw_path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        authorization = headers.get("authorization")
        try:
            parsed_body: Any = json.loads(body) if body else None
        except ValueError:
            parsed_body = body.decode("utf-8", "replace")
        with self._lock:
            self.requests.append(RecordedRequest(method, parts.path, query, parsed_body, authorization))

        token = _bearer_token(authorization)
        if token is None:
            challenge = (
                'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", '
                "error_description=\"The authentication failed because of missing 'Authorization' header.\""
            )
            return (
                401,
                {"WWW-Authenticate": challenge},
                arm_error(
                    "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
                ),
            )
        if self.accepted_tokens is not None and token not in self.accepted_tokens:
            return (
                401,
                {},
                arm_error(
                    "InvalidAuthenticationToken", "The access token is invalid (not issued to this fake)."
                ),
            )
        if method != "POST" or not parts.path.lower().endswith(QUERY_SUFFIX):
            return 404, {}, arm_error("NotFound", f"The fake only serves POST .../{QUERY_SUFFIX.lstrip('/')}")
        with self._lock:
            throttle = self._throttles.pop(0) if self._throttles else None
        if throttle is not None:
            return 429, throttle, THROTTLE_BODY
        if "api-version" not in query:
            return (
                400,
                {},
                arm_error("MissingApiVersionParameter", "The api-version query parameter is required."),
            )

        scope = parts.path[: -len(QUERY_SUFFIX)].strip("/")
        try:
            skip = int(query.get("$skiptoken", "0"))
            columns, rows = self._run_query(scope, parsed_body)
        except QueryError as error:
            return error.status, {}, arm_error(error.code, error.message)
        except ValueError:
            return 400, {}, arm_error("BadRequest", f"Invalid $skiptoken: {query.get('$skiptoken')!r}")

        page_size = max(1, self.page_size)
        end = skip + page_size
        next_link = None
        if end < len(rows):
            next_link = (
                f"{self.base_url}/{scope}/providers/Microsoft.CostManagement/query"
                f"?api-version={query['api-version']}&$skiptoken={end}"
            )
        name = str(uuid.uuid4())
        payload = {
            "id": f"{scope}/providers/Microsoft.CostManagement/query/{name}",
            "name": name,
            "type": "Microsoft.CostManagement/query",
            "location": None,
            "sku": None,
            "eTag": None,
            "properties": {"nextLink": next_link, "columns": columns, "rows": rows[skip:end]},
        }
        return 200, dict(self.success_headers), payload

    def _run_query(self, scope: str, body: Any) -> tuple[list[dict[str, str]], list[list[Any]]]:
        if not isinstance(body, dict):
            raise QueryError(400, "BadRequest", "Invalid query definition: the body must be a JSON object")
        query_type = str(body.get("type", ""))
        if query_type.casefold() not in _QUERY_TYPES:
            raise QueryError(400, "BadRequest", f"Invalid query definition: unsupported type {query_type!r}")
        if str(body.get("timeframe", "")).casefold() != "custom":
            raise QueryError(
                400, "BadRequest", f"The fake supports only timeframe 'Custom', got {body.get('timeframe')!r}"
            )
        period = body.get("timePeriod") or {}
        first, last = _parse_day(period.get("from"), "from"), _parse_day(period.get("to"), "to")
        dataset = body.get("dataset")
        if not isinstance(dataset, dict):
            raise QueryError(400, "BadRequest", "Invalid query definition: dataset is required")

        granularity = str(dataset.get("granularity") or "None").casefold()
        if granularity not in {"daily", "monthly", "none"}:
            raise QueryError(400, "BadRequest", f"Invalid granularity {dataset.get('granularity')!r}")
        aggregations = self._aggregations(dataset.get("aggregation"))
        groupings = self._groupings(dataset.get("grouping"))
        row_filter = dataset.get("filter")

        with self._lock:
            records = list(self._records.get(self._scope_key(scope), []))
        sums: dict[tuple[Any, ...], list[float]] = {}
        for record in records:
            day = dt.date.fromisoformat(str(record["date"]))
            if not first <= day <= last or (row_filter and not self._matches(row_filter, record)):
                continue
            key: list[Any] = []
            if granularity == "daily":
                key.append(int(day.strftime("%Y%m%d")))
            elif granularity == "monthly":
                key.append(day.replace(day=1).strftime("%Y-%m-%dT00:00:00"))
            for grouping in groupings:
                key.extend(self._group_values(grouping, record))
            key.append(str(record.get("currency") or "USD"))
            totals = sums.setdefault(tuple(key), [0.0] * len(aggregations))
            for i, aggregation in enumerate(aggregations):
                totals[i] += self._measure(aggregation, query_type, record)

        columns = [{"name": name, "type": "Number"} for name in aggregations]
        if granularity == "daily":
            columns.append({"name": "UsageDate", "type": "Number"})
        elif granularity == "monthly":
            columns.append({"name": "BillingMonth", "type": "Datetime"})
        for grouping in groupings:
            if grouping.kind == "tag":
                columns += [{"name": "TagKey", "type": "String"}, {"name": "TagValue", "type": "String"}]
            else:
                columns.append({"name": grouping.name, "type": "String"})
        columns.append({"name": "Currency", "type": "String"})
        rows = [[*totals, *key] for key, totals in sorted(sums.items(), key=lambda item: _sort_key(item[0]))]
        return columns, rows

    @staticmethod
    def _aggregations(spec: Any) -> list[str]:
        if not isinstance(spec, dict) or not spec:
            raise QueryError(
                400, "BadRequest", "The fake needs dataset.aggregation (e.g. totalCost: PreTaxCost/Sum)"
            )
        names = []
        for alias, aggregation in spec.items():
            if not isinstance(aggregation, dict) or str(aggregation.get("function", "")).casefold() != "sum":
                raise QueryError(
                    400, "BadRequest", f"Invalid aggregation {alias!r}: only function 'Sum' is supported"
                )
            name = str(aggregation.get("name", ""))
            if name.casefold() not in _COST_AGGREGATIONS | _USD_AGGREGATIONS | {"usagequantity"}:
                raise QueryError(
                    400, "BadRequest", f"Invalid query definition: invalid aggregation name {name!r}"
                )
            names.append(name)
        return names

    @staticmethod
    def _groupings(spec: Any) -> list[_Grouping]:
        groupings = []
        for item in spec or []:
            kind, name = str(item.get("type", "")).casefold(), str(item.get("name", ""))
            if kind not in {"dimension", "tagkey"} or not name:
                raise QueryError(400, "BadRequest", f"Invalid dataset grouping: {item!r}")
            groupings.append(_Grouping("tag" if kind == "tagkey" else "dimension", name))
        if sum(g.kind == "tag" for g in groupings) > 1:
            raise QueryError(400, "BadRequest", "The fake supports at most one TagKey grouping per query")
        return groupings

    def _group_values(self, grouping: _Grouping, record: Mapping[str, Any]) -> list[Any]:
        if grouping.kind == "tag":
            found = _lookup(record.get("tags") or {}, grouping.name)
            return [found[0], str(found[1])] if found else [self.untagged_value, self.untagged_value]
        found = _lookup({k: v for k, v in record.items() if k not in _RESERVED_KEYS}, grouping.name)
        return [str(found[1]) if found and found[1] is not None else ""]

    @staticmethod
    def _measure(aggregation: str, query_type: str, record: Mapping[str, Any]) -> float:
        cost = float(record["cost"])
        typed = {"actualcost": "actual_cost", "amortizedcost": "amortized_cost"}.get(query_type.casefold())
        if typed and record.get(typed) is not None:
            cost = float(record[typed])
        name = aggregation.casefold()
        if name in _USD_AGGREGATIONS:
            return float(record["cost_usd"]) if record.get("cost_usd") is not None else cost
        if name == "usagequantity":
            return float(record.get("quantity") or 0.0)
        return cost

    def _matches(self, node: Any, record: Mapping[str, Any]) -> bool:
        if not isinstance(node, dict):
            raise QueryError(400, "BadRequest", f"Invalid filter: {node!r}")
        results = []
        if node.get("and"):
            results.append(all(self._matches(child, record) for child in node["and"]))
        if node.get("or"):
            results.append(any(self._matches(child, record) for child in node["or"]))
        if node.get("not"):
            results.append(not self._matches(node["not"], record))
        for kind in ("dimensions", "tags"):
            comparison = node.get(kind)
            if not comparison:
                continue
            if str(comparison.get("operator", "")).casefold() != "in":
                raise QueryError(
                    400, "BadRequest", f"The fake supports only operator 'In', got {comparison!r}"
                )
            source = (record.get("tags") or {}) if kind == "tags" else record
            found = _lookup(source, str(comparison.get("name", "")))
            wanted = {str(v).casefold() for v in comparison.get("values") or []}
            results.append(found is not None and str(found[1]).casefold() in wanted)
        if not results:
            raise QueryError(400, "BadRequest", f"Invalid filter: {node!r}")
        return all(results)


def _send_json(
    handler: BaseHTTPRequestHandler, status: int, headers: Mapping[str, str], payload: Any
) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json; charset=utf-8")
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("x-ms-request-id", str(uuid.uuid4()))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


class _QueryHandler(BaseHTTPRequestHandler):
    server: _QueryHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads ``CostQueryServer.requests`` instead."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, extra, payload = self.server.fake.handle(self.command, self.path, headers, body)
        _send_json(self, status, extra, payload)

    do_POST = do_GET = do_PUT = do_DELETE = _serve


class _QueryHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: CostQueryServer) -> None:
        super().__init__(("127.0.0.1", 0), _QueryHandler)
        self.fake = fake


class IssuedToken(NamedTuple):
    """A token handed out by :class:`FakeManagedIdentityEndpoint`, and the query that asked for it."""

    token: str
    resource: str
    query: dict[str, str]


class FakeManagedIdentityEndpoint:
    """The App Service / Azure Functions managed-identity token endpoint, on 127.0.0.1.

    Point azure-identity at it with ``IDENTITY_ENDPOINT=<endpoint>`` and ``IDENTITY_HEADER=<header_secret>``
    (the :func:`managed_identity` fixture does). Each valid GET issues a fresh token ``mi-token-<n>-<random>``
    valid for ``expires_in`` seconds and appends it to ``tokens_issued``; ``requests`` records every request.
    A wrong or missing ``X-IDENTITY-HEADER`` gets 401, a missing ``resource`` or a wrong ``api-version`` 400,
    with App Service's ``{"statusCode", "message"}`` body.
    """

    def __init__(self, expires_in: int = 3600) -> None:
        self.expires_in = expires_in
        self.header_secret = secrets.token_hex(16)
        self.tokens_issued: list[IssuedToken] = []
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._httpd = _IdentityHTTPServer(self)
        self.port: int = self._httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}/msi/token"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": _POLL_INTERVAL},
            name="azure-mi-fake",
            daemon=True,
        )
        self._thread.start()

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str]) -> tuple[int, Any]:
        """Answer one token request: ``(status, JSON body)``."""
        parts = urlsplit(raw_path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            self.requests.append(
                RecordedRequest(method, parts.path, query, None, headers.get("authorization"))
            )
        if headers.get("x-identity-header") != self.header_secret:
            return 401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong."}
        if method != "GET" or parts.path != "/msi/token":
            return 404, {"statusCode": 404, "message": f"No such endpoint: {method} {parts.path}"}
        if query.get("api-version") != MANAGED_IDENTITY_API_VERSION:
            return 400, {
                "statusCode": 400,
                "message": f"Unsupported api-version {query.get('api-version')!r}.",
            }
        resource = query.get("resource")
        if not resource:
            return 400, {"statusCode": 400, "message": "The resource parameter is required."}
        with self._lock:
            token = f"mi-token-{len(self.tokens_issued) + 1}-{secrets.token_hex(8)}"
            self.tokens_issued.append(IssuedToken(token, resource, query))
        payload = {
            "access_token": token,
            "expires_on": str(int(time.time()) + self.expires_in),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": query.get("client_id", "00000000-0000-0000-0000-00000000f00d"),
        }
        return 200, payload

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeManagedIdentityEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _IdentityHandler(BaseHTTPRequestHandler):
    server: _IdentityHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads ``FakeManagedIdentityEndpoint.requests`` instead."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, payload = self.server.fake.handle(self.command, self.path, headers)
        _send_json(self, status, {}, payload)

    do_GET = do_POST = _serve


class _IdentityHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeManagedIdentityEndpoint) -> None:
        super().__init__(("127.0.0.1", 0), _IdentityHandler)
        self.fake = fake


@pytest.fixture(name="cost_query_server")
def cost_query_server_fixture() -> Iterator[CostQueryServer]:
    """A fresh :class:`CostQueryServer` per test, stopped afterwards."""
    server = CostQueryServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="managed_identity")
def managed_identity_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeManagedIdentityEndpoint]:
    """A :class:`FakeManagedIdentityEndpoint`, with the environment of an App Service that uses it.

    Sets ``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER`` and removes :data:`AZURE_IDENTITY_ENV_VARS`, so that
    ``DefaultAzureCredential()`` skips the environment and workload-identity credentials without any network
    call and gets its token from the fake. With ``AZURE_CLIENT_ID``, ``AZURE_TENANT_ID`` and
    ``AZURE_CLIENT_SECRET`` set, ``EnvironmentCredential`` would instead call login.microsoftonline.com and end
    the chain there; with ``IDENTITY_SERVER_THUMBPRINT`` set, azure-identity would speak Service Fabric.

    It also sets ``AZURE_TOKEN_CREDENTIALS=managedidentitycredential``, which ``DefaultAzureCredential`` honours by
    trying the managed identity only: if the fake refused, the chain would otherwise go on to the shared token
    cache, VS Code, ``az``, ``pwsh`` and ``azd``, and on a developer's machine could silently use their real
    login. ``ManagedIdentityCredential()`` ignores the variable.
    """
    endpoint = FakeManagedIdentityEndpoint()
    for name in AZURE_IDENTITY_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint.endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", endpoint.header_secret)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "managedidentitycredential")
    try:
        yield endpoint
    finally:
        endpoint.stop()


__all__ = [
    "AZURE_IDENTITY_ENV_VARS",
    "THROTTLE_BODY",
    "CostQueryServer",
    "FakeManagedIdentityEndpoint",
    "IssuedToken",
    "RecordedRequest",
    "cost_query_server_fixture",
    "managed_identity_fixture",
]
