"""The typed pipeline config (one TOML file, validated on load).

A bad config is refused before any data is touched, with one message naming the key or path that is wrong, so
that the engineer on call can fix it without reading code. Relative paths are resolved against the folder of the
config file (for the embedded default: the project root), never against the caller's working directory.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from finrecon.models.alert_rules import AlertRule, default_rules
from finrecon.models.cron import check_cron, check_timezone
from finrecon.models.erp import canonical_columns

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_ENV_VAR = "FINRECON_CONFIG"

# Tag-addressable charge columns an allocation rule may match on (FOCUS names).
RULE_COLUMNS = (
    "ProviderName",
    "BillingAccountId",
    "BillingAccountName",
    "SubAccountId",
    "SubAccountName",
    "ServiceName",
    "ServiceCategory",
    "RegionId",
    "ResourceId",
    "InvoiceIssuerName",
    "ResourceGroup",  # x_resource_group (Azure resource groups)
)


# A folder or scope inside a bucket, container or API: no leading or trailing slash, however it was written.
StorePath = Annotated[str, AfterValidator(lambda value: value.strip("/"))]


class ConfigError(Exception):
    """A config that cannot be used; the message names the key or path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarehouseConfig(_Strict):
    published_path: Path = Path("data/finops.duckdb")
    lake_path: Path = Path("data/lake")
    download_path: Path = Path("data/downloads")  # remote deliveries are fetched here, then landed
    state_path: Path = Path("data/state.duckdb")
    lake_retention_hours: float = Field(default=24.0, ge=0)  # superseded lake parts outlive their replacement
    # DuckDB's memory for the model stage (it spills past it, to temp_directory or beside the state file). Without
    # a cap DuckDB takes up to 80 % of RAM: 9 GB at 100M charges, against 2.5 GB and the same time with 2GB.
    memory_limit: str | None = "2GB"
    temp_directory: Path | None = None  # DuckDB spill directory
    # Files and folders a run writes (published database, state, lake, downloads, report, export) are created
    # under this umask: "0027" gives files 0640 and folders 0750 (owner writes, group reads, others nothing).
    umask: str = Field(default="0027", pattern=r"^0?[0-7]{3}$")

    @property
    def umask_bits(self) -> int:
        return int(self.umask, 8)


class FocusFilesSource(_Strict):
    kind: Literal["focus_files"]
    name: str = "focus_files"
    path: Path
    null_values: list[str] = ["", "NULL", "null"]
    allow_empty: bool = False  # a folder with no data files is a failed input unless this is true


class AwsCurSource(_Strict):
    """An AWS billing export in S3: CUR 2.0 or FOCUS via Data Exports, or a legacy Cost and Usage Report.

    Credentials come only from boto3's default chain (environment, `profile`, instance or container role),
    optionally exchanged for `role_arn` through STS; `endpoint_url` points at an S3-compatible store.
    """

    kind: Literal["aws_cur"]
    name: str = "aws"
    export_type: Literal["cur2", "cur_legacy", "focus"]
    bucket: str = Field(min_length=3)
    prefix: StorePath = ""
    export_name: str = Field(min_length=1)  # Data Exports export name, or the legacy report name
    region: str | None = None
    profile: str | None = None
    role_arn: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = Field(default=8, ge=1)  # botocore retries (throttling, 5xx, connection errors)
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    read_timeout_seconds: float = Field(default=60.0, gt=0)  # a response silent this long is retried
    # A period no longer in the bucket (e.g. expired by an S3 lifecycle rule) keeps its landed rows; false: removed
    keep_missing_periods: bool = True
    null_values: list[str] = ["", "NULL", "null"]
    # No billing period at all under the export is a failed input (a wrong prefix or name) unless this is true
    allow_empty: bool = False

    @property
    def location(self) -> str:
        """Where the export lives, for messages: s3://bucket/prefix/export."""
        parts = [p for p in (self.prefix, self.export_name) if p]
        return f"s3://{self.bucket}/" + "/".join(parts)


