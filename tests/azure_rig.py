"""Test rig for the Azure connector: the real azure-storage-blob client against Azurite on 127.0.0.1.

Why a real emulator and not mocks of the SDK: the connector lists blobs, downloads them and reads
``manifest.json`` through ``azure-storage-blob`` exactly as in production (connection string, Shared Key
signing, paging of ``list_blobs``, streaming downloads, retries). Azurite is Microsoft's own Blob storage
emulator and speaks the REST wire format, so the tests run that code path unchanged and nothing leaves the
machine.

Why npm: Azurite is only published to npm (no PyPI package, and no Docker here). ``make azurite`` installs
a pinned version into ``.azurite/`` in the project root (gitignored) and writes ``.azurite/.stamp-<version>``
last; :func:`start_azurite` runs its ``dist/src/blob/main.js`` with the ``node`` on ``PATH`` (the same file
``node_modules/.bin/azurite-blob`` links to, without relying on the symlink, its shebang or its exec bit).

Why the writers: Cost Management exports have a fixed layout and a manifest written *after* the data files
(the manifest is the commit marker, and Microsoft says to read the part names from it).
:func:`put_cost_export` lays out one export run exactly like that (see its docstring for the paths and the
manifest's keys), and the ``put_raw`` / ``delete_blob`` / ``get_bytes`` / ``list_names`` helpers let
bad-input tests damage a delivery.

Azurite behaviours a test must not trip over (checked with Azurite 3.35.0 and azure-storage-blob 12.31.1):

* The SDK sends ``x-ms-version: 2026-10-06``; Azurite 3.35.0 knows API versions up to ``2025-11-05`` and
  rejects newer ones unless started with ``--skipApiVersionCheck`` (which :func:`start_azurite` passes).
* ``Last-Modified`` / ``creation_time`` have one-second resolution: blobs written in the same second tie, so
  they cannot show write order. ETags are ``"0x" + hex(now_ms * random)``: unique, but random, not increasing.
  A test that needs the write order should record the requests (e.g. the client's ``raw_response_hook``).
* ``list_blobs`` returns names in ordinal (byte) order, as Azure does: ``part_10_...`` sorts before
  ``part_2_...`` and upper case before lower case. It is no indication of write order.
* ``ContainerClient.upload_blob`` returns a ``BlobClient``; ``BlobClient.upload_blob`` returns the response
  properties (``etag``, ``last_modified``).
* Azurite 3.36+ requires Node >= 21 (3.37: >= 22); this machine has Node 20, hence the pin to 3.35.0.

Credentials: Azurite accepts the well-known development account (:data:`DEV_ACCOUNT`, :data:`DEV_KEY`) and
nothing else. ``AZURITE_ACCOUNTS`` / ``AZURITE_DB`` are removed from the emulator's environment, so a
developer's shell cannot change which account exists or where the metadata lives.
"""

from __future__ import annotations

import calendar
import contextlib
import csv
import gzip as gzip_module
import http.client
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContainerClient

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AZURITE_DIR = PROJECT_ROOT / ".azurite"
# `make azurite` writes `.stamp-<version>` as its last step: the npm install is complete.
AZURITE_STAMP_GLOB = ".stamp-*"
AZURITE_BLOB_MAIN = AZURITE_DIR / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"

# The storage emulator's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

# Manifest constants (see put_cost_export).
MANIFEST_VERSION = "2024-04-01"
EXPORT_API_VERSION = "2023-07-01-preview"
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000001"
STORAGE_ACCOUNT_RESOURCE_ID = (
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/finrecon-test"
    f"/providers/Microsoft.Storage/storageAccounts/{DEV_ACCOUNT}"
)

ExportType = Literal["FocusCost", "ActualCost", "AmortizedCost"]
FileFormat = Literal["Csv", "Parquet"]
Compression = Literal["None", "Gzip", "Snappy"]

# ---------------------------------------------------------------------------------------------------------------
# Emulator process
# ---------------------------------------------------------------------------------------------------------------


