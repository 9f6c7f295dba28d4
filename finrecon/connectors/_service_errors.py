"""What a cloud service answered, as one short line: HTTP status, its error code and its own message.

The service's message is usually the only place the reason is spelt out (Azurite naming the API version it
refuses, S3 saying which of bucket or key is missing, BigQuery naming the table), so messages keep it. But a
service may echo parts of the request: URL query strings (SAS tokens, presigned signatures) and `key=value`
credentials are cut before anything is shown.
"""

from __future__ import annotations

import re

_MAX_CHARS = 400  # Azurite explains an API-version refusal in some 330 characters
_URL_QUERY = re.compile(r"(https?://[^\s?#'\"<>]+)\?[^\s'\"<>]*")
_SECRET_VALUE = re.compile(
    r"(?i)\b(sig|signature|accountkey|sharedaccesssignature|x-amz-signature|x-amz-credential|x-amz-security-token"
    r"|access_token|refresh_token|client_secret|password)=[^&;,\s'\"<>]+"
)
_BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+")


def redact(text: str) -> str:
    """`text` without URL query strings, credential values or bearer tokens."""
    text = _URL_QUERY.sub(r"\1?…", text)
    text = _SECRET_VALUE.sub(lambda m: f"{m.group(1)}=…", text)
    return _BEARER.sub("Bearer …", text)


def one_line(message: object) -> str:
    """The first line of a service's message (Azure Storage appends RequestId and Time lines), secrets cut,
    white space folded, at most a few hundred characters."""
    text = str(message or "").strip().split("\n", 1)[0]
    text = " ".join(redact(text).split())
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 1] + "…"


def answer(status: int | None, code: object, message: object) -> str:
    """`HTTP 404 ContainerNotFound: The specified container does not exist.`: what came back, as far as known."""
    code_text = str(getattr(code, "value", code) or "").strip()
    if code_text == str(status):  # S3's answer to a HEAD: the status is all it has
        code_text = ""
    head = " ".join(part for part in (f"HTTP {status}" if status else "", code_text) if part)
    text = one_line(message)
    if not text or text == code_text:
        return head or "no answer"
    return f"{head}: {text}" if head else text