class GcpBigQuerySource(_Strict):
    """GCP's Cloud Billing export in BigQuery (standard, detailed or FOCUS table), pulled one month at a time.

    Credentials come from Application Default Credentials, or from the service-account key file named here (a
    path, never the key). `endpoint_url` points the client at another BigQuery API endpoint.
    """

    kind: Literal["gcp_bigquery"]
    name: str = "gcp"
    project: str = Field(min_length=1)  # the project that runs the queries (and is billed for them)
    dataset: str = Field(min_length=1)  # `project.dataset` or `dataset` (then in `project`)
    table: str | None = None
    billing_account_id: str | None = None  # instead of `table`: gcp_billing_export[_resource]_v1_<id>
    # standard: gcp_billing_export_v1_<id>; detailed (resource level): gcp_billing_export_resource_v1_<id>;
    # focus: Google's FOCUS export, gcp_billing_export_focus_<id> (in its linked dataset)
    export_type: Literal["standard", "detailed", "focus"] = "standard"
    location: str | None = None
    push_down: bool = False  # BigQuery aggregates to the marts' grain; no raw line items are pulled
    lookback_months: int = Field(default=3, ge=1)  # partitions scanned for changes: this many months back
    invoice_close_day: int = Field(default=5, ge=1, le=28)  # the previous month is re-pulled until this day
    credentials_file: Path | None = None
    endpoint_url: str | None = None
    storage_read_api: bool = True  # results through the BigQuery Storage Read API when installed, else REST
    retry_initial_seconds: float = Field(default=1.0, gt=0)  # backoff on rateLimitExceeded / backendError
    retry_deadline_seconds: float = Field(default=600.0, gt=0)
    request_timeout_seconds: float = Field(
        default=120.0, gt=0
    )  # starting a query; a silent answer is retried
    # No invoice month in the scanned partitions is a failed input (a wrong table) unless this is true
    allow_empty: bool = False

    @model_validator(mode="after")
    def _one_table(self) -> GcpBigQuerySource:
        if (self.table is None) == (self.billing_account_id is None):
            raise ValueError("set exactly one of `table` and `billing_account_id`")
        if self.push_down and self.export_type == "focus":
            raise ValueError(
                "`push_down` aggregates the standard or detailed export; the FOCUS export is pulled as is"
            )
        return self

    @property
    def table_id(self) -> str:
        """`project.dataset.table` of the export."""
        account = str(self.billing_account_id).replace("-", "_")
        names = {
            "standard": f"gcp_billing_export_v1_{account}",
            "detailed": f"gcp_billing_export_resource_v1_{account}",
            "focus": f"gcp_billing_export_focus_{account}",
        }
        table = self.table or names[self.export_type]
        dataset = self.dataset if "." in self.dataset else f"{self.project}.{self.dataset}"
        return f"{dataset}.{table}"


class AzureExportSource(_Strict):
    """Azure Cost Management exports in Blob Storage: FocusCost, ActualCost or AmortizedCost, any format.

    Credentials: `account_url` with azure-identity's DefaultAzureCredential, else a connection string read from
    the environment variable named by `connection_string_env` (never from this file).
    """

    kind: Literal["azure_export"]
    name: str = "azure"
    account_url: str | None = None  # https://<account>.blob.core.windows.net
    connection_string_env: str = "AZURE_STORAGE_CONNECTION_STRING"
    container: str = Field(min_length=3)
    root_folder_path: StorePath = ""
    export_name: str = Field(min_length=1)
    null_values: list[str] = ["", "NULL", "null"]
    # No month delivered under root/export is a failed input (a misspelt name or folder) unless this is true
    allow_empty: bool = False
    # Storage retries 5xx (ServerBusy is Azure Storage's throttling), resets and timeouts: waits backoff × 2^n
    max_retries: int = Field(default=5, ge=0)
    retry_backoff_seconds: float = Field(default=4.0, ge=0)
    connect_timeout_seconds: float = Field(default=20.0, gt=0)
    read_timeout_seconds: float = Field(default=120.0, gt=0)

    @property
    def location(self) -> str:
        parts = [p for p in (self.container, self.root_folder_path, self.export_name) if p]
        return "azure://" + "/".join(parts)


