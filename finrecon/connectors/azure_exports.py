"""Source `azure_export`: Cost Management exports in Blob Storage, read exactly as their manifests list them.

Layout (Microsoft's "improved exports"): `<container>/<root>/<export>/<YYYYMMDD-YYYYMMDD>/[<timestamp>/]<runId>/`
holds the run's partitioned data files and its `manifest.json`. File names are read only from the manifest. With
`CreateNewReport` several runs of a month pile up: the latest by `runInfo.submittedTime` is the month. A month is
fetched again when any of its manifests changed (their names and ETags, from one listing), and replaces the
previous delivery; Azure rewrites the previous month during the first days of a month, which this catches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from finrecon.connectors._files import DEFAULT_CHUNK_ROWS, iter_delivered, iter_files
from finrecon.connectors._listing import SHOWN_FOLDERS, looked_at, nearest_folders
from finrecon.connectors._service_errors import answer
from finrecon.connectors.focus_files import iter_focus_file
from finrecon.core import progress
from finrecon.models.config import AzureExportSource
from finrecon.models.quarantine import FileLevelError

logger = logging.getLogger(__name__)

_RANGE = re.compile(r"(?:^|/)(?P<year>\d{4})(?P<month>\d{2})\d{2}-\d{8}/")
FOCUS_VERSIONS = ("1.0", "1.0r2", "1.2-preview", "1.2")
COST_VERSIONS = ("2019-11-01", "2021-10-01", "2023-03-01", "2023-05-01", "2023-12-01-preview", "2024-08-01")
COST_TYPES = ("ActualCost", "AmortizedCost")


class ExportError(RuntimeError):
    """A delivery that cannot be used as it stands; the message names container and blob and what to do."""


@dataclass(frozen=True)
class MonthRef:
    """A month's manifests as listed (no download yet): the month changed when this list changed."""

    period: str  # YYYY-MM
    manifests: tuple[tuple[str, str], ...]  # (blob name, etag), sorted

    @property
    def marker(self) -> str:
        return hashlib.sha256(json.dumps(self.manifests).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Manifest:
    name: str
    etag: str
    export_type: str  # FocusCost | ActualCost | AmortizedCost | …
    data_version: str
    submitted_time: str
    blobs: tuple[tuple[str, int | None, int | None], ...]  # (blob name, byteCount, dataRowCount)


@dataclass(frozen=True)
class Listing:
    months: list[MonthRef]
    problems: dict[str, str]  # period -> message
    # blobs under <root>/<export>/, in the layout or not: what a listing that found nothing looked at
    blobs: int = 0

    @property
    def empty(self) -> bool:
        """No delivery at all: no month with a manifest, and none with data but no manifest."""
        return not self.months and not self.problems


def container_client(source: AzureExportSource) -> Any:
    """The export's container: DefaultAzureCredential on `account_url`, else the environment's connection string."""
    from azure.storage.blob import BlobServiceClient

    if source.account_url:
        from azure.core.exceptions import ClientAuthenticationError
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
        try:  # fail fast: the storage SDK retries a missing credential with backoff for a minute and a half
            credential.get_token(
                "https://storage.azure.com/.default"
            )  # cached: the client's requests reuse it
        except ClientAuthenticationError as err:
            raise ExportError(describe_error(err, f"{source.location}/")) from None
        service = BlobServiceClient(source.account_url, credential=credential, **_transport_options(source))
    else:
        connection_string = os.environ.get(source.connection_string_env)
        if not connection_string:
            raise ExportError(
                f"{source.location}: set `account_url` or the environment variable {source.connection_string_env} "
                "to the storage account's connection string"
            )
        service = BlobServiceClient.from_connection_string(connection_string, **_transport_options(source))
    return service.get_container_client(source.container)


def _transport_options(source: AzureExportSource) -> dict[str, Any]:
    """Retries and timeouts from the source (the SDK's own: 15 s + 3^n waits, 20 s and 60 s timeouts)."""
    return {
        "retry_policy": _backoff_policy(source.max_retries, source.retry_backoff_seconds),
        "connection_timeout": source.connect_timeout_seconds,
        "read_timeout": source.read_timeout_seconds,
    }


def _backoff_policy(retries: int, backoff: float) -> Any:
    """The storage SDK's retry (5xx incl. ServerBusy, 408, resets, timeouts; never 4xx such as an expired
    credential), waiting backoff × 2^n ± 20 %: its ExponentialRetry adds a fixed ±3 s jitter, untunable below."""
    from azure.storage.blob import ExponentialRetry

    class Backoff(ExponentialRetry):
        def get_backoff_time(self, settings: dict[str, Any]) -> float:
            return float(backoff * 2 ** settings["count"] * random.uniform(0.8, 1.2))

    return Backoff(retry_total=retries)


def _root(source: AzureExportSource) -> str:
    return "/".join(p for p in (source.root_folder_path, source.export_name) if p) + "/"


def describe_error(
    err: Exception, where: str, source: AzureExportSource | None = None, container: Any = None
) -> str:
    """One actionable line for a storage failure: the object, what storage answered (status, code, its own
    message) and the likely fix; never keys or tokens. `container` (the client) names the storage account."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        IncompleteReadError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(err, ClientAuthenticationError) and err.status_code is None:  # no token: nothing was sent
        return (
            f"{where}: no Azure credential worked ({type(err).__name__}); run `az login`, set AZURE_CLIENT_ID, "
            "AZURE_TENANT_ID and AZURE_CLIENT_SECRET, or use a managed identity; or drop `account_url` and set "
            "the connection string variable"
        )
    if isinstance(err, IncompleteReadError) or (
        isinstance(err, HttpResponseError) and err.status_code is None
    ):
        return (
            f"{where}: the download kept being cut short ({type(err).__name__}) after retries; nothing of it was "
            "landed; check the network and any proxy, then rerun"
        )
    if isinstance(err, HttpResponseError):
        return _describe_answer(err, where, source, getattr(container, "account_name", None))
    if isinstance(err, ServiceRequestError):
        return (
            f"{where}: cannot reach storage ({type(err).__name__}); check `account_url` or the connection "
            "string's BlobEndpoint, the network and any proxy, then rerun"
        )
    if isinstance(err, ServiceResponseError):  # reset, timed out or cut short, after the retries
        return (
            f"{where}: the connection to storage kept failing mid-response ({type(err).__name__}) after retries; "
            "check the network and any proxy (or raise `read_timeout_seconds`), then rerun"
        )
    return f"{where}: cannot reach storage ({type(err).__name__})"


def _describe_answer(err: Any, where: str, source: AzureExportSource | None, account: str | None) -> str:
    """An answer from storage (status and code known) as `where: what (HTTP status code: message); fix`."""
    status, code = err.status_code, str(getattr(err.error_code, "value", err.error_code) or "")
    message = str(err.message or "")
    # a HEAD has no body: the SDK's message is then a stock phrase, the reason phrase holds storage's own words
    if message.startswith("Operation returned an invalid status"):
        message = err.reason or ""
    said = answer(status, code, message)
    if code == "ContainerNotFound":
        named = f" {source.container}" if source else ""
        return (
            f"{where}: the container{named} does not exist in storage account {account or '?'} ({said}); check "
            f"`container` in source {source.name if source else '?'} and that the connection string (or "
            "`account_url`) names the right account"
        )
    if status == 404:
        return f"{where}: no such blob in storage account {account or '?'} ({said})"
    if code == "InvalidHeaderValue" and re.search(r"(?i)api version|x-ms-version", message):
        return (
            f"{where}: the storage service does not accept the API version this azure-storage-blob sends ({said}); "
            "upgrade Azurite (or the emulator or Azure Stack behind the connection string) or pass "
            "--skipApiVersionCheck to Azurite"
        )
    what, fix = _refusal(err, status, code)
    return f"{where}: {what} ({said}); {fix}"


def _refusal(err: Any, status: int | None, code: str) -> tuple[str, str]:
    """What a refusal other than not-found means, and its likely fix."""
    from azure.core.exceptions import ClientAuthenticationError

    if code in _EXPIRED or (status == 401 and code != "AuthorizationFailure"):
        return "the credential was refused as expired or invalid", (
            "refresh it (`az login`, a new SAS or account key in the connection string, or the identity's "
            "secret) and rerun"
        )
    if code in ("AuthenticationFailed", "AuthorizationFailure"):  # a wrong key or SAS, or the firewall
        return "the storage account refused the credentials", (
            "check the account key or SAS in the connection string (or the identity behind `account_url`) and "
            "the account's firewall"
        )
    if status == 403:
        return "access denied", "grant the identity Storage Blob Data Reader on the container"
    if isinstance(err, ClientAuthenticationError):
        return "credentials refused", "check the identity or the connection string"
    if (status or 0) >= 500 or status in (408, 429):
        return "storage still failing after retries", (
            "a service-side or throttling problem: rerun later (or raise the source's `max_retries`)"
        )
    return "storage refused the request", "check the source's settings against the storage account"


# A SAS or token past its expiry: refreshing it is the fix.
_EXPIRED = ("ExpiredAuthenticationToken", "InvalidAuthenticationInfo", "AuthenticationTokenExpired")


def list_months(container: Any, source: AzureExportSource) -> Listing:
    """Every month's manifests (by ETag) under the export, and months with data but no manifest."""
    from azure.core.exceptions import AzureError

    root = _root(source)
    manifests: dict[str, list[tuple[str, str]]] = {}
    with_data: set[str] = set()
    seen = 0
    try:
        for blob in container.list_blobs(name_starts_with=root):
            seen += 1
            relative = str(blob.name)[len(root) :]
            found = _RANGE.match(relative)
            if not found:
                continue
            period = f"{found.group('year')}-{found.group('month')}"
            if relative.endswith("/manifest.json"):
                manifests.setdefault(period, []).append((str(blob.name), _etag(blob.etag)))
            else:
                with_data.add(period)
    except AzureError as err:
        raise ExportError(describe_error(err, f"{source.location}/", source, container)) from None
    months = [MonthRef(period, tuple(sorted(found))) for period, found in sorted(manifests.items())]
    problems = {
        period: f"{source.location}: month {period} has data blobs but no manifest.json; not loaded"
        for period in sorted(with_data - set(manifests))
    }
    return Listing(months, problems, seen)


LAYOUT = "<root>/<export>/<YYYYMMDD-YYYYMMDD>/[<timestamp>/]<runId>/manifest.json"


def nothing_found(container: Any, source: AzureExportSource, listing: Listing) -> str:
    """Why an export with no delivery found nothing, for a message: the layout looked for, how many blobs were
    under it, and the folders nearest to it (a misspelt export name sits next to the real one)."""
    root = _root(source)
    layout = LAYOUT.replace("<root>/", f"{source.root_folder_path}/" if source.root_folder_path else "")
    layout = layout.replace("<export>", source.export_name)
    found = looked_at(listing.blobs, "blob", root)
    where, beside = nearest_folders(lambda prefix: _folders(container, prefix), source.root_folder_path)
    hint = f"; folders under azure://{source.container}/{where}: {beside}" if beside else ""
    return (
        f"{source.location}: no export delivery found: no {layout} ({found}){hint}; check the source's "
        "`container`, `root_folder_path` and `export_name` (the export's storage settings in Cost Management)"
    )


def _folders(container: Any, prefix: str) -> list[str]:
    """Up to SHOWN_FOLDERS + 1 folder names directly under `prefix` ([] when it cannot list)."""
    from azure.core.exceptions import AzureError

    names: list[str] = []
    try:
        for item in container.walk_blobs(name_starts_with=prefix or None, delimiter="/"):
            if str(item.name).endswith("/"):
                names.append(str(item.name)[len(prefix) :].rstrip("/"))
            if len(names) > SHOWN_FOLDERS:
                break
    except AzureError:
        return []
    return names


def latest_manifest(container: Any, source: AzureExportSource, month: MonthRef) -> Manifest:
    """The month's current run: of its manifests, the one submitted last (CreateNewReport keeps older runs)."""
    parsed = [_read_manifest(container, source, name, etag) for name, etag in month.manifests]
    return max(parsed, key=lambda m: (m.submitted_time, m.name))


def _read_manifest(container: Any, source: AzureExportSource, name: str, etag: str) -> Manifest:
    from azure.core.exceptions import AzureError

    where = f"azure://{source.container}/{name}"
    try:
        body = container.download_blob(name).readall()
        manifest = json.loads(body)
    except AzureError as err:
        raise ExportError(describe_error(err, where, source, container)) from None
    except ValueError as err:
        raise ExportError(f"{where}: manifest is not valid JSON ({err})") from None
    config, run = manifest.get("exportConfig") or {}, manifest.get("runInfo") or {}
    blobs = manifest.get("blobs")
    if not isinstance(blobs, list):
        raise ExportError(f"{where}: manifest has no blobs list")
    listed = tuple(
        (str(b["blobName"]), _int(b.get("byteCount")), _int(b.get("dataRowCount")))
        for b in blobs
        if isinstance(b, dict) and b.get("blobName")
    )
    return Manifest(
        name, etag, str(config.get("type", "")), str(config.get("dataVersion", "")),
        str(run.get("submittedTime", "")), listed,
    )  # fmt: skip


def _etag(value: object) -> str:
    """An ETag without the quotes some responses put around it."""
    return str(value).strip('"')


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float | str) and str(value).strip().isdigit() else None


