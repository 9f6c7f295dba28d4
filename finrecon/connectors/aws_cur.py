"""Source `aws_cur`: AWS billing exports in S3, fetched with boto3 exactly as their manifests list them.

Three deliveries share one flow — find each billing period's manifest, and fetch the period again only when
its manifest changed:

- CUR 2.0 and FOCUS via Data Exports: `<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json`
  lists the data files (`dataFiles`) of `<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/`.
- Legacy CUR: `<prefix>/<report>/yyyymmdd-yyyymmdd/<report>-Manifest.json` (create-new-report; the copy inside
  each assembly folder is ignored) or `<prefix>/<report>/<report>/year=YYYY/month=M/<report>-Manifest.json`
  (overwrite), listing `reportKeys`.

The manifest is written after the data files, so it is the commit marker: files are never found by listing,
and a period whose data folder has no manifest is reported, not guessed at. Listing uses ETags only, so a night
with nothing changed makes list calls and no downloads.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import duckdb
import polars as pl
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import EndpointConnectionError as BotoEndpointError

from finrecon.connectors._files import DEFAULT_CHUNK_ROWS, iter_delivered, iter_files
from finrecon.connectors._listing import SHOWN_FOLDERS, looked_at, nearest_folders
from finrecon.connectors._service_errors import answer, redact
from finrecon.connectors.focus_files import iter_focus_file
from finrecon.core.failpoints import failpoint
from finrecon.core.progress import transferred as show_transferred
from finrecon.core.sql_text import identifier, literal
from finrecon.models.aws_cur import legacy_column, legacy_tag_key
from finrecon.models.config import AwsCurSource
from finrecon.models.quarantine import ROW_COLUMN, FileLevelError

logger = logging.getLogger(__name__)

_DATA_EXPORT_MANIFEST = re.compile(
    r"/metadata/BILLING_PERIOD=(?P<year>\d{4})-(?P<month>\d{2})/(?:[^/]+/)?[^/]+-Manifest\.json$"
)
_DATA_EXPORT_DATA = re.compile(r"/data/BILLING_PERIOD=(?P<year>\d{4})-(?P<month>\d{2})/")
_LEGACY_RANGE_MANIFEST = re.compile(r"/(?P<year>\d{4})(?P<month>\d{2})01-\d{8}/(?P<file>[^/]+)$")
_LEGACY_RANGE_ANY = re.compile(r"/(?P<year>\d{4})(?P<month>\d{2})01-\d{8}/")
_LEGACY_OVERWRITE = re.compile(r"/year=(?P<year>\d{4})/month=(?P<month>\d{1,2})/(?P<file>[^/]+)$")
_PROGRESS_STEP = 64 << 20  # log a large download's progress every 64 MiB


class DeliveryError(RuntimeError):
    """A delivery that cannot be used as it stands; the message names bucket and key and what to do."""


@dataclass(frozen=True)
class ManifestRef:
    """A billing period's current manifest, as seen in a listing (no download yet)."""

    period: str  # YYYY-MM
    key: str
    etag: str


@dataclass(frozen=True)
class Delivery:
    """One billing period as AWS last delivered it: the manifest's id and the data files it lists, in order."""

    ref: ManifestRef
    delivery_id: str  # executionId (Data Exports) or assemblyId (legacy CUR)
    data_keys: tuple[str, ...]
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Listing:
    """What a source holds now: one manifest per period, and periods whose data has no manifest."""

    manifests: list[ManifestRef]
    problems: dict[str, str]  # period -> message
    # objects under <prefix>/<export>/, in the layout or not: what a listing that found nothing looked at
    objects: int = 0

    @property
    def empty(self) -> bool:
        """No delivery at all: no period with a manifest, and none with data but no manifest."""
        return not self.manifests and not self.problems


def s3_client(source: AwsCurSource) -> Any:
    """An S3 client from boto3's default credential chain (or `profile`), assuming `role_arn` when set.

    A profile that does not exist or a role that cannot be assumed is a DeliveryError naming the source, so the
    night records it against this source instead of failing with a traceback.
    """
    try:
        return _s3_client(source)
    except (ClientError, BotoCoreError) as err:
        raise DeliveryError(_describe_setup_error(err, source)) from None