class AzureQuerySource(_Strict):
    """Daily cost of one scope from the Cost Management query API (small and throttled: a few calls a night).

    By default its totals are a reference the published `provider_reconciliation` compares the exports with;
    `land_as_charges = true` lands them as charges instead, for a small estate without exports.
    """

    kind: Literal["azure_query"]
    name: str = "azure-query"
    # subscriptions/<id>, …/resourceGroups/<rg>, providers/Microsoft.Billing/billingAccounts/<id>
    scope: Annotated[StorePath, Field(min_length=1)]
    dataset: Literal["ActualCost", "AmortizedCost"] = "ActualCost"
    group_by: list[str] = ["ResourceGroupName", "ServiceName"]
    tag_keys: list[str] = Field(default=[], max_length=1)  # the API fills only one TagKey grouping
    months: int = Field(default=2, ge=1, le=12)  # this month and the previous ones, one query each
    base_url: str | None = None  # default https://management.azure.com
    land_as_charges: bool = False
    max_retries: int = Field(default=6, ge=0)
    retry_backoff_seconds: float = Field(default=0.8, ge=0)  # azure-core's backoff factor (Retry-After wins)
    connect_timeout_seconds: float = Field(default=20.0, gt=0)
    read_timeout_seconds: float = Field(default=120.0, gt=0)


Source = Annotated[
    FocusFilesSource | AwsCurSource | GcpBigQuerySource | AzureExportSource | AzureQuerySource,
    Field(discriminator="kind"),
]


class DuplicatesConfig(_Strict):
    """When two POs or two supplier invoices look like one bought twice (duplicate_po_candidates,
    duplicate_invoice_candidates): same vendor and currency, amounts within max(amount, ratio × the larger)."""

    amount_tolerance_amount: float = Field(default=0.01, ge=0)
    amount_tolerance_ratio: float = Field(default=0.0, ge=0)
    # invoices: dated at most this many days apart (0: the same day)
    invoice_days_apart: int = Field(default=0, ge=0)


