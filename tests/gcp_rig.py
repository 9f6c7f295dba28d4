"""Test rig for the GCP connector: the real google-cloud-bigquery client against a local BigQuery emulator.

Why a real emulator and not mocks of the client: the connector sends SQL, named query parameters and reads
nested RECORD / REPEATED columns back through ``query(...).to_arrow()``, exactly as in production. Only a
server that parses and executes the SQL (and speaks the REST wire format, with its cell encodings and paging)
tests that path. ``bqemulator`` (PyPI) does: it translates BigQuery SQL to DuckDB with SQLGlot.

Why a separate virtual environment: bqemulator pins ``duckdb==1.5.5`` and needs DuckDB's ``spatial``
extension at start-up, while the project runs DuckDB 2.x. ``make bqemulator`` builds ``.venv-bqemulator/``
in the project root and installs the extension, offline, from the ``duckdb-extension-spatial`` wheel into
``.venv-bqemulator/duckdb-home/.duckdb/extensions``. DuckDB looks for installed extensions under
``$HOME/.duckdb``, and bqemulator offers no setting for that directory, so the emulator runs with
``HOME=.venv-bqemulator/duckdb-home``: its ``INSTALL spatial`` then finds the extension and never downloads.

Known gaps of the emulator that a test must not rely on (checked with bqemulator 1.4.0):

* ``_PARTITIONTIME`` / ``_PARTITIONDATE`` are rewritten to ``CURRENT_TIMESTAMP()`` / ``CURRENT_DATE()``:
  every row lives in "now" (not even truncated to midnight). Partition filters parse and run, but filter
  nothing. Filter on real columns (``usage_start_time``, ``export_time``, ``invoice.month``) to test data
  selection.
* ``client.query_and_wait(...)`` (REST ``jobs.query``) gets a failed query answered with HTTP 200 and the error
  only in the body's ``errors``; the client then returns an **empty result** instead of raising (missing table,
  syntax error). ``client.query(...)`` (``jobs.insert`` + ``getQueryResults``) raises as BigQuery does, so
  connector code under test must read results through ``client.query(...)``.
* A correlated subquery over a REPEATED column with *unqualified* field names,
  ``(SELECT value FROM UNNEST(labels) WHERE key = 'env')``, fails with a DuckDB binder error; with an alias,
  ``(SELECT l.value FROM UNNEST(labels) AS l WHERE l.key = 'env')``, it works.
* Rows streamed without a REPEATED field store NULL where BigQuery stores ``[]``; :func:`insert_rows` fills them.
* There is no reset endpoint: isolate tests with a fresh dataset each (see ``tests/connectors/conftest.py``).

Credentials: :func:`bq_client` uses ``AnonymousCredentials``, so the rig itself never picks up (or uses) real
Google credentials. Code under test that authenticates the production way (Application Default Credentials
or a service-account key file) gets a key file from :func:`write_service_account_key` whose ``token_uri`` is a
loopback :class:`FakeTokenServer`: the same code path as in production, with nothing leaving the machine.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from google.cloud.bigquery import SchemaField

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BQEMULATOR_VENV = PROJECT_ROOT / ".venv-bqemulator"
BQEMULATOR_BIN = BQEMULATOR_VENV / "bin" / "bqemulator"
# Written by `make bqemulator` as its last step: the venv and the spatial extension are complete.
BQEMULATOR_STAMP = BQEMULATOR_VENV / ".stamp"
# HOME of the emulator process: DuckDB installs/looks up extensions in $HOME/.duckdb/extensions.
BQEMULATOR_HOME = BQEMULATOR_VENV / "duckdb-home"

DEFAULT_PROJECT = "test-proj"

# ---------------------------------------------------------------------------------------------------------------
# Emulator process
# ---------------------------------------------------------------------------------------------------------------


def _free_port() -> int:
    """A port that was free a moment ago (the OS picks it; the race with other processes is tiny)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get_status(port: int, path: str) -> int:
    """Status of one plain GET on 127.0.0.1 (http.client never goes through an HTTP(S)_PROXY)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


class BigQueryEmulator:
    """A running ``bqemulator`` subprocess on 127.0.0.1; use :func:`start_bq_emulator` to make one."""

    def __init__(
        self, process: subprocess.Popen[bytes], rest_port: int, grpc_port: int, project: str, log_path: Path
    ) -> None:
        self.process = process
        self.rest_port = rest_port
        self.grpc_port = grpc_port
        self.project = project
        self.log_path = log_path
        self.endpoint_url = f"http://127.0.0.1:{rest_port}"

    def log(self) -> str:
        """Everything the emulator printed so far (stdout and stderr share one temp file)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """Terminate the emulator and wait for it (kill after 10 s); remove the log file."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log_path.unlink(missing_ok=True)


def _emulator_env() -> dict[str, str]:
    """The environment of the emulator process: ours, with its own HOME and no Avro extension download.

    ``HOME`` points DuckDB at the extension installed by ``make bqemulator`` (see the module docstring).
    ``BQEMU_ENABLE_FORMAT_EXTENSIONS=false`` skips the best-effort ``INSTALL avro``, which would try to download
    (and, offline, log a warning and cost a connection attempt at every start). Other ``BQEMU_*`` settings from
    the caller's environment are dropped so a developer's shell cannot change what the tests run against.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("BQEMU_")}
    env["HOME"] = str(BQEMULATOR_HOME)
    env["BQEMU_ENABLE_FORMAT_EXTENSIONS"] = "false"
    return env