def _describe_setup_error(err: ClientError | BotoCoreError, source: AwsCurSource) -> str:
    if isinstance(err, ProfileNotFound):
        return (
            f"{source.location}: AWS profile {source.profile!r} is not in the AWS config files; "
            "create it (`aws configure sso`) or fix the source's `profile`"
        )
    if source.role_arn and isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "Unknown")
        return (
            f"{source.location}: cannot assume role_arn {source.role_arn} ({code}); check the role's trust policy "
            "and that the calling identity may sts:AssumeRole it"
        )
    return describe_client_error(err, source.bucket, _export_root(source) + "/")


def _s3_client(source: AwsCurSource) -> Any:
    session = boto3.Session(profile_name=source.profile, region_name=source.region)
    if source.role_arn:
        sts = session.client("sts", endpoint_url=None)
        assumed = sts.assume_role(RoleArn=source.role_arn, RoleSessionName="finrecon")["Credentials"]
        session = boto3.Session(
            aws_access_key_id=assumed["AccessKeyId"],
            aws_secret_access_key=assumed["SecretAccessKey"],
            aws_session_token=assumed["SessionToken"],
            region_name=source.region,
        )
    config = BotoConfig(
        retries={"max_attempts": source.max_attempts, "mode": "standard"},  # throttling, 5xx, resets
        connect_timeout=source.connect_timeout_seconds,
        read_timeout=source.read_timeout_seconds,
        s3={"addressing_style": "path"} if source.endpoint_url else None,
    )
    return session.client("s3", endpoint_url=source.endpoint_url, config=config)


def _export_root(source: AwsCurSource) -> str:
    return "/".join(p for p in (source.prefix, source.export_name) if p)


def _list_keys(client: Any, bucket: str, prefix: str) -> list[tuple[str, str]]:
    """(key, etag) of every object under `prefix` (paginated)."""
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [(item["Key"], str(item["ETag"]).strip('"')) for item in page.get("Contents", [])]
    return found


