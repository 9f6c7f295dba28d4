"""Test rig for the AWS connectors: a real moto S3 server, a counting proxy, and bucket writers.

Why a real server and not ``moto.mock_aws``: the connector under test talks HTTP through boto3 exactly as in
production (endpoint URL, signing, retries, streaming downloads), so the tests exercise the same code path and
can count the requests it makes. The server runs as a subprocess and keeps everything in memory.

Why the writers: the connectors must read buckets laid out exactly as AWS delivers them (see the CUR 2.0 /
FOCUS Data Exports and legacy CUR layouts below), so the tests build those layouts with real Parquet and
gzip-CSV bytes and write the manifest *last*, as AWS does (the manifest is the commit marker).

Addressing: every client made here uses **path-style** URLs (``http://host:port/<bucket>/<key>``). moto
answers on a bare ``127.0.0.1:<port>``, which has no DNS for ``<bucket>.127.0.0.1``, and the counting proxy
reads the bucket and key from the URL path. A connector under test must be handed a client (or a
``botocore.config.Config``) with ``s3={"addressing_style": "path"}`` too.

Data files are deterministic: the same tables give the same bytes (gzip with ``mtime=0`` and no file name,
Parquet without the Arrow schema blob, JSON manifests with a fixed key order).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import http.client
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"

# A path-style client: see the module docstring for why.
PATH_STYLE = Config(s3={"addressing_style": "path"})

# ---------------------------------------------------------------------------------------------------------------
# moto server
# ---------------------------------------------------------------------------------------------------------------


def _free_port() -> int:
    """A port that was free a moment ago (the OS picks it; the race with other processes is tiny)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _moto_command(port: int) -> list[str]:
    """The ``moto_server`` script installed beside this interpreter, else ``python -m moto.server``."""
    script = Path(sys.executable).parent / "moto_server"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "moto.server"]
    return [*base, "-H", "127.0.0.1", "-p", str(port)]