def start_bq_emulator(project: str = DEFAULT_PROJECT, timeout: float = 60.0) -> BigQueryEmulator:
    """Start ``bqemulator start`` on free REST/gRPC ports and wait until ``GET /readyz`` answers 200.

    The emulator is ephemeral (in-memory DuckDB). Output goes to a temp file rather than a PIPE, so a chatty
    server can never block on a full pipe. If it exits before it is ready, the error carries its output; a lost
    port race is retried on fresh ports, up to three times. If ``.venv-bqemulator`` is missing or incomplete,
    the error says to run ``make bqemulator``.
    """
    if not (BQEMULATOR_BIN.exists() and BQEMULATOR_STAMP.exists()):
        raise RuntimeError(
            f"the BigQuery emulator is not installed ({BQEMULATOR_VENV} is missing or incomplete): "
            f"run `make bqemulator` in {PROJECT_ROOT}"
        )
    last_error = ""
    for _attempt in range(3):
        rest_port, grpc_port = _free_port(), _free_port()
        fd, log_name = tempfile.mkstemp(prefix="bqemulator-", suffix=".log")
        log_path = Path(log_name)
        with os.fdopen(fd, "wb") as log_file:
            process = subprocess.Popen(
                [
                    str(BQEMULATOR_BIN),
                    "start",
                    "--rest-port",
                    str(rest_port),
                    "--grpc-port",
                    str(grpc_port),
                    "--project",
                    project,
                    "--log-level",
                    "warning",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=_emulator_env(),
                cwd=tempfile.gettempdir(),
            )
        emulator = BigQueryEmulator(process, rest_port, grpc_port, project, log_path)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                last_error = (
                    f"bqemulator exited with code {process.returncode} before it was ready; "
                    f"its output:\n{emulator.log()}"
                )
                emulator.stop()
                break
            try:
                if _get_status(rest_port, "/readyz") == 200:
                    return emulator
            except OSError:
                pass
            if time.monotonic() > deadline:
                output = emulator.log()
                emulator.stop()
                raise RuntimeError(
                    f"bqemulator on port {rest_port} did not answer GET /readyz within {timeout:.0f} s; "
                    f"its output:\n{output}"
                )
            time.sleep(0.05)
        if "address already in use" not in last_error.lower():
            break
    raise RuntimeError(last_error)


def bq_client(endpoint_url: str, project: str = DEFAULT_PROJECT) -> bigquery.Client:
    """A real ``bigquery.Client`` for ``endpoint_url`` with anonymous credentials (never ADC).

    Read results with ``create_bqstorage_client=False``: the Storage Read API is gRPC and is not exercised here.
    """
    return bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint_url),
    )


# ---------------------------------------------------------------------------------------------------------------
# Cloud Billing export tables
# ---------------------------------------------------------------------------------------------------------------


def _string(name: str) -> SchemaField:
    return SchemaField(name, "STRING")


def _float(name: str) -> SchemaField:
    return SchemaField(name, "FLOAT")


