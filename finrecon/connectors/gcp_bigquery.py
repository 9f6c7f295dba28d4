"""Source `gcp_bigquery`: the Cloud Billing export in BigQuery, pulled one invoice month at a time.

Google keeps writing late rows into past days, so the unit of replacement is the invoice month: a month is pulled
again when it is still open (the current month, and the previous one until `invoice_close_day`) or when its
`MAX(export_time)` or row count moved since it last landed. Every query names its columns (the export's schema
grows), takes its values as parameters, and filters on the ingestion-time partition, so BigQuery scans only
`lookback_months` of partitions. Results come back as Arrow.

The pull query flattens the export in BigQuery (credits summed, labels as JSON): with `push_down` the same lines
are aggregated there to the marts' grain (day × project × service × SKU × labels × commitment) before transfer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa

from finrecon.connectors._service_errors import answer
from finrecon.models.config import GcpBigQuerySource
from finrecon.models.focus import FOCUS_COLUMNS

_TABLE_ID = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){2}$")
_CUD = "STARTS_WITH(c.type, 'COMMITTED_USAGE_DISCOUNT')"

# Flat column -> BigQuery expression over one export row. The contract of stg_gcp__billing_export.sql.
LINE_EXPRESSIONS: dict[str, str] = {
    "billing_account_id": "billing_account_id",
    "invoice_month": "invoice.month",
    "usage_start_time": "usage_start_time",
    "usage_end_time": "usage_end_time",
    "project_id": "project.id",
    "project_name": "project.name",
    "project_labels": "TO_JSON_STRING(project.labels)",
    "service_id": "service.id",
    "service_description": "service.description",
    "sku_id": "sku.id",
    "sku_description": "sku.description",
    "labels": "TO_JSON_STRING(labels)",
    "tags": "TO_JSON_STRING(tags)",
    "region": "location.region",
    "zone": "location.zone",
    "cost_type": "cost_type",
    "currency": "currency",
    "currency_conversion_rate": "currency_conversion_rate",
    "cost": "cost",
    "cost_at_list": "cost_at_list",
    "credits_amount": "(SELECT SUM(c.amount) FROM UNNEST(credits) c)",
    "cud_credits_amount": f"(SELECT SUM(c.amount) FROM UNNEST(credits) c WHERE {_CUD})",
    "cud_credit_id": f"(SELECT MAX(c.id) FROM UNNEST(credits) c WHERE {_CUD})",
    "cud_credit_type": f"(SELECT MAX(c.type) FROM UNNEST(credits) c WHERE {_CUD})",
    "usage_amount": "usage.amount",
    "usage_unit": "usage.unit",
    "resource_name": "resource.name",
    "line_items": "1",
}
# With push_down, lines are summed over these; every other column (but the dropped ones) is a grouping key.
SUMMED = ("cost", "cost_at_list", "credits_amount", "cud_credits_amount", "usage_amount", "line_items")
# Finer than the marts' grain: not kept by push_down (NULL), so one day's rows collapse.
DROPPED_BY_PUSH_DOWN = ("region", "zone", "resource_name")


class BigQueryError(RuntimeError):
    """A query that failed; the message names the table and what BigQuery said (never credentials)."""


class TableNotFound(BigQueryError):
    """BigQuery answered 404: the table (or its dataset) is not there, or not visible to this identity."""


@dataclass(frozen=True)
class MonthState:
    """One invoice month as the export holds it now, with what tells a change: MAX(export_time) (the FOCUS
    export has none: Σ BilledCost and Σ EffectiveCost there) and the row count."""

    invoice_month: str  # YYYYMM
    watermark: str
    line_items: int

    @property
    def marker(self) -> str:
        return f"{self.watermark}|{self.line_items}"

    @property
    def period(self) -> str:
        return f"{self.invoice_month[:4]}-{self.invoice_month[4:]}"


def bigquery_client(source: GcpBigQuerySource) -> Any:
    """A BigQuery client with Application Default Credentials or the configured service-account key file.

    No ADC, or a key file that is not a service-account key, is a BigQueryError saying how to fix it: the night
    records it against this source instead of failing with a traceback.
    """
    from google.api_core.client_options import ClientOptions
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import bigquery

    credentials: Any = None  # None: Application Default Credentials
    if source.credentials_file is not None:
        credentials = _key_file_credentials(source)
    options = ClientOptions(api_endpoint=source.endpoint_url) if source.endpoint_url else None
    try:
        return bigquery.Client(
            project=source.project, credentials=credentials, location=source.location, client_options=options
        )
    except DefaultCredentialsError as err:
        raise BigQueryError(
            f"bq://{source.table_id}: no Google credentials found ({_first_sentence(err)}); run "
            "`gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS or the source's "
            "`credentials_file` to a service-account key file"
        ) from None


def _key_file_credentials(source: GcpBigQuerySource) -> Any:
    """The service-account key file's credentials (the message names the file, never its content)."""
    from google.oauth2 import service_account

    try:
        return service_account.Credentials.from_service_account_file(str(source.credentials_file))
    except (OSError, ValueError) as err:  # unreadable, not JSON, not a service-account key
        raise BigQueryError(
            f"bq://{source.table_id}: credentials_file {source.credentials_file} is not a usable service-account "
            f"key ({type(err).__name__}: {_first_sentence(err)}); download a new JSON key for the service account "
            "(IAM > Service accounts > Keys) and point `credentials_file` at it"
        ) from None


