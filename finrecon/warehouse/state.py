"""The pipeline's own state file (DuckDB): which inputs are landed, which lake parts are current, the
quarantine, run history, PO-burn history and billing-period history. Analysts never open it, so the pipeline can
write it at any time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

SCHEMA = """
create table if not exists input_files (
    source varchar not null,
    file_path varchar not null,
    file_key varchar primary key,
    size_bytes bigint,
    mtime_ns bigint,
    sha256 varchar,
    landing_signature varchar,
    status varchar not null,          -- landed | failed
    landed_run_id varchar,
    rows_read bigint, rows_loaded bigint, rows_quarantined bigint,
    billed_read double, billed_loaded double, billed_quarantined double,
    effective_read double, effective_loaded double, effective_quarantined double,
    error varchar
);
create table if not exists lake_parts (
    file_key varchar not null,
    part_path varchar primary key,
    provider varchar not null,
    billing_period varchar not null,
    row_count bigint not null,
    billed_cost double not null,
    effective_cost double not null,
    run_id varchar not null
);
create table if not exists superseded_parts (
    part_path varchar primary key,    -- a part no longer current, kept while older publications may read it
    superseded_at timestamptz not null
);
create table if not exists quarantine (
    run_id varchar not null,
    source varchar not null,
    file_path varchar not null,
    file_key varchar not null,
    row_number bigint,
    column_name varchar,
    check_name varchar not null,
    raw_value varchar,
    message varchar
);
create table if not exists runs (
    run_id varchar primary key,
    started_at timestamptz not null,
    finished_at timestamptz,
    as_of date,
    status varchar not null,          -- running | succeeded | failed
    files_total integer, files_landed integer, files_unchanged integer, files_failed integer,
    files_removed integer,
    rows_read bigint, rows_loaded bigint, rows_quarantined bigint,
    billed_read double, billed_loaded double, billed_quarantined double,
    effective_read double, effective_loaded double, effective_quarantined double,
    published_charge_rows bigint, published_billed_cost double, published_effective_cost double,
    message varchar
);
create table if not exists reference_totals (
    source varchar not null,           -- a provider API's own daily totals, to reconcile the exports against
    file_key varchar not null,
    scope varchar not null,
    dataset varchar not null,
    usage_date date,
    currency varchar,
    billing_account_id varchar,
    subscription_id varchar,
    cost double,
    run_id varchar not null
);
create table if not exists restatements (
    run_id varchar not null,           -- a re-delivered input changed what it had landed: what moved, where
    source varchar not null,
    file_path varchar not null,
    billing_period varchar,
    provider_name varchar,
    billing_account_id varchar,
    service_name varchar,
    billing_currency varchar,
    rows_before bigint, rows_after bigint,
    billed_before double, billed_after double, billed_delta double,
    effective_before double, effective_after double, effective_delta double,
    restated_at timestamptz not null
);
alter table quarantine add column if not exists source_file varchar;  -- data file within a multi-file input
alter table runs add column if not exists inputs_signature varchar;
alter table runs add column if not exists stage_seconds varchar;  -- JSON: stage -> wall seconds
alter table runs add column if not exists invariants_checked integer;  -- accounting invariants that held (warehouse/invariants.py)
create table if not exists run_models (
    run_id varchar not null,           -- per run: each model's wall seconds, and what its partial recomputed
    model varchar not null,
    seconds double not null,
    partitions integer,                -- lake partitions (provider × billing period) current in the run
    partitions_changed integer,        -- new, re-delivered or removed since the partial was last computed
    partitions_read integer,           -- read to recompute the partial
    charge_keys_recomputed integer
);
create table if not exists partial_partitions (
    model varchar not null,            -- a partial kept between runs (sql/partials/<model>.sql, warehouse/partials.py)
    partition varchar not null,        -- a lake partition: the folder of its parts
    signature varchar not null,        -- sha256 of the partial's SQL and the partition's current part paths
    run_id varchar not null,           -- the run that last read the partition for this partial
    primary key (model, partition)
);
create table if not exists partial_charge_keys (
    model varchar not null,            -- which charge keys (provider name × charge month) a lake partition holds
    partition varchar not null,
    provider_name varchar,
    charge_month varchar
);
create table if not exists erp_versions (
    table_name varchar primary key,    -- an ERP extract's last good version, its rows in erp_version__<table>
    file_path varchar not null,        -- the extract's file as configured when it landed
    row_count bigint not null,
    run_id varchar not null,           -- the run that landed it
    landed_at timestamptz not null,
    stood_in_run_id varchar,           -- the last run that published it in place of its failed file
    stood_in_for varchar               -- that failed file, as the run named it
);
create table if not exists run_files (
    run_id varchar not null,
    source varchar not null,
    file_path varchar not null,
    status varchar not null,          -- landed | unchanged | failed | removed | empty
    rows_read bigint, rows_loaded bigint, rows_quarantined bigint,
    billed_read double, billed_loaded double, billed_quarantined double,
    effective_read double, effective_loaded double, effective_quarantined double,
    error varchar
);
create table if not exists billing_period_history (
    run_id varchar not null,           -- every published version of billing_period_totals: one row per key
    as_of date not null,               -- whose figures a publication changed, before and after
    published_at timestamptz not null,
    billing_period varchar,
    provider_name varchar,
    billing_account_id varchar,
    billing_currency varchar,
    version integer not null,          -- 1, 2, ... per key
    change_kind varchar not null,      -- new | changed | removed
    period_closed boolean not null,
    restated boolean not null,
    total_cost_before double, total_cost_after double, total_cost_delta double,
    valid_po_cost_before double, valid_po_cost_after double, valid_po_cost_delta double,
    invalid_po_cost_before double, invalid_po_cost_after double, invalid_po_cost_delta double,
    untagged_cost_before double, untagged_cost_after double, untagged_cost_delta double,
    total_billed_cost_before double, total_billed_cost_after double, total_billed_cost_delta double,
    charge_count_before bigint, charge_count_after bigint, charge_count_delta bigint
);
create table if not exists po_header_versions (
    po_number varchar not null,        -- every version of each ERP PO header seen by a publishing run
    version integer not null,          -- 1, 2, ... per PO
    change_kind varchar not null,      -- new | changed | removed (gone from the extract) | returned
    changed_fields varchar[] not null, -- the header fields that differ from the previous version
    in_force_from date,                -- as_of of the run that first saw it (NULL for version 1: from the start)
    seen_run_id varchar not null,
    seen_at timestamptz not null,
    vendor_id varchar, vendor_name varchar, po_type varchar, cost_center varchar, parent_po_number varchar,
    currency varchar, total_amount double, status varchar, erp_status varchar,
    valid_from date, valid_to date, requested_at date, approved_at date, issued_at date
);
create table if not exists alerts (
    alert_id varchar primary key,      -- one instance of an alert: <alert_key>#<n>, n = 1, 2, ... per key
    alert_key varchar not null,        -- rule:scope:vendor:threshold (finrecon/alerts/rules.py)
    instance integer not null,
    rule varchar not null,
    rule_kind varchar not null,
    status varchar not null,           -- open | resolved | superseded
    severity varchar not null,
    title varchar not null,
    message varchar not null,
    value double,
    threshold double,
    scope varchar,                     -- JSON object
    po_number varchar,
    vendor_id varchar,
    cost_center varchar,
    first_fired_run_id varchar not null,
    first_fired_at timestamptz not null,
    first_fired_as_of date,
    last_seen_run_id varchar not null,
    last_seen_at timestamptz not null,
    last_seen_as_of date,
    resolved_run_id varchar,
    resolved_at timestamptz,
    last_notified_at timestamptz
);
create table if not exists alert_notifications (
    notification_id varchar primary key,  -- <alert_id>:<event>:<run_id>:<channel>
    alert_id varchar not null,
    alert_key varchar not null,
    channel varchar not null,
    event varchar not null,            -- fired | reminder | resolved
    status varchar not null,           -- pending | sent
    title varchar not null,
    message varchar not null,
    attempts integer not null,
    last_error varchar,
    created_run_id varchar not null,
    created_at timestamptz not null,
    as_of date,
    sent_run_id varchar,
    sent_at timestamptz
);
"""


class StateLockedError(RuntimeError):
    """Another process holds the state file: most likely another run is in progress."""


class State:
    """A thin, explicit API over the state file; every write that must be atomic is one transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.con = con
        self.path = path
        self.catalog = str(con.execute("select current_database()").fetchall()[0][0])

    @classmethod
    def open(cls, path: Path, memory_limit: str | None = None, temp_directory: Path | None = None) -> State:
        path.parent.mkdir(parents=True, exist_ok=True)
        settings: dict[str, Any] = {}
        if memory_limit:
            settings["memory_limit"] = memory_limit
        if temp_directory:
            settings["temp_directory"] = str(temp_directory)
        try:
            con = duckdb.connect(str(path), config=settings)
        except duckdb.IOException as err:
            if "lock" in str(err).lower():
                raise StateLockedError(
                    f"state file {path} is in use by another process (is a run in progress?)"
                ) from None
            raise
        con.execute(SCHEMA)
        return cls(con, path)

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.con.execute("begin transaction")
        try:
            yield self.con
        except BaseException:
            self.con.execute("rollback")
            raise
        self.con.execute("commit")

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql, params or [])
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def insert_frame(self, table: str, frame: pl.DataFrame) -> None:
        """Append a polars frame whose columns are a subset of `table`'s, matched by name."""
        if frame.height == 0:
            return
        self.con.register("__incoming", frame.to_arrow())
        try:
            columns = ", ".join(f'"{c}"' for c in frame.columns)
            self.con.execute(f"insert into {table} ({columns}) select {columns} from __incoming")
        finally:
            self.con.unregister("__incoming")