def check_supported(manifest: Manifest, source: AzureExportSource) -> None:
    """Refuse a dataset or data version whose columns this pipeline does not know (rather than guess)."""
    where = f"azure://{source.container}/{manifest.name}"
    if manifest.export_type == "FocusCost" and manifest.data_version in FOCUS_VERSIONS:
        return
    if manifest.export_type in COST_TYPES and manifest.data_version in COST_VERSIONS:
        return
    known = f"FocusCost {', '.join(FOCUS_VERSIONS)}; ActualCost/AmortizedCost {', '.join(COST_VERSIONS)}"
    raise ExportError(
        f"{where}: export type {manifest.export_type!r} dataVersion {manifest.data_version!r} is not supported "
        f"(known: {known}); the month is not loaded"
    )


def download_month(
    container: Any, source: AzureExportSource, manifest: Manifest, folder: Path
) -> list[tuple[str, Path]]:
    """Download the manifest's blobs (size-checked against `byteCount`); then make sure the run was not rewritten
    while we read it."""
    from azure.core.exceptions import AzureError

    folder.mkdir(parents=True, exist_ok=True)
    fetched = []
    for index, (name, byte_count, _) in enumerate(manifest.blobs):
        where = f"azure://{source.container}/{name}"
        target = folder / f"{index:05d}-{Path(name).name}"
        partial = target.with_name(target.name + ".partial")  # never a half-written file under the real name
        try:
            with partial.open("wb") as handle:
                container.download_blob(name, progress_hook=progress.cumulative(where)).readinto(handle)
        except AzureError as err:
            partial.unlink(missing_ok=True)
            raise ExportError(
                f"{describe_error(err, where, source, container)}; it is listed in "
                f"azure://{source.container}/{manifest.name}"
            ) from None
        size = partial.stat().st_size
        if byte_count is not None and size != byte_count:
            partial.unlink(missing_ok=True)
            raise ExportError(f"{where}: {size} bytes, the manifest says {byte_count}; the run is incomplete")
        partial.replace(target)
        fetched.append((name, target))
    try:
        now = _etag(container.get_blob_client(manifest.name).get_blob_properties().etag)
    except AzureError as err:
        where = f"azure://{source.container}/{manifest.name}"
        raise ExportError(describe_error(err, where, source, container)) from None
    if now != manifest.etag:
        raise ExportError(
            f"azure://{source.container}/{manifest.name}: the export rewrote this month while it was read; "
            "it is read again on the next run"
        )
    return fetched


def iter_month(
    source: AzureExportSource,
    manifest: Manifest,
    files: list[tuple[str, Path]],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[pl.DataFrame]:
    """The month's files as one stream of chunks (FOCUS names for FocusCost, export names otherwise), each row
    with its blob; every blob's row count must equal the manifest's `dataRowCount` (checked after its last chunk,
    which fails the whole month)."""
    expected = {f"azure://{source.container}/{name}": rows for name, _, rows in manifest.blobs}

    def read(uri: str, path: Path) -> Iterator[pl.DataFrame]:
        if manifest.export_type == "FocusCost":
            chunks = iter_focus_file(path, source.null_values, chunk_rows)
        else:
            chunks = iter_delivered(path, source.null_values, chunk_rows)
        seen = 0
        for chunk in chunks:
            seen += chunk.height
            yield chunk.with_columns(pl.lit(manifest.export_type).alias("x_azure_dataset"))
        rows = expected.get(uri)
        if rows is not None and seen != rows:
            message = f"{seen} rows, the manifest says {rows}; the month is not loaded"
            raise FileLevelError(None, "row_count", message)

    return iter_files([(f"azure://{source.container}/{name}", path) for name, path in files], read)
