"""A storage or billing service's refusal keeps its reason: one line with the object (account/container/blob,
bucket/key, table, scope), the HTTP status, the service's code and its own message, and the likely fix; never a
secret (SAS, keys, tokens, signatures), even where the service's message echoes one.

Each case goes through the real client library against the suite's local services (Azurite, moto, the BigQuery
emulator, the Cost Management fake); a refusal those services cannot produce on demand is answered by the fault
proxy with the body the real service documents (Azurite's API-version rejection is copied from Azurite 3.35.0
started without --skipApiVersionCheck).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aws_rig
import azure_rig
import gcp_rig
import pytest
from aws_billing import BUCKET, cur2_table, usage_in_period
from azure.storage.blob import (
    AccountSasPermissions,
    ContainerClient,
    ResourceTypes,
    generate_account_sas,
)
from azure_query_server import CostQueryServer, FakeManagedIdentityEndpoint
from botocore.client import BaseClient
from fault_proxy import FaultProxy, status
from google.cloud import bigquery
from support import charge, make_project, po
from typer.testing import CliRunner

from finrecon.cli import app
from finrecon.connectors import aws_cur, azure_exports, azure_query, gcp_bigquery
from finrecon.connectors._service_errors import one_line
from finrecon.models.config import AwsCurSource, AzureExportSource, AzureQuerySource, GcpBigQuerySource

pytest_plugins = ["connectors.conftest", "azure_query_server"]

XML = {"Content-Type": "application/xml"}
JSON = {"Content-Type": "application/json"}
# Azurite 3.35.0's answer to an x-ms-version newer than it knows (its RequestId and Time lines kept as sent).
AZURITE_API_VERSION = (
    "The API version 2026-10-06 is not supported by Azurite. Please upgrade Azurite to latest version and retry. "
    "If you are using Azurite in Visual Studio, please check you have installed latest Visual Studio patch. "
    'Azurite command line parameter "--skipApiVersionCheck" or Visual Studio Code configuration "Skip Api Version '
    'Check" can skip this error. '
)
AZURITE_API_VERSION_BODY = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Error>\n  <Code>InvalidHeaderValue</Code>\n'
    f"  <Message>{AZURITE_API_VERSION}\nRequestId:99284291-b1c4-4ee9-b32b-3d217b7f590a\n"
    "Time:2026-12-04T18:02:43.241Z</Message>\n</Error>"
)


def assert_one_line(message: str, *secrets: str) -> None:
    assert "\n" not in message and "Traceback" not in message, message
    for secret in secrets:
        assert secret not in message, message


# -- Azure Blob Storage (Azurite) ------------------------------------------------------------------------------


def _export_source(container: str) -> AzureExportSource:
    return AzureExportSource.model_validate({
        "kind": "azure_export", "name": "azure-billing", "container": container, "root_folder_path": "exports",
        "export_name": "focus", "max_retries": 0, "retry_backoff_seconds": 0.0,
    })  # fmt: skip


@pytest.fixture
def sas_through_proxy(
    blob_container: ContainerClient,
    azurite: azure_rig.Azurite,
    fault_proxy: Callable[[str, str], FaultProxy],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[FaultProxy, str]:
    """The pipeline's connection string: an account SAS (the secret sent in every URL) and the proxy as endpoint.
    Returns the proxy and the SAS's signature."""
    sas = generate_account_sas(
        azure_rig.DEV_ACCOUNT, azure_rig.DEV_KEY, ResourceTypes(container=True, object=True),
        AccountSasPermissions(read=True, list=True), expiry=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    proxy = fault_proxy("azure-blob", azurite.account_url.removesuffix("/" + azure_rig.DEV_ACCOUNT))
    endpoint = f"{proxy.endpoint_url}/{azure_rig.DEV_ACCOUNT}"
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING", f"BlobEndpoint={endpoint};SharedAccessSignature={sas}"
    )
    signature = dict(part.split("=", 1) for part in sas.split("&"))["sig"]
    return proxy, signature


def _listing_error(source: AzureExportSource) -> str:
    with pytest.raises(azure_exports.ExportError) as failure:
        azure_exports.list_months(azure_exports.container_client(source), source)
    return str(failure.value)


