"""A scriptable faulty reverse proxy on 127.0.0.1, in front of a real local service (moto, Azurite, the BigQuery
emulator, the Cost Management fake).

Why a proxy and not mocks: the connectors must survive what a real network and a real provider do to them —
throttling, 5xx, resets, hangs, short bodies, expired credentials — through their real client libraries' retry
and timeout code. The proxy does those things on the wire and records every request, so a test can count the
attempts a client made and check what it did with each.

A test scripts faults per request: each matches a method and a path regex (optionally a body regex, e.g. to pick
one month's query out of several POSTs to the same path), is applied to the next `times` matching requests, then
lets them pass. Kinds:

- ``status(code, headers, body)``: answer it here (e.g. 429 + Retry-After, 500, an S3 ``ExpiredToken`` XML body);
- ``reset()``: close the socket with SO_LINGER 0 (a TCP RST), no response;
- ``slow(seconds)``: hold the request that long (past the client's read timeout), then close without answering;
- ``truncate(n)``: forward it, send the real status and headers (the full Content-Length) and only ``n`` bytes of
  the body, then close.

Everything else is forwarded unchanged (Host too: S3's SigV4 signs it, so the upstream must see the proxy's).
"""

from __future__ import annotations

import http.client
import re
import socket
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, NamedTuple
from urllib.parse import unquote, urlsplit

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)
FaultKind = Literal["status", "reset", "slow", "truncate"]


@dataclass(frozen=True)
class Fault:
    """What to do to a matching request instead of forwarding it faithfully."""

    kind: FaultKind
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    seconds: float = 0.0
    keep_bytes: int = 0

    @property
    def label(self) -> str:
        """Short name for the request log, e.g. ``status 429``, ``reset``, ``slow 2``, ``truncate 10``."""
        detail = {
            "status": self.status,
            "reset": "",
            "slow": f"{self.seconds:g}",
            "truncate": self.keep_bytes,
        }
        return f"{self.kind} {detail[self.kind]}".strip()


def status(code: int, headers: Mapping[str, str] | None = None, body: bytes | str = b"") -> Fault:
    """Answer with `code`, `headers` and `body` (the upstream never sees the request)."""
    data = body.encode() if isinstance(body, str) else body
    return Fault("status", status=code, headers=tuple((headers or {}).items()), body=data)


def reset() -> Fault:
    """Abort the connection (RST), sending nothing."""
    return Fault("reset")


def slow(seconds: float) -> Fault:
    """Hold the request `seconds` without answering, then close: a client with a shorter read timeout gives up."""
    return Fault("slow", seconds=seconds)


def truncate(keep_bytes: int) -> Fault:
    """Forward, but send only the first `keep_bytes` of the body after the full headers, then close."""
    return Fault("truncate", keep_bytes=keep_bytes)


S3_EXPIRED_TOKEN = status(
    400,
    {"Content-Type": "application/xml"},
    "<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code>"
    "<Message>The provided token has expired.</Message><RequestId>FAULT</RequestId></Error>",
)


class Recorded(NamedTuple):
    """One request as the proxy saw it: method, path (decoded, no query), query string, the fault applied (or None)."""

    method: str
    path: str
    query: str
    fault: str | None


@dataclass
class _Rule:
    method: str
    path: re.Pattern[str]
    body: re.Pattern[bytes] | None
    fault: Fault
    remaining: int | None  # None: forever
    applied: int = 0

    def matches(self, method: str, path: str, body: bytes) -> bool:
        return (
            (self.remaining is None or self.remaining > 0)
            and self.method in ("*", method)
            and self.path.search(path) is not None
            and (self.body is None or self.body.search(body) is not None)
        )


@dataclass
class _Book:
    lock: threading.Lock = field(default_factory=threading.Lock)
    rules: list[_Rule] = field(default_factory=list)
    log: list[Recorded] = field(default_factory=list)


