"""Loopback receivers for alert delivery tests: a real HTTP server and a real SMTP server on 127.0.0.1.

`HttpReceiver` records every POST by path and answers per path: 200, "500 then 200", always 500, 404, or hang
longer than the client's timeout. `SmtpReceiver` (aiosmtpd) records every accepted message, optionally behind
AUTH LOGIN/PLAIN and STARTTLS or implicit TLS with a self-signed certificate made for 127.0.0.1.
Nothing here reaches beyond the loopback interface, and every server stops when its `with` block ends.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import logging
import socket
import ssl
import threading
import warnings
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"

# aiosmtpd's notes about its own test-friendly settings (AUTH without TLS) are not findings of these tests.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
logging.getLogger("mail.log").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Post:
    """One request the HTTP receiver got, and the status it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """A threading HTTP server recording POSTs; `behave(path, ...)` sets how a path answers."""

    def __init__(self, hang_seconds: float = 2.0) -> None:
        self.hang_seconds = hang_seconds
        self.requests: list[Post] = []
        self._behaviours: dict[str, str] = {}
        self._calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = ThreadingHTTPServer((HOST, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()  # let hanging handlers finish
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}{path}"

    def behave(self, path: str, behaviour: str) -> None:
        """ok | 500-then-200 | 500 | 404 | 429-then-200 | hang (answers 200 after `hang_seconds`)."""
        self._behaviours[path] = behaviour

    def accepted(self, path: str) -> list[Post]:
        """The posts to `path` answered with 2xx."""
        return [p for p in self.requests if p.path == path and 200 <= p.status < 300]

    def attempts(self, path: str) -> list[Post]:
        """Every post to `path`, whatever it was answered."""
        return [p for p in self.requests if p.path == path]

    def arrivals(self, path: str) -> int:
        """How many posts to `path` arrived, answered or not yet (a hanging one is counted on arrival)."""
        with self._lock:
            return self._calls[path]

    def _status_for(self, path: str) -> int:
        with self._lock:
            self._calls[path] += 1
            call = self._calls[path]
        behaviour = self._behaviours.get(path, "ok")
        if behaviour in ("500-then-200", "429-then-200"):
            return int(behaviour[:3]) if call == 1 else 200
        if behaviour in ("500", "404"):
            return int(behaviour)
        if behaviour == "hang":
            self._release.wait(self.hang_seconds)
        return 200

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._status_for(self.path)
                post = Post(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status)
                with receiver._lock:
                    receiver.requests.append(post)
                payload = b"ok" if status < 300 else b"server error"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timeout) before the answer
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 and localhost (PEM files); the certificate doubles as the CA file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "finrecon test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class SmtpReceiver:
    """An aiosmtpd server on loopback recording accepted messages (and who logged in)."""

    users: dict[str, str] = field(default_factory=dict)  # login = password; empty: no AUTH
    tls: str = "none"  # none | starttls | ssl
    cert: tuple[Path, Path] | None = None
    messages: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    port: int = 0

    def __enter__(self) -> SmtpReceiver:
        from aiosmtpd.controller import Controller

        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if self.users:
            kwargs.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=self.tls == "starttls"
            )
        context = None
        if self.tls != "none":
            assert self.cert is not None, "TLS needs a certificate"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.cert)
        if self.tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        if self.tls == "ssl":
            kwargs.update(ssl_context=context, server_hostname=HOST)
        self._controller = Controller(self, hostname=HOST, port=self.port, **kwargs)
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        if self.users.get(login) == password:
            self.logins.append(login)
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)