def _record(name: str, *fields: SchemaField, repeated: bool = False) -> SchemaField:
    return SchemaField(name, "RECORD", mode="REPEATED" if repeated else "NULLABLE", fields=fields)


def _key_values(name: str) -> SchemaField:
    """``ARRAY<STRUCT<key STRING, value STRING>>``, the shape of every label list in the export."""
    return _record(name, _string("key"), _string("value"), repeated=True)


def standard_export_schema() -> list[SchemaField]:
    """Schema of the standard usage cost export table ``gcp_billing_export_v1_<BILLING_ACCOUNT_ID>``.

    Columns and order as documented by Google (see ``CONNECTORS.md`` §2.1 in the team notes). Google adds
    columns over time, so connectors select explicit columns; a test can append a column to prove that.
    Every column is NULLABLE (or REPEATED): the export does not declare REQUIRED columns that a query relies on.
    """
    return [
        _string("billing_account_id"),
        _record("service", _string("id"), _string("description")),
        _record("sku", _string("id"), _string("description")),
        SchemaField("usage_start_time", "TIMESTAMP"),
        SchemaField("usage_end_time", "TIMESTAMP"),
        _record(
            "project",
            _string("id"),
            _string("number"),
            _string("name"),
            _key_values("labels"),
            _string("ancestry_numbers"),
            _record("ancestors", _string("resource_name"), _string("display_name"), repeated=True),
        ),
        _key_values("labels"),
        _key_values("system_labels"),
        _record("location", _string("location"), _string("country"), _string("region"), _string("zone")),
        _record(
            "tags",
            _string("key"),
            _string("value"),
            SchemaField("inherited", "BOOLEAN"),
            _string("namespace"),
            repeated=True,
        ),
        _string("transaction_type"),
        _string("seller_name"),
        SchemaField("export_time", "TIMESTAMP"),
        _float("cost"),
        _string("currency"),
        _float("currency_conversion_rate"),
        _record(
            "usage",
            _float("amount"),
            _string("unit"),
            _float("amount_in_pricing_units"),
            _string("pricing_unit"),
        ),
        _record(
            "credits",
            _string("name"),
            _float("amount"),
            _string("full_name"),
            _string("id"),
            _string("type"),
            repeated=True,
        ),
        _record("invoice", _string("month"), _string("publisher_type")),  # month is 'YYYYMM'
        _string("cost_type"),  # regular | tax | adjustment | rounding_error
        _record("adjustment_info", _string("id"), _string("description"), _string("mode"), _string("type")),
        _float("cost_at_list"),
    ]


def detailed_export_schema() -> list[SchemaField]:
    """Schema of the detailed (resource-level) export ``gcp_billing_export_resource_v1_<BILLING_ACCOUNT_ID>``.

    The standard columns plus ``resource{name, global_name}`` and
    ``price{effective_price, tier_start_amount, unit, pricing_unit_quantity}``, appended at the end here (column
    order must not matter to a connector that selects explicit columns). The ``price`` numbers are NUMERIC
    in Google's documentation (``unit`` is STRING); they come back as Arrow ``decimal128(38, 9)``.
    """
    return [
        *standard_export_schema(),
        _record("resource", _string("name"), _string("global_name")),
        _record(
            "price",
            SchemaField("effective_price", "NUMERIC"),
            SchemaField("tier_start_amount", "NUMERIC"),
            _string("unit"),
            SchemaField("pricing_unit_quantity", "NUMERIC"),
        ),
    ]


def create_export_table(
    client: bigquery.Client, dataset: str, table: str, schema: Sequence[SchemaField]
) -> str:
    """Create ``<project>.<dataset>.<table>`` like Google's billing export and return its full table id.

    The dataset is created if it does not exist. The table is day-partitioned by ingestion time
    (``TimePartitioning(type_=DAY)`` with no field), as Google creates the export tables; the emulator accepts
    and reports that, but evaluates ``_PARTITIONTIME`` as the current time (see the module docstring).
    """
    client.create_dataset(f"{client.project}.{dataset}", exists_ok=True)
    table_id = f"{client.project}.{dataset}.{table}"
    bq_table = bigquery.Table(table_id, schema=list(schema))
    bq_table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY)
    client.create_table(bq_table)
    return table_id