def _first_sentence(err: Exception) -> str:
    """The first sentence of an error (Google's messages go on with long links)."""
    return str(err).split(". ")[0].strip().rstrip(".")[:200]


def _table(source: GcpBigQuerySource) -> str:
    table_id = source.table_id
    if not _TABLE_ID.match(table_id):
        raise BigQueryError(f"{table_id}: not a valid `project.dataset.table` name")
    return f"`{table_id}`"


def partitions_since(today: date, lookback_months: int) -> date:
    """First day of the oldest month whose partitions are scanned for changes."""
    months = today.year * 12 + today.month - 1 - lookback_months
    return date(months // 12, months % 12 + 1, 1)


def open_months(today: date, invoice_close_day: int) -> set[str]:
    """Invoice months (YYYYMM) still being written: this month, and last month until it is invoiced."""
    current = f"{today.year}{today.month:02d}"
    previous = partitions_since(today, 1)
    found = {current}
    if today.day < invoice_close_day:
        found.add(f"{previous.year}{previous.month:02d}")
    return found


def _run(client: Any, source: GcpBigQuerySource, sql: str, parameters: list[Any]) -> pa.Table:
    from google.api_core import exceptions
    from google.auth.exceptions import GoogleAuthError
    from google.cloud import bigquery
    from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY, DEFAULT_RETRY

    # BigQuery's own predicate (rateLimitExceeded, backendError, 429, 5xx, resets and read timeouts), with our
    # backoff and deadline: api_core's default predicate would give up on a timed-out request at once.
    retry = DEFAULT_RETRY.with_delay(initial=source.retry_initial_seconds, maximum=30.0, multiplier=2.0)
    retry = retry.with_timeout(source.retry_deadline_seconds)
    # Re-sending the insert and re-running a failed job (the client's own, fixed 10 to 40 minutes) are bounded by
    # the same deadline: an unreachable endpoint is reported after `retry_deadline_seconds`.
    job_retry = DEFAULT_JOB_RETRY.with_timeout(source.retry_deadline_seconds)
    config = bigquery.QueryJobConfig(query_parameters=parameters)
    timeout = source.request_timeout_seconds  # per request: a silent answer is given up on and retried
    try:
        job = job_retry(
            lambda: client.query(sql, job_config=config, retry=retry, job_retry=None, timeout=timeout)
        )()
        result = job.result(retry=retry, job_retry=job_retry)
        return result.to_arrow(create_bqstorage_client=source.storage_read_api)
    except (exceptions.GoogleAPIError, GoogleAuthError) as err:
        kind = TableNotFound if isinstance(err, exceptions.NotFound) else BigQueryError
        raise kind(f"{source.table_id}: {_describe(err, source)}") from None


def _describe(err: Exception, source: GcpBigQuerySource) -> str:
    from google.api_core import exceptions
    from google.auth.exceptions import GoogleAuthError

    if isinstance(err, GoogleAuthError):  # the token could not be fetched or refreshed
        return (
            f"credentials refused ({type(err).__name__}: {_first_sentence(err)}); run "
            "`gcloud auth application-default login`, or check the service-account key (`credentials_file`)"
        )
    if isinstance(
        err, exceptions.RetryError
    ):  # transient errors (connection refused, DNS, 5xx) until the deadline
        endpoint = source.endpoint_url or "https://bigquery.googleapis.com"
        cause: Exception = err
        while isinstance(cause, exceptions.RetryError) and isinstance(cause.cause, Exception):
            cause = cause.cause  # retries nest (the job's around the request's): the error underneath
        if isinstance(cause, exceptions.GoogleAPICallError) and cause.code:
            return (
                f"BigQuery at {endpoint} still failing after retrying for retry_deadline_seconds = "
                f"{source.retry_deadline_seconds:g} ({_answer(cause)}); a service-side or throttling problem: "
                "rerun later"
            )
        return (
            f"cannot reach BigQuery at {endpoint} ({type(cause).__name__}; gave up after retrying, "
            f"retry_deadline_seconds = {source.retry_deadline_seconds:g}); check the source's `endpoint_url`, the "
            "network and any proxy, then rerun"
        )
    if isinstance(err, exceptions.Unauthorized):
        return (
            f"credentials refused ({_answer(err)}): expired or revoked; refresh them (`gcloud auth "
            "application-default login`, or a new key for `credentials_file`) and rerun"
        )
    if isinstance(err, exceptions.Forbidden):
        return f"permission denied ({_answer(err)}); the identity needs bigquery.jobs.create and table read rights"
    if isinstance(err, exceptions.NotFound):
        return f"not found ({_answer(err)})"
    return f"BigQuery refused the request ({_answer(err)})"


def _answer(err: Any) -> str:
    """What BigQuery answered: HTTP status, the first error's reason and message (`HTTP 404 notFound: Not found:
    Table p:d.t was not found in location US`); api_core's own message starts with the request's URL."""
    first = next((e for e in getattr(err, "errors", None) or [] if isinstance(e, dict)), {})
    message = first.get("message") or getattr(err, "message", None) or str(err)
    return answer(getattr(err, "code", None), first.get("reason") or getattr(err, "reason", None), message)


def list_months(client: Any, source: GcpBigQuerySource, today: date) -> list[MonthState]:
    """Every invoice month with rows in the scanned partitions, with its change marker (one small query)."""
    from google.cloud import bigquery

    if source.export_type == "focus":
        month, watermark = (
            "FORMAT_TIMESTAMP('%Y%m', BillingPeriodStart)",
            ("CONCAT(CAST(SUM(BilledCost) AS STRING), '|', CAST(SUM(EffectiveCost) AS STRING))"),
        )
        where = _FOCUS_FILTER
    else:
        month, watermark, where = "invoice.month", "CAST(MAX(export_time) AS STRING)", _PARTITION_FILTER
    sql = (
        f"SELECT {month} AS invoice_month, {watermark} AS watermark, COUNT(*) AS line_items "
        f"FROM {_table(source)} WHERE {where} GROUP BY invoice_month ORDER BY invoice_month"
    )
    since = bigquery.ScalarQueryParameter("since", "TIMESTAMP", _since_text(today, source))
    try:
        rows = _run(client, source, sql, [since]).to_pylist()
    except TableNotFound as err:
        raise TableNotFound(f"{err}; {_CHECK_TABLE}") from None
    return [
        MonthState(str(row["invoice_month"]), str(row["watermark"]), int(row["line_items"]))
        for row in rows
        if row["invoice_month"]
    ]


_CHECK_TABLE = (
    "check the source's `project`, `dataset` and `table` (or `billing_account_id` and `export_type`, which name "
    "the export's table) against the billing export settings, and that the identity can read the dataset"
)


def nothing_found(source: GcpBigQuerySource, today: date) -> str:
    """Why a table with no invoice month found nothing, for a message: the partitions scanned and what to check."""
    since = partitions_since(today, source.lookback_months)
    column = "ChargePeriodStart" if source.export_type == "focus" else "_PARTITIONTIME"
    return (
        f"bq://{source.table_id}: no billing rows with {column} since {since} (lookback_months = "
        f"{source.lookback_months}); {_CHECK_TABLE}, or raise `lookback_months` if the export stopped earlier"
    )


_PARTITION_FILTER = "_PARTITIONTIME >= @since"
_FOCUS_FILTER = "ChargePeriodStart >= @since"  # the FOCUS view has no ingestion-time partition of its own


def _since_text(today: date, source: GcpBigQuerySource) -> str:
    return partitions_since(today, source.lookback_months).isoformat() + " 00:00:00+00:00"


def pull_month(client: Any, source: GcpBigQuerySource, invoice_month: str, today: date) -> pa.Table:
    """One invoice month as flat lines (or, with push_down, aggregated to the marts' grain in BigQuery)."""
    from google.cloud import bigquery

    if source.export_type == "focus":
        return _pull_focus_month(client, source, invoice_month, today)
    expressions = dict(LINE_EXPRESSIONS)
    if source.export_type != "detailed":
        expressions["resource_name"] = "CAST(NULL AS STRING)"  # the standard export has no resource column
    lines = ",\n    ".join(f"{expression} AS {name}" for name, expression in expressions.items())
    sql = (
        f"WITH lines AS (\n  SELECT\n    {lines}\n  FROM {_table(source)}\n"
        f"  WHERE invoice.month = @invoice_month AND {_PARTITION_FILTER}\n)\n"
    )
    if source.push_down:
        sql += _aggregate(list(expressions))
    else:
        sql += "SELECT * FROM lines ORDER BY usage_start_time, project_id, service_id, sku_id, cost"
    parameters = [
        bigquery.ScalarQueryParameter("invoice_month", "STRING", invoice_month),
        bigquery.ScalarQueryParameter("since", "TIMESTAMP", _since_text(today, source)),
    ]
    return _run(client, source, sql, parameters)


def _pull_focus_month(client: Any, source: GcpBigQuerySource, invoice_month: str, today: date) -> pa.Table:
    """One billing month of Google's FOCUS export: its FOCUS and `x_` columns, named from the table's schema."""
    from google.api_core import exceptions
    from google.auth.exceptions import GoogleAuthError
    from google.cloud import bigquery

    try:
        schema = client.get_table(source.table_id).schema
    except (exceptions.GoogleAPIError, GoogleAuthError) as err:
        raise BigQueryError(f"{source.table_id}: {_describe(err, source)}") from None
    columns = [f.name for f in schema if f.name in FOCUS_COLUMNS or f.name.startswith("x_")]
    missing = [
        name for name in ("BilledCost", "BillingPeriodStart", "ChargePeriodStart") if name not in columns
    ]
    if missing:
        raise BigQueryError(f"{source.table_id}: not a FOCUS table, it lacks {', '.join(missing)}")
    selected = ", ".join(f"`{name}`" for name in columns)
    sql = (
        f"SELECT {selected} FROM {_table(source)} "
        f"WHERE FORMAT_TIMESTAMP('%Y%m', BillingPeriodStart) = @invoice_month AND {_FOCUS_FILTER} "
        "ORDER BY ChargePeriodStart"
    )
    parameters = [
        bigquery.ScalarQueryParameter("invoice_month", "STRING", invoice_month),
        bigquery.ScalarQueryParameter("since", "TIMESTAMP", _since_text(today, source)),
    ]
    return _run(client, source, sql, parameters)


def _aggregate(columns: list[str]) -> str:
    """The push-down select: per day and every grouping key, measures summed."""
    keys = [c for c in columns if c not in SUMMED and c not in DROPPED_BY_PUSH_DOWN]
    keys = [c for c in keys if c not in ("usage_start_time", "usage_end_time", "currency_conversion_rate")]
    selected = [
        "TIMESTAMP(DATE(usage_start_time)) AS usage_start_time",
        "TIMESTAMP_ADD(TIMESTAMP(DATE(usage_start_time)), INTERVAL 1 DAY) AS usage_end_time",
        *keys,
        *[f"CAST(NULL AS STRING) AS {c}" for c in DROPPED_BY_PUSH_DOWN],
        "MAX(currency_conversion_rate) AS currency_conversion_rate",
        *[f"SUM({c}) AS {c}" for c in SUMMED],
    ]
    groups = ["1", "2", *[str(i + 3) for i in range(len(keys))]]
    return (
        "SELECT " + ", ".join(selected) + " FROM lines GROUP BY " + ", ".join(groups)
        + " ORDER BY " + ", ".join(groups)
    )  # fmt: skip