def test_azurite_refusing_the_sdks_api_version_says_so_with_its_message_and_the_fix(
    blob_container: ContainerClient, sas_through_proxy: tuple[FaultProxy, str]
) -> None:
    proxy, signature = sas_through_proxy
    name = blob_container.container_name
    proxy.inject(
        "GET", rf"^/{azure_rig.DEV_ACCOUNT}/{name}/?$",
        status(400, XML | {"x-ms-error-code": "InvalidHeaderValue"}, AZURITE_API_VERSION_BODY),
    )  # fmt: skip

    message = _listing_error(_export_source(name))

    assert message.startswith(
        f"azure://{name}/exports/focus/: the storage service does not accept the API version"
    )
    assert f"(HTTP 400 InvalidHeaderValue: {AZURITE_API_VERSION.strip()})" in message
    assert "upgrade Azurite" in message and "--skipApiVersionCheck" in message
    assert_one_line(message, signature, azure_rig.DEV_KEY, "RequestId")


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_finrecon_run_against_an_old_azurite_prints_the_reason_and_the_fix_and_exits_1(
    blob_container: ContainerClient, sas_through_proxy: tuple[FaultProxy, str], tmp_path: Any
) -> None:
    proxy, signature = sas_through_proxy
    name = blob_container.container_name
    refusal = status(400, XML | {"x-ms-error-code": "InvalidHeaderValue"}, AZURITE_API_VERSION_BODY)
    proxy.inject("GET", rf"^/{azure_rig.DEV_ACCOUNT}/", refusal, times=None)  # every request, as Azurite does
    source = (
        f'[[sources]]\nkind = "azure_export"\nname = "azure"\ncontainer = "{name}"\nroot_folder_path = "exports"\n'
        'export_name = "focus"\nmax_retries = 0\n'
    )
    files = {"a.csv": [charge(Tags={"po": "PO-1"}, BilledCost="6.00")]}
    config = make_project(tmp_path, files, [po("PO-1", total_amount="10.00")], sources_toml=source)

    result = CliRunner().invoke(app, ["run", "--config", str(config)])

    output = " ".join(result.output.split())  # Rich wraps long lines
    assert result.exit_code == 1, output  # a failed input; the folder source still publishes
    assert f"azure://{name}/exports/focus/: the storage service does not accept the API version" in output
    assert "HTTP 400 InvalidHeaderValue: The API version 2026-10-06 is not supported by Azurite." in output
    assert "--skipApiVersionCheck" in output
    assert "Traceback" not in output and signature not in output and azure_rig.DEV_KEY not in output


def test_a_missing_container_is_named_with_its_account_and_the_setting_to_check(
    blob_container: ContainerClient, sas_through_proxy: tuple[FaultProxy, str]
) -> None:
    _, signature = sas_through_proxy

    message = _listing_error(_export_source("no-such-container"))

    assert message == (
        "azure://no-such-container/exports/focus/: the container no-such-container does not exist in storage "
        f"account {azure_rig.DEV_ACCOUNT} (HTTP 404 ContainerNotFound: The specified container does not exist.); "
        "check `container` in source azure-billing and that the connection string (or `account_url`) names the "
        "right account"
    )
    assert_one_line(message, signature)


def test_a_blob_listed_in_its_manifest_but_missing_names_blob_account_and_manifest(
    blob_container: ContainerClient, sas_through_proxy: tuple[FaultProxy, str], tmp_path: Any
) -> None:
    _, signature = sas_through_proxy
    row = {"BilledCost": 1.0, "BillingPeriodStart": "2024-06-01T00:00:00Z", "ChargePeriodStart": "2024-06-02"}
    manifest_name = azure_rig.put_cost_export(
        blob_container, "exports", "focus", date(2024, 6, 1), [azure_rig.csv_bytes([row])], data_version="1.0r2",
        export_type="FocusCost", file_format="Csv", compression="None", run_id="run-1",
        submitted_time="2024-06-28T03:00:00Z",
    )  # fmt: skip
    source = _export_source(blob_container.container_name)
    container = azure_exports.container_client(source)
    [month] = azure_exports.list_months(container, source).months
    manifest = azure_exports.latest_manifest(container, source, month)
    [(blob, _, _)] = manifest.blobs
    azure_rig.delete_blob(blob_container, blob)

    with pytest.raises(azure_exports.ExportError) as failure:
        azure_exports.download_month(container, source, manifest, tmp_path)

    name = blob_container.container_name
    assert str(failure.value) == (
        f"azure://{name}/{blob}: no such blob in storage account {azure_rig.DEV_ACCOUNT} (HTTP 404 BlobNotFound: "
        f"The specified blob does not exist.); it is listed in azure://{name}/{manifest_name}"
    )
    assert_one_line(str(failure.value), signature)