def _with_empty_arrays(value: Mapping[str, Any], fields: Sequence[SchemaField]) -> dict[str, Any]:
    """``value`` with every absent or null REPEATED field set to ``[]``, recursively inside present RECORDs."""
    out = dict(value)
    for field in fields:
        item = out.get(field.name)
        if field.mode == "REPEATED":
            items = [] if item is None else list(item)
            if field.field_type in ("RECORD", "STRUCT"):
                items = [_with_empty_arrays(x, field.fields) for x in items]
            out[field.name] = items
        elif field.field_type in ("RECORD", "STRUCT") and item is not None:
            out[field.name] = _with_empty_arrays(item, field.fields)
    return out


def insert_rows(client: bigquery.Client, table_id: str, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` to ``table_id`` with a streaming insert (``tabledata.insertAll``); raise on any error.

    Values may be Python objects (``datetime`` with a time zone for TIMESTAMP, ``Decimal`` for NUMERIC): the
    client serialises them with the table's schema. Rows are visible to queries as soon as this returns.
    Streaming is used rather than a load job because it is one synchronous request and reports per-row errors.

    Absent REPEATED fields are sent as ``[]``: in BigQuery an array column is never NULL, but the emulator
    stores an omitted one as NULL, and then ``ARRAY_LENGTH``/``TO_JSON_STRING`` give NULL instead of 0/``'[]'``.
    """
    if not rows:
        return
    table = client.get_table(table_id)
    complete = [_with_empty_arrays(row, table.schema) for row in rows]
    errors = client.insert_rows(table, complete)
    if errors:
        raise RuntimeError(f"insert into {table_id} failed: {json.dumps(errors, default=str)[:2000]}")


# ---------------------------------------------------------------------------------------------------------------
# Fault-injecting proxy
# ---------------------------------------------------------------------------------------------------------------


class RecordedRequest(NamedTuple):
    """One request seen by the proxy: method and path (without the query string)."""

    method: str
    path: str


class _Fault(NamedTuple):
    status: int
    reason: str
    path_contains: str | None


# gRPC-style status names that Google APIs put next to the HTTP code in JSON errors.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# Headers that belong to one hop and must not be forwarded (RFC 9110 §7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def bigquery_error_body(status: int, reason: str, message: str | None = None) -> bytes:
    """A JSON error as BigQuery sends it; the client maps ``errors[0].reason`` to retry / no retry."""
    message = message or f"injected by FaultProxy: {reason}"
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"reason": reason, "message": message, "domain": "global"}],
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }
    return json.dumps(body).encode()


class _FaultServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream_host: str, upstream_port: int, proxy: FaultProxy) -> None:
        super().__init__(("127.0.0.1", 0), _FaultHandler)
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.proxy = proxy


class _FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive towards the client; every response carries a Content-Length

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the proxy's own record is ``FaultProxy.requests``."""

    def _send(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _forward(self) -> None:
        server = self.server
        assert isinstance(server, _FaultServer)
        length = int(self.headers.get("Content-Length", "0") or "0")
        body = self.rfile.read(length) if length else b""  # requests always sends a Content-Length
        fault = server.proxy._take(RecordedRequest(self.command, self.path.partition("?")[0]))
        if fault is not None:
            status, reason = fault
            error = bigquery_error_body(status, reason)
            self._send(status, [("Content-Type", "application/json; charset=UTF-8")], error)
            return

        upstream = http.client.HTTPConnection(server.upstream_host, server.upstream_port, timeout=60)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.endheaders(body or None)
            resp = upstream.getresponse()
        except OSError as exc:
            upstream.close()
            self._send(502, [("Content-Type", "text/plain")], f"fault proxy: upstream failed: {exc}".encode())
            return
        try:
            headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            length_header = resp.getheader("Content-Length")
            if self.command == "HEAD" or resp.status in (204, 304) or length_header is None:
                # No body, or chunked / until-close: read it whole and give it a length.
                data = b"" if self.command == "HEAD" else resp.read()
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                self._send(resp.status, headers, data)
                return
            self.send_response_only(resp.status, resp.reason)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            while chunk := resp.read(64 * 1024):
                self.wfile.write(chunk)
        finally:
            upstream.close()

    do_GET = _forward
    do_HEAD = _forward
    do_POST = _forward
    do_PUT = _forward
    do_PATCH = _forward
    do_DELETE = _forward


class FaultProxy:
    """An HTTP reverse proxy on 127.0.0.1 in front of the emulator that records requests and injects errors.

    Why: the connector must survive BigQuery's transient errors (``403 rateLimitExceeded``, ``500 backendError``)
    through the client's own retries, and a test must see that it did (the extra request is in
    :attr:`requests`). Point ``bq_client`` at :attr:`endpoint_url` instead of the emulator's.

    :meth:`fail_next` answers the next ``count`` requests (optionally only those to a given path) itself with a
    BigQuery-shaped JSON error; the emulator never sees them. Every request, failed or forwarded, is appended to
    :attr:`requests`; the failed ones also to :attr:`failed`.
    """

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream_url must be http://host:port, got {upstream_url!r}")
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self.requests: list[RecordedRequest] = []
        self.failed: list[RecordedRequest] = []
        self._server = _FaultServer(parts.hostname, parts.port, self)
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fault-proxy", daemon=True
        )
        self._thread.start()

    def fail_next(self, count: int, status: int, reason: str, *, path_contains: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` and BigQuery error ``reason``.

        Retryable for the client: ``(403, "rateLimitExceeded")``, ``(500, "backendError")``; not retryable e.g.
        ``(403, "accessDenied")`` or ``(400, "invalidQuery")``. Calls add up: two calls queue both faults.
        With ``path_contains`` only requests whose path contains it take this fault (e.g. ``"/queries/"``
        for ``jobs.getQueryResults``, ``"/jobs"`` for ``jobs.insert``); other requests pass it by.
        """
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        with self._lock:
            self._faults.extend([_Fault(status, reason, path_contains)] * count)

    def pending_faults(self) -> int:
        """How many injected errors are still queued."""
        with self._lock:
            return len(self._faults)

    def _take(self, request: RecordedRequest) -> tuple[int, str] | None:
        """Record ``request``; remove and return the first queued fault that applies to it, if any."""
        with self._lock:
            self.requests.append(request)
            for i, fault in enumerate(self._faults):
                if fault.path_contains is None or fault.path_contains in request.path:
                    del self._faults[i]
                    self.failed.append(request)
                    return fault.status, fault.reason
            return None

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------------------------
# Production-shaped credentials for tests
# ---------------------------------------------------------------------------------------------------------------


class _TokenHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the server's own record is ``FakeTokenServer.requests``."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0") or "0")
        self.rfile.read(length)
        server = self.server
        assert isinstance(server, _TokenHTTPServer)
        with server.lock:
            server.count += 1
        body = json.dumps({"access_token": "fake-access-token", "expires_in": 3600, "token_type": "Bearer"})
        data = body.encode()
        self.send_response_only(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _TokenHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _TokenHandler)
        self.lock = threading.Lock()
        self.count = 0


class FakeTokenServer:
    """A loopback OAuth2 token endpoint that grants any JWT assertion a fake access token.

    Why: production code authenticates with Application Default Credentials or a service-account key file.
    A key file written by :func:`write_service_account_key` names this server as its ``token_uri``, so the
    connector's *production* credential path (``google.auth.default()`` via ``GOOGLE_APPLICATION_CREDENTIALS``,
    or ``service_account.Credentials.from_service_account_file``) runs unchanged in tests and never leaves the
    machine. The emulator accepts any bearer token.
    """

    def __init__(self) -> None:
        self._server = _TokenHTTPServer()
        self.token_uri = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-token", daemon=True
        )
        self._thread.start()

    @property
    def requests(self) -> int:
        """How many tokens were granted so far."""
        with self._server.lock:
            return self._server.count

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def write_service_account_key(path: Path, token_uri: str, project: str = DEFAULT_PROJECT) -> Path:
    """Write a service-account key file (fresh RSA key) whose ``token_uri`` is ``token_uri``; return ``path``.

    The file has the shape of a real key downloaded from IAM, so code that loads it cannot tell it from one.
    Point ``GOOGLE_APPLICATION_CREDENTIALS`` (or the connector's key-file setting) at it.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0" * 40,
        "private_key": pem,
        "client_email": f"finrecon-test@{project}.iam.gserviceaccount.com",
        "client_id": "100000000000000000000",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return path