class FaultProxy:
    """The proxy; point a client at :attr:`endpoint_url` instead of the upstream's. Stop it with :meth:`stop`."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"need an http://host:port upstream, got {upstream_url!r}")
        self._book = _Book()
        self._server = _Server(parts.hostname, parts.port, self._book)
        self.port = int(self._server.server_address[1])
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        )
        self._thread.start()

    def inject(
        self, method: str, path: str, fault: Fault, times: int | None = 1, *, body: str | None = None
    ) -> None:
        """Apply `fault` to the next `times` requests (None: every one) whose method is `method` (``*``: any),
        whose path matches the regex `path` (searched) and, if given, whose body matches the regex `body`.

        Rules are tried in the order injected; the first that matches and has uses left applies.
        """
        rule = _Rule(method, re.compile(path), re.compile(body.encode()) if body else None, fault, times)
        with self._book.lock:
            self._book.rules.append(rule)

    def clear_faults(self) -> None:
        with self._book.lock:
            self._book.rules.clear()

    @property
    def requests(self) -> list[Recorded]:
        """Every request so far, in arrival order."""
        with self._book.lock:
            return list(self._book.log)

    def count(self, method: str, path: str, fault: str | Literal["any"] | None = "any") -> int:
        """Requests with `method` whose path matches the regex `path`; only those given `fault` label unless
        "any" (None: those forwarded without a fault)."""
        pattern = re.compile(path)
        return sum(
            1
            for r in self.requests
            if r.method == method and pattern.search(r.path) and (fault == "any" or r.fault == fault)
        )

    def faults_applied(self) -> list[str]:
        """Labels of every fault applied so far, in order."""
        return [r.fault for r in self.requests if r.fault is not None]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream_host: str, upstream_port: int, book: _Book) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream_host, self.upstream_port, self.book = upstream_host, upstream_port, book

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that gave up (a slow or truncated fault) breaks the pipe on purpose."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive towards the client: a reset may hit a reused connection
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the record is :attr:`FaultProxy.requests`."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        length = int(self.headers.get("Content-Length", "0") or "0")
        return self.rfile.read(length) if length else b""

    def _take(self, body: bytes) -> Fault | None:
        raw_path, _, query = self.path.partition("?")
        path = unquote(
            raw_path
        )  # clients encode differently (botocore writes `=` as %3D): match what they mean
        book = self.server.book
        with book.lock:
            rule = next((r for r in book.rules if r.matches(self.command, path, body)), None)
            if rule is not None and rule.remaining is not None:
                rule.remaining -= 1
            fault = rule.fault if rule else None
            book.log.append(Recorded(self.command, path, query, fault.label if fault else None))
        return fault

    def _handle(self) -> None:
        body = self._read_body()
        fault = self._take(body)
        if fault is None or fault.kind == "truncate":
            self._forward(body, fault)
        elif fault.kind == "status":
            self._answer(fault)
        elif fault.kind == "reset":
            self._abort()
        else:  # slow: hold, then hang up without a word
            time.sleep(fault.seconds)
            self.close_connection = True

    def _answer(self, fault: Fault) -> None:
        self.send_response_only(fault.status)
        for name, value in fault.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(fault.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(fault.body)

    def _abort(self) -> None:
        """SO_LINGER 0 then close: the kernel sends RST, the client sees 'connection reset by peer'."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _forward(self, body: bytes, fault: Fault | None) -> None:
        server = self.server
        upstream = http.client.HTTPConnection(server.upstream_host, server.upstream_port, timeout=60)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    upstream.putheader(name, value)
            if body or self.command in ("POST", "PUT", "PATCH"):
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body or None)
            response = upstream.getresponse()
            data = b"" if self.command == "HEAD" else response.read()
        except OSError as exc:
            upstream.close()
            self._answer(status(502, {"Content-Type": "text/plain"}, f"fault proxy: upstream failed: {exc}"))
            return
        upstream.close()
        headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        if self.command != "HEAD":
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(data))))
        self.send_response_only(response.status, response.reason)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if fault is not None and fault.kind == "truncate":
            self.wfile.write(data[: fault.keep_bytes])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle


def fault_counts(proxies: Sequence[FaultProxy]) -> dict[str, int]:
    """How many faults of each kind the proxies applied (for the suite's tally)."""
    counts: dict[str, int] = {}
    for proxy in proxies:
        for label in proxy.faults_applied():
            counts[label] = counts.get(label, 0) + 1
    return counts