def test_a_service_message_echoing_a_sas_url_is_shown_without_its_query(
    blob_container: ContainerClient, sas_through_proxy: tuple[FaultProxy, str]
) -> None:
    proxy, signature = sas_through_proxy
    name = blob_container.container_name
    echoed = (
        f"http://127.0.0.1:{proxy.port}/{azure_rig.DEV_ACCOUNT}/{name}?restype=container&amp;sig={signature}"
    )
    body = (
        "<?xml version='1.0' encoding='utf-8'?><Error><Code>AuthenticationFailed</Code><Message>Server failed to "
        f"authenticate the request {echoed}.\nRequestId:1</Message></Error>"
    )
    proxy.inject("GET", rf"^/{azure_rig.DEV_ACCOUNT}/{name}/?$", status(403, XML, body))

    message = _listing_error(_export_source(name))

    assert (
        "the storage account refused the credentials (HTTP 403 AuthenticationFailed: Server failed" in message
    )
    assert f"/{azure_rig.DEV_ACCOUNT}/{name}?…" in message  # the URL stays, its query does not
    assert_one_line(message, signature, "restype")


# -- S3 (moto) -----------------------------------------------------------------------------------------------


def _aws_source(endpoint: str, bucket: str = BUCKET) -> AwsCurSource:
    return AwsCurSource.model_validate({
        "kind": "aws_cur", "export_type": "cur2", "bucket": bucket, "prefix": "exports", "export_name": "cur2",
        "region": "us-east-1", "endpoint_url": endpoint, "max_attempts": 1,
    })  # fmt: skip


def test_s3_missing_bucket_and_missing_key_are_told_apart(s3: BaseClient, moto: aws_rig.MotoServer) -> None:
    missing_bucket = _aws_source(moto.endpoint_url, "no-such-bucket")
    with pytest.raises(aws_cur.DeliveryError) as no_bucket:
        aws_cur.list_deliveries(aws_cur.s3_client(missing_bucket), missing_bucket)
    assert str(no_bucket.value) == (
        "s3://no-such-bucket: the bucket does not exist (HTTP 404 NoSuchBucket: The specified bucket does not "
        "exist); check the source's `bucket` (and `endpoint_url`)"
    )

    aws_rig.put_data_export(s3, BUCKET, "exports", "cur2", "2024-09", [cur2_table(usage_in_period("2024-09", 1.0))],
                            "parquet", execution_id="e1")  # fmt: skip
    source = _aws_source(moto.endpoint_url)
    client = aws_cur.s3_client(source)
    [ref] = aws_cur.list_deliveries(client, source).manifests
    aws_rig.delete_object(s3, BUCKET, ref.key)  # rewritten away between the listing and the read
    with pytest.raises(aws_cur.DeliveryError) as no_key:
        aws_cur.read_manifest(client, source, ref)
    assert str(no_key.value) == (
        f"s3://{BUCKET}/{ref.key}: no such key in bucket {BUCKET} (HTTP 404 NoSuchKey: The specified key does not "
        "exist.)"
    )
    assert_one_line(str(no_key.value), aws_rig.SECRET_ACCESS_KEY)


def test_s3_refusals_keep_status_code_and_message_but_no_signature(
    s3: BaseClient, moto: aws_rig.MotoServer, fault_proxy: Callable[[str, str], FaultProxy]
) -> None:
    s3.create_bucket(Bucket=BUCKET)
    proxy = fault_proxy("aws-s3", moto.endpoint_url)
    source = _aws_source(proxy.endpoint_url)
    listing = rf"^/{BUCKET}/?$"
    # S3's documented bodies: AccessDenied, and SignatureDoesNotMatch with what it computed and was given
    proxy.inject("GET", listing, status(403, XML, "<Error><Code>AccessDenied</Code><Message>Access Denied"
                                                  "</Message><RequestId>R1</RequestId></Error>"))  # fmt: skip
    provided = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    proxy.inject("GET", listing, status(403, XML, (
        "<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the "
        "signature you provided. Check your key and signing method.</Message><AWSAccessKeyId>"
        f"{aws_rig.ACCESS_KEY_ID}</AWSAccessKeyId><SignatureProvided>{provided}</SignatureProvided></Error>"
    )))  # fmt: skip
    messages = []
    for _ in range(2):
        with pytest.raises(aws_cur.DeliveryError) as failure:
            aws_cur.list_deliveries(aws_cur.s3_client(source), source)
        messages.append(str(failure.value))

    denied, signature = messages
    assert denied == (
        f"s3://{BUCKET}/exports/cur2/: access denied (HTTP 403 AccessDenied: Access Denied); grant the identity "
        "s3:ListBucket and s3:GetObject on the export"
    )
    assert signature.startswith(
        f"s3://{BUCKET}/exports/cur2/: credentials rejected (HTTP 403 SignatureDoesNotMatch: The request signature "
        "we calculated does not match the signature you provided. Check your key and signing method.); refresh them"
    )
    for message in messages:
        assert_one_line(message, provided, aws_rig.SECRET_ACCESS_KEY)


# -- BigQuery (emulator) ---------------------------------------------------------------------------------------