def connection_string(port: int) -> str:
    """The development-account connection string for an Azurite blob endpoint on ``127.0.0.1:port``."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
    )


def _free_port() -> int:
    """A port that was free a moment ago (the OS picks it; the race with other processes is tiny)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _probe(port: int) -> str | None:
    """The ``Server`` header of one anonymous GET (Azurite answers 403), or None if nothing answers yet.

    http.client never goes through an HTTP(S)_PROXY, so the probe reaches the loopback port directly.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", f"/{DEV_ACCOUNT}?comp=list")
        resp = conn.getresponse()
        resp.read()
        return resp.getheader("Server") or ""
    except OSError:
        return None
    finally:
        conn.close()


class Azurite:
    """A running Azurite blob service on 127.0.0.1 with a throwaway workspace; see :func:`start_azurite`."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, workdir: Path) -> None:
        self.process = process
        self.port = port
        self.workdir = workdir
        self.location = workdir / "data"
        self.log_path = workdir / "azurite.log"
        self.account_url = f"http://127.0.0.1:{port}/{DEV_ACCOUNT}"
        self.connection_string = connection_string(port)

    def service_client(self) -> BlobServiceClient:
        """A BlobServiceClient on this Azurite (proxy settings from the environment are ignored)."""
        return blob_service_client(self.connection_string)

    def log(self) -> str:
        """Everything Azurite printed so far (stdout and stderr share one file in the workspace)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """Terminate Azurite and wait for it (kill after 10 s); remove its workspace and log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _azurite_env() -> dict[str, str]:
    """Our environment without ``AZURITE_*`` (accounts, SQL metadata DB): the emulator runs on its defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AZURITE_")}


def start_azurite(timeout: float = 60.0) -> Azurite:
    """Start Azurite's blob service on a free loopback port and wait until it answers HTTP.

    Flags: ``--skipApiVersionCheck`` (the SDK is newer than the emulator, see the module docstring),
    ``--loose`` (ignore headers it does not implement instead of failing), ``--silent`` (no access log),
    ``--disableTelemetry`` (no outbound calls). Data lives in a fresh temp directory that :meth:`Azurite.stop`
    removes. Output goes to a file there rather than a PIPE, so the server can never block on a full pipe.
    If Azurite exits before it is ready, the error carries its output; a lost port race is retried on a fresh
    port, up to three times. If ``.azurite`` is missing or incomplete, the error says to run ``make azurite``.
    """
    if not (any(AZURITE_DIR.glob(AZURITE_STAMP_GLOB)) and AZURITE_BLOB_MAIN.exists()):
        raise RuntimeError(
            f"Azurite is not installed ({AZURITE_DIR} is missing or incomplete): run `make azurite` in {PROJECT_ROOT}"
        )
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("`node` is not on PATH: Azurite (installed by `make azurite`) needs Node.js")
    last_error = ""
    for _attempt in range(3):
        port = _free_port()
        workdir = Path(tempfile.mkdtemp(prefix="azurite-"))
        (workdir / "data").mkdir()
        with open(workdir / "azurite.log", "wb") as log_file:
            process = subprocess.Popen(
                [
                    node,
                    str(AZURITE_BLOB_MAIN),
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    str(port),
                    "--location",
                    str(workdir / "data"),
                    "--skipApiVersionCheck",
                    "--loose",
                    "--silent",
                    "--disableTelemetry",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=_azurite_env(),
                cwd=workdir,
            )
        azurite = Azurite(process, port, workdir)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                last_error = f"Azurite exited with code {process.returncode} before it was ready; its output:\n{azurite.log()}"
                azurite.stop()
                break
            server = _probe(port)
            if server is not None and server.startswith("Azurite"):
                return azurite
            if time.monotonic() > deadline:
                output = azurite.log()
                azurite.stop()
                raise RuntimeError(
                    f"Azurite on 127.0.0.1:{port} did not answer within {timeout:.0f} s; its output:\n{output}"
                )
            time.sleep(0.05)
        if "EADDRINUSE" not in last_error:
            break
    raise RuntimeError(last_error)


# ---------------------------------------------------------------------------------------------------------------
# Clients and raw blob helpers
# ---------------------------------------------------------------------------------------------------------------


def blob_service_client(conn_str: str, **kwargs: Any) -> BlobServiceClient:
    """``BlobServiceClient.from_connection_string`` that ignores HTTP(S)_PROXY from the environment.

    Why: requests (azure-core's transport) would send even loopback traffic through a configured proxy unless
    NO_PROXY lists 127.0.0.1. Extra ``kwargs`` go to the client (e.g. ``raw_response_hook``).
    """
    kwargs.setdefault("use_env_settings", False)
    return BlobServiceClient.from_connection_string(conn_str, **kwargs)


def ensure_container(service_client: BlobServiceClient, name: str) -> ContainerClient:
    """The container ``name``, created if it does not exist yet."""
    container = service_client.get_container_client(name)
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
    return container


def container_name_for(test_name: str, suffix: str) -> str:
    """A valid container name (3-63 chars of ``a-z0-9-``, no ``--``, no leading/trailing ``-``) for a test.

    ``suffix`` (e.g. a short random hex) keeps names unique; the test name keeps Azurite's data readable.
    """
    stem = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")
    suffix = re.sub(r"[^a-z0-9]+", "-", suffix.lower()).strip("-")
    stem = stem[: 62 - len(suffix)].rstrip("-")
    name = f"{stem}-{suffix}" if stem else f"t-{suffix}"
    if not 3 <= len(name) <= 63:
        raise ValueError(f"cannot make a container name from {test_name!r} and {suffix!r}")
    return name


def put_raw(container: ContainerClient, name: str, data: bytes) -> None:
    """Write ``data`` to blob ``name`` as is (overwriting): for truncated files, broken manifests, strays."""
    container.get_blob_client(name).upload_blob(data, overwrite=True)


def delete_blob(container: ContainerClient, name: str) -> None:
    """Delete blob ``name`` (it must exist): e.g. a part file the manifest still lists."""
    container.delete_blob(name)


def get_bytes(container: ContainerClient, name: str) -> bytes:
    """The whole content of blob ``name``."""
    return container.download_blob(name).readall()


def list_names(container: ContainerClient, prefix: str = "") -> list[str]:
    """Names of the blobs under ``prefix``, in the server's listing order (ordinal by name, all pages)."""
    return [blob.name for blob in container.list_blobs(name_starts_with=prefix or None)]


# ---------------------------------------------------------------------------------------------------------------
# Data files
# ---------------------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    """One CSV cell: empty for None, ``true``/``false`` for booleans, ``str()`` otherwise."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_bytes(
    rows: Sequence[Mapping[str, Any]], gzip: bool = False, *, columns: Sequence[str] | None = None
) -> bytes:
    """UTF-8 CSV with a header row (``\\n`` line ends, minimal quoting); gzip-compressed if ``gzip``.

    The header is ``columns`` if given (needed for a file with no rows), else the keys in order of first
    appearance across ``rows``; missing keys are empty cells. Deterministic: gzip with ``mtime=0`` and no
    file name, so the same rows always give the same bytes (and byte counts).
    """
    header: list[str] = list(columns) if columns is not None else []
    if columns is None:
        for row in rows:
            header.extend(k for k in row if k not in header)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    if header:
        writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(row.get(k)) for k in header])
    data = text.getvalue().encode("utf-8")
    return gzip_module.compress(data, mtime=0) if gzip else data