def _http(method: str, host: str, port: int, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One plain HTTP request with http.client (never goes through an HTTP(S)_PROXY from the environment)."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class MotoServer:
    """A running ``moto_server`` subprocess on 127.0.0.1; use :func:`start_moto_server` to make one."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.endpoint_url = f"http://127.0.0.1:{port}"

    def log(self) -> str:
        """Everything the server printed so far (stdout and stderr share one temp file)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def reset(self) -> None:
        """Wipe every bucket and object (``POST /moto-api/reset``); cheaper than a new server per test."""
        status, body = _http("POST", "127.0.0.1", self.port, "/moto-api/reset")
        if status != 200:
            raise RuntimeError(f"moto reset answered {status}: {body!r}")

    def set_iam_auth(self, free_actions: float) -> None:
        """Turn moto's signature and IAM checks on after ``free_actions`` unchecked calls (``inf`` turns them off).

        Off by default: moto accepts any signature. A test that must prove a request's SigV4 signature is
        valid turns this on, makes an IAM user and key within the free calls, then signs with that key.
        This is server-wide state (``POST /moto-api/reset-auth``) that ``reset()`` does not undo: always set it
        back to ``float("inf")`` in a ``finally``.
        """
        status, body = _http(
            "POST", "127.0.0.1", self.port, "/moto-api/reset-auth", str(free_actions).encode()
        )
        if status != 200:
            raise RuntimeError(f"moto reset-auth answered {status}: {body!r}")

    def stop(self) -> None:
        """Terminate the server and wait for it (kill after 10 s); remove the log file."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log_path.unlink(missing_ok=True)


def start_moto_server(timeout: float = 60.0) -> MotoServer:
    """Start ``moto_server -H 127.0.0.1 -p <free port>`` and wait until ``GET /moto-api/`` answers 200.

    Output goes to a temp file rather than a PIPE, so a chatty server can never block on a full pipe.
    If the server exits before it is ready (e.g. the port was taken in between), the error carries its output;
    a lost port race is retried on a fresh port, up to three times.
    """
    last_error = ""
    for _attempt in range(3):
        port = _free_port()
        fd, log_name = tempfile.mkstemp(prefix="moto-server-", suffix=".log")
        log_path = Path(log_name)
        with os.fdopen(fd, "wb") as log_file:
            process = subprocess.Popen(
                _moto_command(port),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        server = MotoServer(process, port, log_path)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                last_error = (
                    f"moto_server exited with code {process.returncode} before it was ready; "
                    f"its output:\n{server.log()}"
                )
                server.stop()
                break
            try:
                status, _ = _http("GET", "127.0.0.1", port, "/moto-api/")
                if status == 200:
                    return server
            except OSError:
                pass
            if time.monotonic() > deadline:
                output = server.log()
                server.stop()
                raise RuntimeError(
                    f"moto_server on port {port} did not answer GET /moto-api/ within {timeout:.0f} s; "
                    f"its output:\n{output}"
                )
            time.sleep(0.05)
        if "Address already in use" not in last_error:
            break
    raise RuntimeError(last_error)


def s3_client(endpoint_url: str) -> BaseClient:
    """A botocore S3 client for ``endpoint_url`` with the fake ``testing`` keys, us-east-1 and path-style URLs.

    boto3/botocore ship no type information (client classes are built at run time), so to mypy ``BaseClient``
    is ``Any`` here; it names what the value is.
    """
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=PATH_STYLE,
    )


# ---------------------------------------------------------------------------------------------------------------
# Counting proxy
# ---------------------------------------------------------------------------------------------------------------


class RecordedRequest(NamedTuple):
    """One request seen by the proxy: method, raw (percent-encoded) URL path, raw query string ('' if none)."""

    method: str
    path: str
    query: str


# Headers that belong to one hop and must not be forwarded (RFC 9110 §7.6.1), plus Expect: the proxy itself
# answers "100 Continue" to the client, and botocore never signs Expect.
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
        "expect",
    }
)

# GETs on an object that read metadata, not the object's bytes.
_OBJECT_SUBRESOURCES = frozenset({"acl", "tagging", "attributes", "legal-hold", "retention", "torrent"})


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream_host: str, upstream_port: int, proxy: CountingProxy) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.proxy = proxy


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive towards boto3; every response carries a Content-Length

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the proxy's own record is ``CountingProxy.requests``."""

    def _read_body(self) -> tuple[bytes, bool]:
        """The request body, and whether it came chunked (then it is forwarded with a Content-Length)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts), True
        length = int(self.headers.get("Content-Length", "0") or "0")
        return (self.rfile.read(length) if length else b""), False

    def _forward(self) -> None:
        server = self.server
        assert isinstance(server, _ProxyServer)
        path, _, query = self.path.partition("?")
        server.proxy._record(RecordedRequest(self.command, path, query))
        body, was_chunked = self._read_body()

        upstream = http.client.HTTPConnection(server.upstream_host, server.upstream_port, timeout=60)
        try:
            # Host goes through unchanged: the client signed it (SigV4 covers Host), so the upstream must see the
            # proxy's host:port, exactly as the client sent it.
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() in _HOP_BY_HOP or (was_chunked and name.lower() == "content-length"):
                    continue
                upstream.putheader(name, value)
            if was_chunked or (body and "Content-Length" not in self.headers):
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body or None)
            resp = upstream.getresponse()
        except OSError as exc:
            upstream.close()
            message = f"counting proxy: upstream failed: {exc}".encode()
            self.send_response_only(502)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(message)))
            self.end_headers()
            self.wfile.write(message)
            return

        try:
            headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
            length = resp.getheader("Content-Length")
            buffered = b""
            if not no_body and length is None:
                buffered = resp.read()  # upstream sent it chunked or until close: give it a length
                headers.append(("Content-Length", str(len(buffered))))
            self.send_response_only(resp.status, resp.reason)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if no_body:
                return
            if length is None:
                self.wfile.write(buffered)
                return
            while chunk := resp.read(64 * 1024):  # stream: big objects are never held whole
                self.wfile.write(chunk)
        finally:
            upstream.close()

    do_GET = _forward
    do_HEAD = _forward
    do_PUT = _forward
    do_POST = _forward
    do_DELETE = _forward


class CountingProxy:
    """A tiny HTTP reverse proxy on 127.0.0.1 in front of an S3 endpoint that records every request.

    Why: tests assert *how* a connector reads S3 (e.g. it fetches each manifest-listed file once and never
    lists-and-guesses), which needs a count of real HTTP requests, not of Python calls.

    Point the client at :attr:`endpoint_url` (not the upstream's): SigV4 signs the Host header, and the proxy
    forwards Host unchanged, so the upstream sees exactly what the client signed. Use path-style clients
    (:func:`s3_client` does), so the URL path is ``/<bucket>/<key>``.
    """

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"need an http://host:port upstream, got {upstream_url!r}")
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._server = _ProxyServer(parts.hostname, parts.port, self)
        port = self._server.server_address[1]
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget the requests so far (e.g. after the test's own setup uploads)."""
        with self._lock:
            self._requests.clear()

    def object_gets(self, key_prefix: str = "") -> list[str]:
        """Keys (decoded) read with ``GET /<bucket>/<key>``, in order, one entry per request.

        Not counted: list calls (a GET on the bucket itself, ``/<bucket>`` or ``/<bucket>/`` with or without
        ``list-type``), HEADs, and metadata sub-resources such as ``?tagging`` or ``?acl``. A ranged download
        counts once per range request: boto3's ``download_file`` splits objects above its multipart threshold
        (8 MiB by default) into several ranged GETs.
        """
        keys = []
        for method, path, query in self.requests:
            if method != "GET":
                continue
            _bucket, _, raw_key = path.lstrip("/").partition("/")
            if not raw_key:
                continue  # a GET on the bucket: a list call
            params = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
            if "list-type" in params or params & _OBJECT_SUBRESOURCES:
                continue
            key = unquote(raw_key)
            if key.startswith(key_prefix):
                keys.append(key)
        return keys

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


# ---------------------------------------------------------------------------------------------------------------
# Bucket writers
# ---------------------------------------------------------------------------------------------------------------


def ensure_bucket(s3: BaseClient, bucket: str) -> None:
    """Create ``bucket`` unless it exists (us-east-1, so no LocationConstraint)."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)


def put_raw(s3: BaseClient, bucket: str, key: str, body: bytes) -> None:
    """Write (or overwrite) raw bytes at ``key``: for bad-input tests such as a truncated gzip."""
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def get_bytes(s3: BaseClient, bucket: str, key: str) -> bytes:
    """The bytes stored at ``key`` (e.g. to truncate them and ``put_raw`` them back)."""
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def delete_object(s3: BaseClient, bucket: str, key: str) -> None:
    """Delete ``key``: for the "manifest lists a key that is missing" test."""
    s3.delete_object(Bucket=bucket, Key=key)


def list_keys(s3: BaseClient, bucket: str, prefix: str = "") -> list[str]:
    """Every key under ``prefix``, sorted (paginated, so it is right past 1000 keys)."""
    paginator = s3.get_paginator("list_objects_v2")
    keys = [
        obj["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
    ]
    return sorted(keys)


def _join(*parts: str) -> str:
    """Join key segments with '/', dropping empty ones and stray slashes (so prefix '' adds nothing)."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def _first_of_next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


# -- data encodings ---------------------------------------------------------------------------------------------


def _parquet_bytes(table: pa.Table) -> bytes:
    """Snappy Parquet, the table passed through as is (maps stay Parquet MAP<string,string>).

    ``store_schema=False``: AWS files are not written by Arrow, so they carry no ``ARROW:schema`` blob and a
    connector must not depend on one. Same table, same pyarrow version → same bytes.
    """
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy", store_schema=False)
    return sink.getvalue()


def _timestamp_text(value: dt.datetime) -> str:
    """AWS CSV timestamps: UTC with milliseconds and a Z, e.g. ``2024-11-01T00:00:00.000Z`` (seen in CUR CSVs)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _jsonable(value: Any, type_: pa.DataType) -> Any:
    """A Python value of Arrow type ``type_`` as plain JSON data (maps become objects)."""
    if value is None:
        return None
    if pa.types.is_map(type_):
        return {k: _jsonable(v, type_.item_type) for k, v in value}
    if pa.types.is_struct(type_):
        return {f.name: _jsonable(value[f.name], f.type) for f in type_}
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return [_jsonable(v, type_.value_type) for v in value]
    if isinstance(value, dt.datetime):
        return _timestamp_text(value)
    if isinstance(value, dt.date | Decimal):
        return str(value)
    return value


def _csv_text(value: Any, type_: pa.DataType) -> str:
    """One CSV cell as AWS writes it: empty for null, JSON text for map/struct/list, plain decimals."""
    if value is None:
        return ""
    if pa.types.is_map(type_) or pa.types.is_struct(type_) or pa.types.is_list(type_):
        return json.dumps(_jsonable(value, type_), ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")  # no exponent: 1e-07 → 0.0000001
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return _timestamp_text(value)
    return str(value)


def _csv_gz_bytes(table: pa.Table) -> bytes:
    """Gzip-compressed CSV with a header row; map/struct/list columns written as JSON text.

    ``gzip.compress(..., mtime=0)`` writes no time stamp and no file name, so the bytes are deterministic.
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(table.column_names)
    types = [field.type for field in table.schema]
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    for row in zip(*columns, strict=True):
        writer.writerow([_csv_text(v, t) for v, t in zip(row, types, strict=True)])
    return gzip.compress(text.getvalue().encode("utf-8"), mtime=0)


def _encode(table: pa.Table, fmt: Literal["parquet", "csv.gz"]) -> bytes:
    return _parquet_bytes(table) if fmt == "parquet" else _csv_gz_bytes(table)


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")


# -- CUR 2.0 / FOCUS Data Exports -------------------------------------------------------------------------------


def _sql_type(type_: pa.DataType) -> str:
    """Data Exports manifest type names (Athena/Hive style): string, double, timestamp, map<string,string>..."""
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "string"
    if pa.types.is_float64(type_):
        return "double"
    if pa.types.is_float32(type_):
        return "float"
    if pa.types.is_decimal(type_):
        return f"decimal({type_.precision},{type_.scale})"
    if pa.types.is_int64(type_):
        return "bigint"
    if pa.types.is_integer(type_):
        return "int"
    if pa.types.is_boolean(type_):
        return "boolean"
    if pa.types.is_timestamp(type_):
        return "timestamp"
    if pa.types.is_date(type_):
        return "date"
    if pa.types.is_map(type_):
        return f"map<{_sql_type(type_.key_type)},{_sql_type(type_.item_type)}>"
    if pa.types.is_struct(type_):
        return "struct<" + ",".join(f"{f.name}:{_sql_type(f.type)}" for f in type_) + ">"
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return f"array<{_sql_type(type_.value_type)}>"
    return str(type_)


def put_data_export(
    s3: BaseClient,
    bucket: str,
    prefix: str,
    export_name: str,
    period: str,
    tables: list[pa.Table],
    fmt: Literal["parquet", "csv.gz"],
    execution_id: str,
    subfolder: str | None = None,
) -> str:
    """Lay out one billing period of an AWS Data Export (CUR 2.0 or FOCUS) and return the manifest key.

    Layout (CUR 2.0 and the AWS FOCUS export share it)::

        <prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/[<subfolder>/]<export>-00001.snappy.parquet  (or .csv.gz)
        <prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json                   (written last)

    One data file per table, numbered from 00001. ``subfolder`` stands in for a CREATE_NEW_REPORT execution
    folder (AWS's exact naming is unverified). ``prefix`` may be ''. The bucket is created if missing.
    The manifest's ``columns`` come from the first table's schema (``[]`` when ``tables`` is empty); tables
    with other schemas are written as given, so a test can make a file disagree with its manifest.
    Calling again with fewer tables leaves the older extra files in place: only the manifest says what is current.
    """
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        raise ValueError(f"period must be YYYY-MM, got {period!r}")
    ensure_bucket(s3, bucket)
    start = dt.date(int(period[:4]), int(period[5:]), 1)
    end = _first_of_next_month(start)
    base = _join(prefix, export_name)
    data_dir = _join(base, "data", f"BILLING_PERIOD={period}", subfolder or "")
    suffix = ".snappy.parquet" if fmt == "parquet" else ".csv.gz"

    data_files = []
    for n, table in enumerate(tables, start=1):
        key = f"{data_dir}/{export_name}-{n:05d}{suffix}"
        s3.put_object(Bucket=bucket, Key=key, Body=_encode(table, fmt))
        data_files.append(f"s3://{bucket}/{key}")

    schema = tables[0].schema if tables else pa.schema([])
    manifest = {
        "executionId": execution_id,
        "account": ACCOUNT_ID,
        "bucket": bucket,
        "exportName": export_name,
        "dataFiles": data_files,
        "columns": [{"name": f.name, "type": _sql_type(f.type)} for f in schema],
        "billingPeriod": {
            "start": f"{start.isoformat()}T00:00:00.000Z",
            "end": f"{end.isoformat()}T00:00:00.000Z",
        },
        "compression": "PARQUET" if fmt == "parquet" else "GZIP",
        "format": "PARQUET" if fmt == "parquet" else "TEXT_OR_CSV",
        "additionalOutputFiles": [],
    }
    manifest_key = _join(base, "metadata", f"BILLING_PERIOD={period}", f"{export_name}-Manifest.json")
    s3.put_object(
        Bucket=bucket, Key=manifest_key, Body=_manifest_bytes(manifest), ContentType="application/json"
    )
    return manifest_key


# -- legacy CUR -------------------------------------------------------------------------------------------------

# Category prefixes of legacy Parquet (snake_case) column names; longest match wins.
_SNAKE_CATEGORIES = (
    "identity",
    "bill",
    "line_item",
    "split_line_item",
    "product",
    "pricing",
    "reservation",
    "savings_plan",
    "resource_tags",
    "cost_category",
    "discount",
)


def legacy_column_category(column: str) -> tuple[str, str]:
    """(category, name) of a legacy CUR column, for the manifest's ``columns``.

    CSV names split at the first '/': ``lineItem/UnblendedCost`` → (``lineItem``, ``UnblendedCost``).
    Parquet snake_case names take the longest known category prefix: ``line_item_unblended_cost`` →
    (``line_item``, ``unblended_cost``); an unknown prefix falls back to the first '_' word. This is a rig
    convention: real Parquet manifests may keep the CSV-style names, so connectors should map by position or
    by their own normalisation, not by this rule.
    """
    if "/" in column:
        category, _, name = column.partition("/")
        return category, name
    known = [c for c in _SNAKE_CATEGORIES if column.startswith(c + "_")]
    if known:
        category = max(known, key=len)
        return category, column[len(category) + 1 :]
    category, _, name = column.partition("_")
    return (category, name) if name else ("", column)


def _legacy_type(field: pa.Field, nullable: bool) -> str:
    """Legacy manifest types: String, BigDecimal, DateTime, Interval (``Optional`` prefix when nulls occur)."""
    if field.name.replace("_", "").lower().endswith("timeinterval"):
        return "Interval"
    if pa.types.is_timestamp(field.type) or pa.types.is_date(field.type):
        return "DateTime"
    if pa.types.is_floating(field.type) or pa.types.is_decimal(field.type) or pa.types.is_integer(field.type):
        return "OptionalBigDecimal" if nullable else "BigDecimal"
    return "OptionalString" if nullable else "String"


def _legacy_stamp(day: dt.date) -> str:
    return day.strftime("%Y%m%d") + "T000000.000Z"


def put_legacy_cur(
    s3: BaseClient,
    bucket: str,
    prefix: str,
    report: str,
    start: dt.date,
    end: dt.date,
    tables: list[pa.Table],
    layout: Literal["create_new", "overwrite"],
    assembly_id: str,
    fmt: Literal["csv.gz", "parquet"],
    month_padding: bool = False,
) -> str:
    """Lay out one billing period of a legacy Cost and Usage Report and return the (top-level) manifest key.

    ``start`` is the first day of the month, ``end`` the first day of the next month (``20241101-20241201``).

    ``create_new`` (CREATE_NEW_REPORT, keeps every assembly)::

        <prefix>/<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/<report>-1.csv.gz ...
        <prefix>/<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/<report>-Manifest.json   (immutable copy)
        <prefix>/<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json                (latest; written last)

    ``overwrite`` (OVERWRITE_REPORT, the Athena/Parquet layout), ``month=1`` unless ``month_padding`` (``month=01``)::

        <prefix>/<report>/<report>/year=YYYY/month=M/<report>-00001.snappy.parquet  (or <report>-1.csv.gz)
        <prefix>/<report>/<report>/year=YYYY/month=M/<report>-Manifest.json         (written last)

    File names follow what is seen in the wild: CSV parts are ``-1``, ``-2``...; Parquet parts are 5-digit
    ``-00001``. Both manifest copies have identical bytes. No ``cost_and_usage_data_status/`` folder is written.
    Older extra files from an earlier call stay in place: only the manifest says what is current.
    """
    if not (start.day == 1 and end == _first_of_next_month(start)):
        raise ValueError(
            f"start must be a month's first day and end the next month's first day: {start}..{end}"
        )
    ensure_bucket(s3, bucket)
    report_root = _join(prefix, report)
    if layout == "create_new":
        period_dir = _join(report_root, f"{start:%Y%m%d}-{end:%Y%m%d}")
        data_dir = _join(period_dir, assembly_id)
        manifest_keys = [f"{data_dir}/{report}-Manifest.json", f"{period_dir}/{report}-Manifest.json"]
    else:
        month = f"{start.month:02d}" if month_padding else str(start.month)
        data_dir = _join(report_root, report, f"year={start.year}", f"month={month}")
        manifest_keys = [f"{data_dir}/{report}-Manifest.json"]

    report_keys = []
    for n, table in enumerate(tables, start=1):
        name = f"{report}-{n:05d}.snappy.parquet" if fmt == "parquet" else f"{report}-{n}.csv.gz"
        key = f"{data_dir}/{name}"
        s3.put_object(Bucket=bucket, Key=key, Body=_encode(table, fmt))
        report_keys.append(key)

    schema = tables[0].schema if tables else pa.schema([])
    columns = []
    for field in schema:
        category, name = legacy_column_category(field.name)
        nullable = any(t.column(field.name).null_count > 0 for t in tables if field.name in t.column_names)
        columns.append({"category": category, "name": name, "type": _legacy_type(field, nullable)})
    manifest = {
        "assemblyId": assembly_id,
        "account": ACCOUNT_ID,
        "reportName": report,
        "reportId": hashlib.sha256(f"{bucket}/{report_root}".encode()).hexdigest(),
        "bucket": bucket,
        "billingPeriod": {"start": _legacy_stamp(start), "end": _legacy_stamp(end)},
        "reportKeys": report_keys,
        "columns": columns,
        "compression": "Parquet" if fmt == "parquet" else "GZIP",
        "contentType": "Parquet" if fmt == "parquet" else "text/csv",
        "charset": "UTF-8",
        "additionalArtifactKeys": [],
    }
    body = _manifest_bytes(manifest)
    for key in manifest_keys:  # the top-level "latest" pointer goes last
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    return manifest_keys[-1]


def restricted_credentials(server: MotoServer, allowed_actions: list[str]) -> tuple[str, str]:
    """Turn moto's IAM checks on and return (key id, secret) of a user allowed only ``allowed_actions``.

    Every other identity (including the fixtures' ``testing`` keys) is then refused; the caller must turn the
    checks off again with ``server.set_iam_auth(float("inf"))`` in a ``finally``.
    """
    server.set_iam_auth(3)  # the three IAM calls below go unchecked, then checks start
    iam = boto3.client(
        "iam",
        endpoint_url=server.endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    iam.create_user(UserName="restricted")
    created = iam.create_access_key(UserName="restricted")["AccessKey"]
    statement = {"Effect": "Allow", "Action": allowed_actions, "Resource": "*"}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    iam.put_user_policy(UserName="restricted", PolicyName="restricted", PolicyDocument=policy)
    return str(created["AccessKeyId"]), str(created["SecretAccessKey"])