def _bq_source(endpoint: str, project: str, dataset: str, table: str) -> GcpBigQuerySource:
    return GcpBigQuerySource.model_validate({
        "kind": "gcp_bigquery", "project": project, "dataset": dataset, "table": table, "endpoint_url": endpoint,
        "storage_read_api": False, "retry_initial_seconds": 0.05, "retry_deadline_seconds": 2,
        "request_timeout_seconds": 5,
    })  # fmt: skip


def _bq_error(source: GcpBigQuerySource) -> str:
    with pytest.raises(gcp_bigquery.BigQueryError) as failure:
        gcp_bigquery.list_months(gcp_bigquery.bigquery_client(source), source, date(2024, 11, 30))
    return str(failure.value)


def test_bigquery_refusals_name_the_table_status_reason_and_message(
    bq: tuple[bigquery.Client, str],
    bq_emulator: gcp_rig.BigQueryEmulator,
    fault_proxy: Callable[[str, str], FaultProxy],
    gcp_service_account_key: Any,
) -> None:
    client, dataset = bq
    proxy = fault_proxy("gcp-bigquery", bq_emulator.endpoint_url)
    source = _bq_source(proxy.endpoint_url, client.project, dataset, "gcp_billing_export_v1_0")
    table_id = f"{client.project}.{dataset}.gcp_billing_export_v1_0"
    # BigQuery's documented answers: the table missing, and the identity without rights on the project
    missing = (
        f"Not found: Table {client.project}:{dataset}.gcp_billing_export_v1_0 was not found in location US"
    )
    proxy.inject("POST", r"/jobs$", status(404, JSON, gcp_rig.bigquery_error_body(404, "notFound", missing)))
    denied = "Access Denied: Project p: User does not have bigquery.jobs.create permission in project p."
    proxy.inject(
        "POST", r"/jobs$", status(403, JSON, gcp_rig.bigquery_error_body(403, "accessDenied", denied))
    )

    not_found, forbidden = _bq_error(source), _bq_error(source)

    assert not_found.startswith(f"{table_id}: not found (HTTP 404 notFound: {missing})")
    assert forbidden == (
        f"{table_id}: permission denied (HTTP 403 accessDenied: {denied}); the identity needs bigquery.jobs.create "
        "and table read rights"
    )
    key = json.loads(gcp_service_account_key.read_text())
    for message in (not_found, forbidden):
        assert_one_line(message, key["private_key_id"], "prettyPrint")


# -- Cost Management query API (local fake) --------------------------------------------------------------------


def test_cost_management_refusals_keep_arms_code_and_message(
    cost_query_server: CostQueryServer,
    managed_identity: FakeManagedIdentityEndpoint,
    fault_proxy: Callable[[str, str], FaultProxy],
) -> None:
    scope = "subscriptions/00000000-0000-0000-0000-0000000000ab"
    proxy = fault_proxy("azure-query", cost_query_server.base_url)
    source = AzureQuerySource.model_validate({
        "kind": "azure_query", "scope": scope, "base_url": proxy.endpoint_url, "max_retries": 0, "months": 1,
    })  # fmt: skip
    # ARM's documented error bodies
    gone = "The subscription '00000000-0000-0000-0000-0000000000ab' could not be found."
    proxy.inject("POST", "/query$", status(404, JSON, json.dumps({"error": {"code": "SubscriptionNotFound",
                                                                             "message": gone}})))  # fmt: skip
    invalid = "Invalid query definition: Invalid dimension name 'ResourceGroup'."
    proxy.inject("POST", "/query$", status(400, JSON, json.dumps({"error": {"code": "BadRequest",
                                                                             "message": invalid}})))  # fmt: skip
    messages = []
    for _ in range(2):
        with pytest.raises(azure_query.QueryError) as failure:
            azure_query.query_month(azure_query.cost_client(source), source, date(2024, 9, 1))
        messages.append(str(failure.value))

    assert messages == [
        f"azure-query {scope}: not found (HTTP 404 SubscriptionNotFound: {gone}); check the source's `scope` "
        "(e.g. subscriptions/<id>) and `base_url`",
        f"azure-query {scope}: the query was refused (HTTP 400 BadRequest: {invalid}); check the source's "
        "`dataset`, `group_by` and `tag_keys`",
    ]
    for message in messages:
        assert_one_line(
            message, managed_identity.header_secret, *(t.token for t in managed_identity.tokens_issued)
        )


def test_one_line_cuts_queries_credentials_and_bearer_tokens() -> None:
    text = (
        "Denied https://acct.blob.core.windows.net/c/b.csv?sv=2024&sig=abc%2Bdef for AccountKey=S3cr3t== with "
        "Authorization: Bearer eyJhbGciOi.payload.sig\nRequestId:7"
    )
    assert one_line(text) == (
        "Denied https://acct.blob.core.windows.net/c/b.csv?… for AccountKey=… with Authorization: Bearer …"
    )