def parquet_bytes(rows: Sequence[Mapping[str, Any]], *, schema: pa.Schema | None = None) -> bytes:
    """Snappy Parquet of ``rows`` (types inferred by Arrow unless ``schema`` is given).

    ``store_schema=False``: Azure's files are not written by Arrow, so they carry no ``ARROW:schema`` blob and
    a connector must not depend on one. Same rows and pyarrow version → same bytes.
    """
    table = pa.Table.from_pylist(list(rows), schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy", store_schema=False)
    return sink.getvalue()


def count_rows(data: bytes, file_format: FileFormat, compression: Compression) -> int:
    """Data rows in one export file: CSV records minus the header (after gunzip), or Parquet ``num_rows``.

    CSV is parsed with the csv module, so a quoted field with a line break counts as one row.
    """
    if file_format == "Parquet":
        return int(pq.ParquetFile(io.BytesIO(data)).metadata.num_rows)
    raw = gzip_module.decompress(data) if compression == "Gzip" else data
    records = sum(1 for _ in csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    return max(records - 1, 0)


# ---------------------------------------------------------------------------------------------------------------
# Cost Management exports
# ---------------------------------------------------------------------------------------------------------------

_EXTENSIONS: dict[tuple[str, str], str] = {
    ("Csv", "None"): "csv",
    ("Csv", "Gzip"): "csv.gz",
    ("Parquet", "Snappy"): "snappy.parquet",
    ("Parquet", "None"): "parquet",
}


def month_range_folder(month_start: date) -> str:
    """The export's month folder name: first to last day, e.g. ``20241101-20241130``."""
    last = month_start.replace(day=calendar.monthrange(month_start.year, month_start.month)[1])
    return f"{month_start:%Y%m%d}-{last:%Y%m%d}"


def _timestamp_folder(submitted_time: str) -> str:
    """``YYYYMMDDHHMM`` from an ISO ``submittedTime`` (the optional folder level seen in new exports)."""
    m = re.match(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})", submitted_time)
    if m is None:
        raise ValueError(f"submitted_time must be ISO 8601 (YYYY-MM-DDTHH:MM...), got {submitted_time!r}")
    return "".join(m.groups())


def _join(*parts: str) -> str:
    """Blob path from parts, without empty segments or doubled slashes (a root of ``""`` is allowed)."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


def _delete_prefix(container: ContainerClient, prefix: str) -> None:
    """Delete every blob whose name starts with ``prefix``."""
    for name in list_names(container, prefix):
        container.delete_blob(name)


def put_cost_export(
    container_client: ContainerClient,
    root: str,
    export_name: str,
    month_start: date,
    files: Sequence[bytes],
    *,
    data_version: str,
    export_type: ExportType,
    file_format: FileFormat,
    compression: Compression,
    run_id: str,
    submitted_time: str,
    overwrite: bool = True,
    data_row_counts: Sequence[int] | None = None,
    timestamp_folder: bool = False,
    time_frame: str = "MonthToDate",
    execution_type: str = "Scheduled",
) -> str:
    """Deliver one Cost Management export run as Azure does; return the manifest's blob name.

    Layout: ``<root>/<export_name>/<YYYYMMDD-YYYYMMDD>/[<YYYYMMDDHHMM>/]<run_id>/part_<i>_0001.<ext>`` with
    ``ext`` ``csv`` | ``csv.gz`` | ``snappy.parquet`` (``parquet`` for uncompressed Parquet), the month folder
    running from ``month_start`` to the month's last day, the optional timestamp level taken from
    ``submitted_time``, and ``manifest.json`` in the run folder, written **last** (the commit marker).
    ``files`` are uploaded as given (already compressed if ``compression`` says so).

    ``overwrite=True`` is ``OverwritePreviousReport``: every blob under the month folder is deleted first, as
    Azure replaces the month on each run. ``overwrite=False`` is ``CreateNewReport``: runs pile up.

    The manifest has the keys of Microsoft's documented example (CONNECTORS.md §3.1), in that order:
    ``manifestVersion``, ``byteCount`` (sum), ``blobCount``, ``dataRowCount`` (sum), ``exportConfig``,
    ``deliveryConfig``, ``runInfo`` (``startDate`` ``YYYY-MM-01T00:00:00``, ``endDate`` the month's last day
    with a ``Z``, as in the doc example), and ``blobs`` (container-relative ``blobName``, ``byteCount``,
    ``dataRowCount``). Row counts are counted from the bytes unless ``data_row_counts`` gives them (e.g. a
    wrong count for a bad-input test).
    """
    if month_start.day != 1:
        raise ValueError(f"month_start must be the first day of a month, got {month_start}")
    ext = _EXTENSIONS.get((file_format, compression))
    if ext is None:
        raise ValueError(
            f"Azure exports do not combine fileFormat {file_format!r} with compression {compression!r}"
        )
    if data_row_counts is not None and len(data_row_counts) != len(files):
        raise ValueError(f"{len(files)} files but {len(data_row_counts)} data_row_counts")
    row_counts = (
        list(data_row_counts)
        if data_row_counts is not None
        else [count_rows(data, file_format, compression) for data in files]
    )

    month_folder = _join(root, export_name, month_range_folder(month_start))
    run_folder = _join(month_folder, _timestamp_folder(submitted_time) if timestamp_folder else "", run_id)
    if overwrite:
        _delete_prefix(container_client, month_folder + "/")

    blobs: list[dict[str, Any]] = []
    for i, (data, rows) in enumerate(zip(files, row_counts, strict=True)):
        name = f"{run_folder}/part_{i}_0001.{ext}"
        container_client.get_blob_client(name).upload_blob(data, overwrite=True)
        blobs.append({"blobName": name, "byteCount": len(data), "dataRowCount": rows})

    last_day = month_start.replace(day=calendar.monthrange(month_start.year, month_start.month)[1])
    manifest: dict[str, Any] = {
        "manifestVersion": MANIFEST_VERSION,
        "byteCount": sum(b["byteCount"] for b in blobs),
        "blobCount": len(blobs),
        "dataRowCount": sum(b["dataRowCount"] for b in blobs),
        "exportConfig": {
            "exportName": export_name,
            "resourceId": (
                f"/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.CostManagement/exports/{export_name}"
            ),
            "dataVersion": data_version,
            "apiVersion": EXPORT_API_VERSION,
            "type": export_type,
            "timeFrame": time_frame,
            "granularity": None,
        },
        "deliveryConfig": {
            "partitionData": True,
            "dataOverwriteBehavior": "OverwritePreviousReport" if overwrite else "CreateNewReport",
            "fileFormat": file_format,
            "compressionMode": compression,
            "containerUri": STORAGE_ACCOUNT_RESOURCE_ID,
            "rootFolderPath": root,
        },
        "runInfo": {
            "executionType": execution_type,
            "submittedTime": submitted_time,
            "runId": run_id,
            "startDate": f"{month_start:%Y-%m-%d}T00:00:00",
            "endDate": f"{last_day:%Y-%m-%d}T00:00:00Z",
        },
        "blobs": blobs,
    }
    manifest_name = f"{run_folder}/manifest.json"
    put_raw(container_client, manifest_name, manifest_bytes(manifest))
    return manifest_name


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """A manifest as Azure-style JSON bytes (key order kept, indented)."""
    return json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")


def read_manifest(container: ContainerClient, name: str) -> dict[str, Any]:
    """The parsed ``manifest.json`` at blob ``name``."""
    loaded: dict[str, Any] = json.loads(get_bytes(container, name))
    return loaded