class ErpFilesConfig(_Strict):
    kind: Literal["files"] = "files"
    po_headers: Path
    po_lines: Path | None = None
    fx_rates: Path | None = None
    invoices: Path | None = None  # supplier invoices, matched in `invoice_match`
    goods_receipts: Path | None = None
    commitments: Path | None = None  # commitment inventory: term dates and funding PO (models/erp.py)
    po_cloud_mapping: Path | None = None  # which spend goes to which PO line (docs/erp_mappings.md)
    status_map: dict[str, Literal["open", "closed", "cancelled"]] = {}
    # An extract in the ERP's own column names: `[erp.column_map.<table>]` source column = canonical column, and
    # `[erp.column_defaults.<table>]` canonical column = constant for what the ERP lacks (docs/erp_mappings.md)
    column_map: dict[str, dict[str, str]] = {}
    column_defaults: dict[str, dict[str, str]] = {}
    # invoice matching: a difference within max(amount, ratio × |reference|) counts as matched
    match_tolerance_ratio: float = Field(default=0.01, ge=0)
    match_tolerance_amount: float = Field(default=0.01, ge=0)
    duplicates: DuplicatesConfig = DuplicatesConfig()

    def path_of(self, table: str) -> Path | None:
        """The configured extract for an ERP table name (`po_headers`, `fx_rates`, ...), if any."""
        path = getattr(self, table)
        assert path is None or isinstance(path, Path), table
        return path

    def extract_paths(self) -> dict[str, Path]:
        """Every configured extract by table name (the fields typed as paths)."""
        return {
            name: path for name in type(self).model_fields if isinstance(path := getattr(self, name), Path)
        }

    @classmethod
    def extract_names(cls) -> list[str]:
        """The ERP tables a file can be configured for (the fields typed as paths)."""
        return [name for name, field in cls.model_fields.items() if field.annotation in (Path, Path | None)]

    @field_validator("column_map")
    @classmethod
    def _one_source_per_column(cls, tables: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        # Headers are read lower-cased and trimmed, so source names are matched that way too.
        cleaned: dict[str, dict[str, str]] = {}
        for table, mapping in tables.items():
            sources = {source.strip().lower(): target.strip() for source, target in mapping.items()}
            if len(sources) != len(mapping):
                raise ValueError(f"{table}: two source columns differ only in case or spaces")
            targets = list(sources.values())
            doubled = sorted({t for t in targets if targets.count(t) > 1})
            if doubled:
                raise ValueError(f"{table}: several source columns map to {doubled[0]!r}")
            cleaned[table] = sources
        return cleaned

    @model_validator(mode="after")
    def _known_tables(self) -> ErpFilesConfig:
        for key in ("column_map", "column_defaults"):
            for table in getattr(self, key):
                if table not in self.extract_names():
                    known = ", ".join(self.extract_names())
                    raise ValueError(f"{key}: unknown ERP table {table!r} (known: {known})")
        return self


class TagsConfig(_Strict):
    po_keys: list[str] = ["po", "po_number", "purchase_order", "po_id"]
    po_default_prefix: str | None = None

    @field_validator("po_default_prefix")
    @classmethod
    def _has_letter(cls, prefix: str | None) -> str | None:
        # An all-digit prefix would make normalisation non-idempotent ("45" + "1001" is again all digits).
        if prefix is not None and not any(c.isascii() and c.isalpha() for c in prefix):
            raise ValueError("must contain at least one letter A-Z")
        return prefix

    @field_validator("po_keys")
    @classmethod
    def _non_empty(cls, keys: list[str]) -> list[str]:
        if not keys or any(not k.strip() for k in keys):
            raise ValueError("must be a non-empty list of non-empty tag keys")
        return keys


class AllocationRule(_Strict):
    """Allocate charges that carry no PO tag: every condition in `match` must hold; the first rule wins."""

    name: str
    po: str
    match: dict[str, str]

    @field_validator("match")
    @classmethod
    def _known_columns(cls, match: dict[str, str]) -> dict[str, str]:
        if not match:
            raise ValueError("needs at least one condition")
        for column in match:
            if column not in RULE_COLUMNS and not column.startswith("tag:"):
                allowed = ", ".join(RULE_COLUMNS)
                raise ValueError(f"unknown match column {column!r} (allowed: {allowed}, or tag:<key>)")
        return match


class ValidationConfig(_Strict):
    max_failure_ratio: float = Field(default=0.5, ge=0, le=1)
    fail_on_file_error: bool = False


class _AlertChannelBase(_Strict):
    """What every alert channel shares: its name (routes refer to it) and how hard delivery tries.

    A digest that fails every attempt stays pending in the outbox and is tried again on the next run.
    """

    timeout_seconds: float = Field(default=10.0, gt=0)  # one attempt; a timeout counts as a failure
    max_attempts: int = Field(default=3, ge=1)
    backoff_seconds: float = Field(default=2.0, ge=0)  # wait before retry n: backoff × 2^(n-1)


class _SecretUrl(_AlertChannelBase):
    """A URL that carries a token: read from an environment variable or a Prefect Secret block, never the config."""

    url_env: str | None = None
    url_secret_block: str | None = None

    @model_validator(mode="after")
    def _one_url_source(self) -> _SecretUrl:
        if (self.url_env is None) == (self.url_secret_block is None):
            raise ValueError("set exactly one of `url_env` and `url_secret_block` (the URL is a secret)")
        return self


class LogAlertChannel(_AlertChannelBase):
    """The run's log: always there (as `log`) even when not configured."""

    kind: Literal["log"]
    name: str = "log"


class WebhookAlertChannel(_SecretUrl):
    """A generic webhook: one JSON POST per digest (body documented in README "Alerts")."""

    kind: Literal["webhook"]
    name: str = "webhook"
    headers: dict[str, str] = {}  # plain headers, e.g. { "X-Team" = "finops" }
    header_envs: dict[str, str] = {}  # header name = environment variable holding its (secret) value

    @field_validator("headers")
    @classmethod
    def _no_secret_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        # A config file is read by many and copied around: credentials belong in the environment or a block.
        for name in headers:
            lowered = name.lower()
            if lowered in ("authorization", "proxy-authorization", "cookie") or any(
                word in lowered for word in ("token", "secret", "key", "password")
            ):
                raise ValueError(f"{name!r} looks like a credential: set it in `header_envs` instead")
        return headers


class SlackAlertChannel(_SecretUrl):
    """A Slack incoming webhook: one message (`text` plus `blocks`) per digest."""

    kind: Literal["slack"]
    name: str = "slack"


class EmailAlertChannel(_AlertChannelBase):
    """A plain-text (and HTML) e-mail digest over SMTP; the password comes from the environment or a block."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True)

    kind: Literal["email"]
    name: str = "email"
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)  # default: 587 starttls, 465 ssl, 25 none
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    ca_file: Path | None = None  # trust a private CA (PEM) instead of the system store
    username: str | None = None
    password_env: str | None = None
    password_secret_block: str | None = None
    from_address: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    subject_prefix: str = "[finrecon]"

    @model_validator(mode="after")
    def _password_source(self) -> EmailAlertChannel:
        if self.password_env is not None and self.password_secret_block is not None:
            raise ValueError("set at most one of `password_env` and `password_secret_block`")
        if self.username is None and (self.password_env or self.password_secret_block):
            raise ValueError("a password needs a `username`")
        return self

    @property
    def smtp_port(self) -> int:
        """The configured port, else the usual one for the TLS mode."""
        return self.port or {"starttls": 587, "ssl": 465, "none": 25}[self.tls]


AlertChannel = Annotated[
    LogAlertChannel | WebhookAlertChannel | SlackAlertChannel | EmailAlertChannel,
    Field(discriminator="kind"),
]


class AlertRoute(_Strict):
    """Send the alerts that match to `channels`: every listed condition must hold; every matching route applies.

    `rules` and `rule_kinds` name rules; `severities` filters; `match` compares alert attributes (`cost_center`,
    `vendor_id`, `po_number`, or a scope column such as `provider_name`) with a value or list of values (shell
    wildcards allowed, e.g. "CC-1*").
    """

    name: str | None = None
    rules: list[str] = []
    rule_kinds: list[str] = []
    severities: list[Literal["critical", "warning", "info"]] = []
    match: dict[str, str | list[str]] = {}
    channels: list[str] = Field(min_length=1)


class AlertsConfig(_Strict):
    burn_thresholds: list[float] = [0.5, 0.8, 1.0]
    untagged_ratio_max: float = Field(default=0.05, ge=0, le=1)
    # delivery (README "Alerts"): channels by name, routes, and where an alert no route matches goes
    channels: list[AlertChannel] = []
    routes: list[AlertRoute] = []
    default_channels: list[str] = ["log"]
    # kinds: finrecon/models/alert_rules.py; evaluation: finrecon/alerts/rules.py. `[[alerts.rules]]` replaces
    # the default set (one rule of each kind)
    rules: list[AlertRule] = Field(default_factory=default_rules)
    remind_after_days: int | None = Field(default=None, ge=1)  # re-send a still-open alert after N days

    @field_validator("rules")
    @classmethod
    def _distinct_rule_names(cls, rules: list[AlertRule]) -> list[AlertRule]:
        names = [rule.name for rule in rules]
        if len(names) != len(set(names)):
            raise ValueError("every rule needs a distinct name (two rules of one kind: set `name`)")
        return rules

    @field_validator("burn_thresholds")
    @classmethod
    def _sorted_positive(cls, values: list[float]) -> list[float]:
        if not values or any(v <= 0 for v in values):
            raise ValueError("must be a non-empty list of positive ratios")
        return sorted(set(values))

    @model_validator(mode="after")
    def _known_channels(self) -> AlertsConfig:
        names = [c.name for c in self.channels]
        if len(names) != len(set(names)):
            raise ValueError("channels: every channel needs a distinct name")
        known = set(self.channels_by_name())
        named = [("default_channels", n) for n in self.default_channels]
        named += [(f"routes[{i}].channels", n) for i, r in enumerate(self.routes) for n in r.channels]
        for key, name in named:
            if name not in known:
                raise ValueError(f"{key}: unknown channel {name!r} (known: {', '.join(sorted(known))})")
        return self

    def channels_by_name(self) -> dict[str, AlertChannel]:
        """Every channel by name; `log` is always there (the run's log) unless configured otherwise."""
        channels: dict[str, AlertChannel] = {"log": LogAlertChannel(kind="log")}
        channels.update({c.name: c for c in self.channels})
        return channels


class ReportConfig(_Strict):
    untagged_top_n: int = Field(default=100, ge=1)
    trailing_days: int = Field(default=30, ge=1)
    # Every money column of the marts is also given in this currency (ERP FX rates; a missing rate gives NULL).
    currency: str = "USD"

    @field_validator("currency")
    @classmethod
    def _iso_code(cls, code: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{3}", code.strip()):
            raise ValueError("must be a three-letter ISO 4217 code, e.g. USD")
        return code.strip().upper()


# Usage that commitments (RIs, Savings Plans, CUDs, Azure reservations) can cover, by FOCUS ProviderName and
# ServiceName: the denominator of commitment coverage. A starting point; set `[commitments.eligible_services]`.
DEFAULT_ELIGIBLE_SERVICES: dict[str, list[str]] = {
    "AWS": [
        "Amazon Elastic Compute Cloud",
        "Amazon Relational Database Service",
        "Amazon ElastiCache",
        "Amazon Redshift",
        "Amazon OpenSearch Service",
        "Amazon MemoryDB",
        "Amazon SageMaker",
        "AWS Lambda",
        "Amazon Elastic Container Service",
    ],
    "Microsoft": [
        "Virtual Machines",
        "Virtual Machine Scale Sets",
        "SQL Database",
        "Azure Cosmos DB",
        "Azure DB for MySQL",
        "Azure DB for PostgreSQL",
        "App Service",
    ],
    "Google Cloud": ["Compute Engine", "Cloud SQL", "Kubernetes Engine"],
    "Oracle": ["COMPUTE"],
}


class CommitmentsConfig(_Strict):
    """Commitment coverage's eligibility map and the expiry warning window."""

    eligible_services: dict[str, list[str]] = DEFAULT_ELIGIBLE_SERVICES
    expiring_within_days: int = Field(default=90, ge=0)


class ScheduleConfig(_Strict):
    """When `finrecon serve` runs the nightly flow: a crontab line read in an IANA timezone (DST-aware)."""

    cron: str = "30 2 * * *"
    timezone: str = "UTC"
    deployment: str = Field(default="finrecon-nightly", min_length=1)  # the Prefect deployment's name

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)


class RunnerConfig(_Strict):
    """Where the per-file tasks run: threads in this process, or a Dask cluster (prefect-dask)."""

    task_runner: Literal["threads", "dask"] = "threads"
    max_workers: int = Field(default=4, ge=1)  # threads
    dask_address: str | None = None  # e.g. "tcp://scheduler:8786"; None starts a local cluster
    dask_workers: int = Field(default=2, ge=1)  # local cluster size when no address is given
    # Rows per chunk an input is read, validated and written in: peak memory per landing task follows it, not
    # the input's size. Fewer rows: less memory, a little more time per row.
    chunk_rows: int = Field(default=250_000, ge=1)
    # Seconds the temporary Prefect API server (a run without PREFECT_API_URL) may take to answer. Prefect's own
    # default, 20 s, is exceeded on two loaded cores; how long to wait is not what is published, so not hashed.
    prefect_startup_seconds: int = Field(default=120, ge=1, exclude=True)


class Config(_Strict):
    """The whole pipeline config; see DESIGN §6 and README "Configuration"."""

    warehouse: WarehouseConfig = WarehouseConfig()
    sources: list[Source]
    erp: ErpFilesConfig
    tags: TagsConfig = TagsConfig()
    allocation_rules: list[AllocationRule] = []
    validation: ValidationConfig = ValidationConfig()
    alerts: AlertsConfig = AlertsConfig()
    report: ReportConfig = ReportConfig()
    commitments: CommitmentsConfig = CommitmentsConfig()
    runner: RunnerConfig = RunnerConfig()
    # when to run, not what to publish: left out of the dump the inputs signature hashes
    schedule: ScheduleConfig = Field(default=ScheduleConfig(), exclude=True)
    as_of: date | None = None
    base_dir: Path = Field(default=PROJECT_ROOT, exclude=True)

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        names = [s.name for s in self.sources]
        if len(names) != len(set(names)):
            raise ValueError("sources: every source needs a distinct name")
        rules = [r.name for r in self.allocation_rules]
        if len(rules) != len(set(rules)):
            raise ValueError("allocation_rules: every rule needs a distinct name")
        return self

    def resolve(self, path: Path) -> Path:
        """A config path made absolute against the config file's folder."""
        return path if path.is_absolute() else (self.base_dir / path)


DEFAULT_CONFIG_TOML = """
# The bundled default: fixtures from data/fixtures into data/ (see data/fixtures/README.md).
[warehouse]
published_path = "data/finops.duckdb"
lake_path = "data/lake"
state_path = "data/state.duckdb"

[[sources]]
kind = "focus_files"
name = "fixtures"
path = "data/fixtures/focus"

[erp]
kind = "files"
po_headers = "data/fixtures/erp/po_headers.csv"
po_lines = "data/fixtures/erp/po_lines.csv"
fx_rates = "data/fixtures/erp/fx_rates.csv"
invoices = "data/fixtures/erp/invoices.csv"
goods_receipts = "data/fixtures/erp/goods_receipts.csv"
po_cloud_mapping = "data/fixtures/erp/po_cloud_mapping.csv"
commitments = "data/fixtures/erp/commitments.csv"

[tags]
po_keys = ["po", "po_number", "purchase_order", "po_id"]
po_default_prefix = "PO"

[[allocation_rules]]
name = "aws-shared-platform-account"
po = "PO-1007"
match = { ProviderName = "AWS", SubAccountId = "85742851457" }

[alerts]
burn_thresholds = [0.5, 0.8, 1.0]
untagged_ratio_max = 0.05

[report]
currency = "EUR"  # every mart's money also in EUR, at the ERP's USD→EUR rates

[commitments]
expiring_within_days = 90
# eligible_services: the default map (DEFAULT_ELIGIBLE_SERVICES); e.g. AWS = ["Amazon Elastic Compute Cloud"]
"""


def _format_error(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"])
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{key}: {msg}")
    return "; ".join(lines)


def parse_config(raw: dict[str, Any], base_dir: Path, origin: str) -> Config:
    """Validate a parsed TOML document; raise ConfigError naming the offending key."""
    try:
        config = Config.model_validate({**raw, "base_dir": base_dir})
    except ValidationError as err:
        raise ConfigError(f"{origin}: {_format_error(err)}") from None
    _check_paths_exist(config, origin)
    _check_column_maps(config, origin)
    # The BigQuery client opens the key file itself (it sees only the source): relative to the config file, as
    # `_check_paths_exist` found it, not to whatever folder the run starts in.
    sources = [
        s.model_copy(update={"credentials_file": config.resolve(s.credentials_file)})
        if isinstance(s, GcpBigQuerySource) and s.credentials_file is not None
        else s
        for s in config.sources
    ]
    return config.model_copy(update={"sources": sources})


def _check_column_maps(config: Config, origin: str) -> None:
    """Mapped and defaulted columns must be canonical columns of their table, or a typo would pass silently."""
    named = {
        "column_map": {table: list(m.values()) for table, m in config.erp.column_map.items()},
        "column_defaults": {table: list(d) for table, d in config.erp.column_defaults.items()},
    }
    for key, by_table in named.items():
        for table, columns in by_table.items():
            known = canonical_columns(table)
            for column in columns:
                if column not in known:
                    raise ConfigError(
                        f"{origin}: erp.{key}.{table}: {column!r} is not a column of {table} "
                        f"(canonical columns: {', '.join(known)})"
                    )


def _check_paths_exist(config: Config, origin: str) -> None:
    inputs: list[tuple[str, Path | None]] = [
        (f"sources[{i}].path", s.path)
        for i, s in enumerate(config.sources)
        if isinstance(s, FocusFilesSource)
    ]
    inputs += [
        (f"sources[{i}].credentials_file", s.credentials_file)
        for i, s in enumerate(config.sources)
        if isinstance(s, GcpBigQuerySource)
    ]
    inputs += [(f"erp.{name}", path) for name, path in config.erp.extract_paths().items()]
    for key, path in inputs:
        if path is not None and not config.resolve(path).exists():
            raise ConfigError(f"{origin}: {key}: path does not exist: {path}")


def load_config(path: Path | None = None) -> Config:
    """Load the config from `path`, else $FINRECON_CONFIG, else the bundled default."""
    if path is None and os.environ.get(CONFIG_ENV_VAR):
        path = Path(os.environ[CONFIG_ENV_VAR])
    if path is None:
        return parse_config(tomllib.loads(DEFAULT_CONFIG_TOML), PROJECT_ROOT, "<bundled default config>")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_config(raw, path.resolve().parent, str(path))