def describe_client_error(err: ClientError | BotoCoreError, bucket: str, key: str) -> str:
    """One actionable line for an S3 failure (never echoing credentials)."""
    where = f"s3://{bucket}/{key}"
    if isinstance(err, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return (
            f"{where}: no usable AWS credentials ({type(err).__name__}); set AWS_PROFILE (or the source's "
            "`profile`) and run `aws sso login`, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(err, SSOError | TokenRetrievalError):
        return (
            f"{where}: the AWS SSO session has expired ({type(err).__name__}); run `aws sso login` and rerun"
        )
    if isinstance(err, BotoEndpointError | ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError):
        return (
            f"{where}: cannot reach S3 ({type(err).__name__}); check the source's `endpoint_url` and `region`, "
            "the network and any proxy, then rerun"
        )
    if isinstance(err, BotoCoreError):
        return f"{where}: cannot reach S3: {redact(str(err))}"
    return _describe_answer(err, bucket, key)


def _describe_answer(err: ClientError, bucket: str, key: str) -> str:
    """An answer from S3 as `object: what (HTTP status Code: Message); fix`. A HEAD answer has no body: its
    404 cannot tell a missing key from a missing bucket."""
    error, metadata = err.response.get("Error", {}), err.response.get("ResponseMetadata", {})
    code, status = str(error.get("Code", "Unknown")), int(metadata.get("HTTPStatusCode") or 0)
    said, where = answer(status, code, error.get("Message")), f"s3://{bucket}/{key}"
    if code == "NoSuchBucket":
        return (
            f"s3://{bucket}: the bucket does not exist ({said}); "
            "check the source's `bucket` (and `endpoint_url`)"
        )
    if code == "NoSuchKey":
        return f"{where}: no such key in bucket {bucket} ({said})"
    if code in {"404", "NotFound"}:
        return f"{where}: no such key, or no such bucket ({said}: S3 answers a HEAD request without a reason)"
    if code in {"AccessDenied", "403"}:
        return f"{where}: access denied ({said}); grant the identity s3:ListBucket and s3:GetObject on the export"
    if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"}:
        return (
            f"{where}: credentials rejected ({said}); refresh them (`aws sso login`, or new keys) and check "
            "what boto3's default chain finds (environment, profile, instance or container role)"
        )
    if code in {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}:
        return f"{where}: the bucket is in another region ({said}); set the source's `region` to the bucket's"
    if status >= 500 or status == 429 or code in _THROTTLING_CODES:
        attempts = int(metadata.get("RetryAttempts") or 0) + 1
        return (
            f"{where}: S3 still failing after {attempts} attempts ({said}); a service-side or throttling "
            "problem: rerun later (or raise the source's `max_attempts`)"
        )
    return f"{where}: S3 refused the request ({said})"


_THROTTLING_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
}
# A body cut short after the headers arrived: botocore's retries are over by then, so the read is retried here.
_SHORT_READS = (IncompleteReadError, ResponseStreamingError, ReadTimeoutError, ConnectionClosedError)


def list_deliveries(client: Any, source: AwsCurSource) -> Listing:
    """The current manifest of every billing period under the export, by ETag (one listing, no downloads)."""
    root = _export_root(source)
    try:
        objects = _list_keys(client, source.bucket, root + "/")
    except (ClientError, BotoCoreError) as err:
        raise DeliveryError(describe_client_error(err, source.bucket, root + "/")) from None
    if source.export_type == "cur_legacy":
        listing = _legacy_listing(objects, source)
    else:
        listing = _data_export_listing(objects, source)
    return Listing(listing.manifests, listing.problems, len(objects))


def layout(source: AwsCurSource) -> str:
    """Where this export type's manifests are, under the source's prefix and export name."""
    root, name = _export_root(source), source.export_name
    if source.export_type == "cur_legacy":
        return (
            f"{root}/<yyyymmdd-yyyymmdd>/{name}-Manifest.json or "
            f"{root}/{name}/year=YYYY/month=M/{name}-Manifest.json"
        )
    return f"{root}/metadata/BILLING_PERIOD=YYYY-MM/{name}-Manifest.json"


def nothing_found(client: Any, source: AwsCurSource, listing: Listing) -> str:
    """Why an export with no delivery found nothing, for a message: the layout looked for, how many objects were
    under it, and the folders nearest to it (a wrong prefix or export name sits next to the real one)."""
    root = _export_root(source) + "/"
    found = looked_at(listing.objects, "object", root)
    where, beside = nearest_folders(lambda prefix: _folders(client, source.bucket, prefix), source.prefix)
    hint = f"; folders under s3://{source.bucket}/{where}: {beside}" if beside else ""
    return (
        f"{source.location}: no billing period found: no {layout(source)} ({found}){hint}; check the source's "
        f"`bucket`, `prefix`, `export_name` and `export_type` ({source.export_type})"
    )


def _folders(client: Any, bucket: str, prefix: str) -> list[str]:
    """Up to SHOWN_FOLDERS + 1 folder names directly under `prefix` ([] when it cannot list)."""
    try:
        page = client.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/", MaxKeys=SHOWN_FOLDERS + 1)
    except (ClientError, BotoCoreError):
        return []
    return [str(p["Prefix"])[len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]


def _period(match: re.Match[str]) -> str:
    return f"{match.group('year')}-{int(match.group('month')):02d}"


def _data_export_listing(objects: list[tuple[str, str]], source: AwsCurSource) -> Listing:
    manifests: dict[str, ManifestRef] = {}
    with_data: set[str] = set()
    for key, etag in objects:
        manifest = _DATA_EXPORT_MANIFEST.search("/" + key)
        if manifest and key.endswith(f"/{source.export_name}-Manifest.json"):
            period = _period(manifest)
            # several executions may leave manifests in sub-folders: the latest key order wins deterministically
            if period not in manifests or key > manifests[period].key:
                manifests[period] = ManifestRef(period, key, etag)
            continue
        data = _DATA_EXPORT_DATA.search("/" + key)
        if data:
            with_data.add(_period(data))
    problems = {
        period: (
            f"s3://{source.bucket}/{_export_root(source)}/data/BILLING_PERIOD={period}/ has data files but no "
            f"manifest under metadata/BILLING_PERIOD={period}/: the delivery is incomplete (AWS writes the "
            "manifest last) or was not written by Data Exports; it is not loaded"
        )
        for period in sorted(with_data - set(manifests))
    }
    return Listing(sorted(manifests.values(), key=lambda m: m.period), problems)


def _legacy_listing(objects: list[tuple[str, str]], source: AwsCurSource) -> Listing:
    manifest_name = f"{source.export_name}-Manifest.json"
    root = _export_root(source)
    manifests: dict[str, ManifestRef] = {}
    with_data: set[str] = set()
    for key, etag in objects:
        relative = key.removeprefix(root)
        ranged = _LEGACY_RANGE_MANIFEST.match(relative)
        overwrite = _LEGACY_OVERWRITE.search(relative)
        if ranged and ranged.group("file") == manifest_name:
            manifests[_period(ranged)] = ManifestRef(_period(ranged), key, etag)
        elif overwrite and overwrite.group("file") == manifest_name:
            manifests.setdefault(_period(overwrite), ManifestRef(_period(overwrite), key, etag))
        elif overwrite:
            with_data.add(_period(overwrite))
        else:
            any_range = _LEGACY_RANGE_ANY.match(relative)
            if any_range:
                with_data.add(_period(any_range))
    problems = {
        period: f"{source.location}: billing period {period} has report files but no {manifest_name}; not loaded"
        for period in sorted(with_data - set(manifests))
    }
    return Listing(sorted(manifests.values(), key=lambda m: m.period), problems)


def read_manifest(client: Any, source: AwsCurSource, ref: ManifestRef) -> Delivery:
    """Fetch and parse one manifest: its delivery id, data file keys (in order) and column names."""
    where = f"s3://{source.bucket}/{ref.key}"
    body = _get_whole(client, source, ref.key)
    try:
        manifest = json.loads(body)
    except ValueError as err:
        raise DeliveryError(f"{where}: manifest is not valid JSON ({err})") from None
    if not isinstance(manifest, dict):
        raise DeliveryError(f"{where}: manifest is not a JSON object")
    if source.export_type == "cur_legacy":
        delivery_id, listed = manifest.get("assemblyId"), manifest.get("reportKeys")
    else:
        delivery_id, listed = manifest.get("executionId"), manifest.get("dataFiles")
    if not isinstance(listed, list) or not all(isinstance(k, str) for k in listed):
        name = "reportKeys" if source.export_type == "cur_legacy" else "dataFiles"
        raise DeliveryError(f"{where}: manifest has no {name} list")
    keys = tuple(_object_key(k, source.bucket, where) for k in listed)
    columns = tuple(
        _manifest_column(c) for c in manifest.get("columns", []) if isinstance(c, dict) and c.get("name")
    )
    return Delivery(ref, str(delivery_id or ref.etag), keys, columns)


def _get_whole(client: Any, source: AwsCurSource, key: str) -> bytes:
    """An object's bytes; a body cut short (reset, timeout, fewer bytes than Content-Length) is fetched again,
    with backoff, as many times as botocore retries (`max_attempts`: retries after the first, as in botocore;
    its retries end when the headers arrive)."""
    attempts = source.max_attempts + 1
    for attempt in range(1, attempts + 1):
        try:
            return bytes(client.get_object(Bucket=source.bucket, Key=key)["Body"].read())
        except _SHORT_READS as err:
            if attempt == attempts:
                raise DeliveryError(
                    f"s3://{source.bucket}/{key}: the download was cut short {attempt} times "
                    f"({type(err).__name__}); check the network and any proxy, then rerun"
                ) from None
            time.sleep(min(0.5 * 2 ** (attempt - 1), 20.0))
        except (ClientError, BotoCoreError) as err:
            raise DeliveryError(describe_client_error(err, source.bucket, key)) from None
    raise AssertionError("unreachable")  # the loop returns or raises


def _manifest_column(column: dict[str, Any]) -> str:
    category = column.get("category")
    return (
        f"{category}/{column['name']}" if category and "/" not in str(column["name"]) else str(column["name"])
    )


def _object_key(listed: str, bucket: str, where: str) -> str:
    """A manifest entry as an object key: `s3://bucket/key` URIs and bare keys are both delivered."""
    if not listed.startswith("s3://"):
        return listed.lstrip("/")
    listed_bucket, _, key = listed.removeprefix("s3://").partition("/")
    if listed_bucket != bucket:
        raise DeliveryError(f"{where}: lists s3://{listed_bucket}/{key}, outside bucket {bucket}")
    return key


def download_delivery(
    client: Any, source: AwsCurSource, delivery: Delivery, folder: Path
) -> list[tuple[str, Path]]:
    """Download every listed data file into `folder` (streamed, multi-part, size-checked); (key, path) pairs.

    A file already there with the size S3 reports is kept (a retried landing does not fetch it again).
    """
    folder.mkdir(parents=True, exist_ok=True)
    fetched = []
    for index, key in enumerate(delivery.data_keys):
        target = folder / f"{index:05d}-{Path(key).name}"
        fetched.append((key, target))
        _download(client, source.bucket, key, target, delivery.ref.key)
    return fetched


def _download(client: Any, bucket: str, key: str, target: Path, manifest_key: str) -> None:
    try:
        expected = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except (ClientError, BotoCoreError) as err:
        message = describe_client_error(err, bucket, key)
        raise DeliveryError(f"{message}; it is listed in manifest s3://{bucket}/{manifest_key}") from None
    if target.exists() and target.stat().st_size == expected:
        return
    partial = target.with_name(target.name + ".partial")
    progress = _Progress(f"s3://{bucket}/{key}", expected)
    try:
        client.download_file(
            bucket, key, str(partial), Config=TransferConfig(multipart_threshold=64 << 20), Callback=progress
        )
    except (ClientError, BotoCoreError) as err:
        partial.unlink(missing_ok=True)
        raise DeliveryError(describe_client_error(err, bucket, key)) from None
    except Boto3Error as err:  # s3transfer gave up on a body cut short, after its own retries
        partial.unlink(missing_ok=True)
        raise DeliveryError(
            f"s3://{bucket}/{key}: the download kept being cut short ({type(err).__name__}: {err}); nothing of "
            "it was landed; check the network and any proxy, then rerun"
        ) from None
    size = partial.stat().st_size
    if size != expected:
        partial.unlink(missing_ok=True)
        raise DeliveryError(
            f"s3://{bucket}/{key}: downloaded {size} bytes, S3 reports {expected}; retry later"
        )
    partial.replace(target)
    logger.info("downloaded s3://%s/%s (%d bytes)", bucket, key, size)


class _Progress:
    """boto3 transfer callback: logs a large download's progress every 64 MiB."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self.next_report = label, total, 0, _PROGRESS_STEP

    def __call__(self, transferred: int) -> None:
        self.done += transferred
        failpoint("download.partial")  # crash tests: killed with the object partly downloaded
        show_transferred(self.label, transferred, self.total)  # a bar when run in a terminal
        if self.done >= self.next_report:
            logger.info("%s: %d of %d MiB", self.label, self.done >> 20, self.total >> 20)
            self.next_report += _PROGRESS_STEP


def iter_delivery_files(
    source: AwsCurSource, files: list[tuple[str, Path]], chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pl.DataFrame]:
    """A period's downloaded data files as one stream of chunks, each row with its `x_source_file` (s3 URI) and
    row number.

    CUR files keep their column names, legacy ones renamed to CUR 2.0 snake case with their tag columns gathered
    into CUR 2.0's `resource_tags` (JSON text); FOCUS exports get canonical FOCUS names. Columns may drift between files.
    """

    def read(uri: str, path: Path) -> Iterable[pl.DataFrame]:
        if source.export_type == "focus":
            return iter_focus_file(path, source.null_values, chunk_rows)
        chunks = iter_delivered(path, source.null_values, chunk_rows)
        return map(_legacy_to_cur2_names, chunks) if source.export_type == "cur_legacy" else chunks

    return iter_files([(f"s3://{source.bucket}/{key}", path) for key, path in files], read)


def _legacy_to_cur2_names(frame: pl.DataFrame) -> pl.DataFrame:
    tag_columns = {c: key for c in frame.columns if (key := legacy_tag_key(c)) is not None}
    renamed = {c: legacy_column(c) for c in frame.columns if c not in tag_columns and c != ROW_COLUMN}
    targets = list(renamed.values())
    clashes = sorted({t for t in targets if targets.count(t) > 1})
    if clashes:
        raise FileLevelError(clashes[0], "unique_column", f"column {clashes[0]!r} appears twice")
    tags = _resource_tags(frame, tag_columns)
    return frame.drop(list(tag_columns)).rename(renamed).with_columns(tags)


def _resource_tags(frame: pl.DataFrame, tag_columns: dict[str, str]) -> pl.Series:
    """Per row, the tag columns that have a value as one JSON object (CUR 2.0's `resource_tags`), keys in column
    order: `{}` for a row without tags.

    Built by DuckDB (one string expression per column, values escaped by `to_json`), some 30 times faster than
    polars' when/struct, and without a map in between.
    """
    if not tag_columns:
        return pl.Series("resource_tags", ["{}"] * frame.height, dtype=pl.Utf8)
    pairs = ", ".join(
        f"case when {identifier(column)} is not null then "
        f"to_json({literal(key)}) || ':' || to_json(cast({identifier(column)} as varchar)) end"
        for column, key in tag_columns.items()
    )
    con = duckdb.connect()
    try:
        con.register("legacy_tags", frame.select(list(tag_columns)).to_arrow())
        sql = f"select '{{' || concat_ws(',', {pairs}) || '}}' as resource_tags from legacy_tags"
        return con.sql(sql).pl().get_column("resource_tags").cast(pl.Utf8)
    finally:
        con.close()
