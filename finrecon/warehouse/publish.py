"""Build the published database beside the old one and swap it in with `os.replace`.

Analysts keep the file open with their own tools while a run works; DuckDB locks a file against other
processes, so the pipeline never writes the published file: it builds `.<name>.<run_id>.building` next to it,
closes it, and renames it over the old one. An open session keeps its snapshot; a new one sees the new data; a
killed run leaves the last publication untouched. Charges are not copied: `charges` is a view over the lake's
current Parquet parts (replaced parts stay on disk for `warehouse.lake_retention_hours`, so older snapshots keep
reading them); the marts are tables.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from finrecon.core import progress
from finrecon.core.failpoints import failpoint
from finrecon.core.sql_text import literal
from finrecon.models import charges as charge_models
from finrecon.models.config import Config
from finrecon.models.quarantine import ROW_COLUMN
from finrecon.warehouse import invariants, partials, po_history
from finrecon.warehouse.dictionary import apply_comments
from finrecon.warehouse.erp_landing import ErpData
from finrecon.warehouse.models_runner import load_models, run_macros, run_model
from finrecon.warehouse.state import State

PUBLISH_ALIAS = "publishing"
# State tables copied into every publication, for analysts and alert rules.
STATE_TABLES = ("runs", "run_files", "quarantine", "restatements", "alerts", "alert_notifications")


@dataclass(frozen=True)
class BuildResult:
    as_of: date
    path: Path
    charge_rows: int
    billed_cost: float
    effective_cost: float
    model_seconds: dict[str, float]
    invariants_checked: int
    partials: tuple[partials.PartialRefresh, ...] = ()


def _empty_lake_charges() -> pl.DataFrame:
    typed = charge_models.type_charges(pl.DataFrame({ROW_COLUMN: pl.Series([], dtype=pl.Int64)}))
    return typed.with_columns(
        pl.lit(None, dtype=pl.Utf8).alias("x_source"),
        pl.lit(None, dtype=pl.Utf8).alias("x_source_file"),
        pl.lit(None, dtype=pl.Utf8).alias("x_run_id"),
        pl.lit(None, dtype=pl.Utf8).alias("x_resource_group"),
    )


def _register(state: State, name: str, frame: pl.DataFrame) -> None:
    state.con.register(f"__{name}", frame.to_arrow())
    state.con.execute(f"create or replace temp table {name} as select * from __{name}")
    state.con.unregister(f"__{name}")


def _load_inputs(state: State, config: Config, parts: list[str], erp: ErpData) -> None:
    """Temp tables the staging models read: the lake's current parts, the ERP extracts, the config."""
    lake_root = config.resolve(config.warehouse.lake_path)
    if parts:
        # A view in the published file: the charges are read from the lake, not copied (absolute paths, so
        # any client's working directory works; superseded parts outlive it by warehouse.lake_retention_hours).
        # A view's body cannot take parameters: the paths are quoted by DuckDB (sql_text.literal).
        files = ", ".join(literal((lake_root / p).resolve().as_posix()) for p in parts)
        state.con.execute(
            f"create or replace view {PUBLISH_ALIAS}.main.lake_charges as select * from "
            f"read_parquet([{files}], union_by_name = true, hive_partitioning = false)"
        )
    else:
        state.con.register("__empty_lake", _empty_lake_charges().to_arrow())
        state.con.execute(f"create table {PUBLISH_ALIAS}.main.lake_charges as select * from __empty_lake")
        state.con.unregister("__empty_lake")
    state.con.execute(
        f'create or replace temp table reference_totals as select * from "{state.catalog}".main.reference_totals'
    )
    for table, frame in erp.frames.items():
        _register(state, f"erp_{table}", frame)
    keys = config.tags.po_keys
    _register(state, "cfg_po_keys_raw", pl.DataFrame({"key_position": range(len(keys)), "po_key": keys}))
    state.con.execute(
        "create or replace temp table cfg_po_keys as "
        "select key_position, po_key, normalize_tag_key(po_key) as key_norm from cfg_po_keys_raw"
    )
    rules = config.allocation_rules
    _register(
        state,
        "cfg_allocation_rules",
        pl.DataFrame(
            {
                "rule_position": range(len(rules)),
                "rule_name": [r.name for r in rules],
                "po_number": [r.po for r in rules],
            },
            schema={"rule_position": pl.Int64, "rule_name": pl.Utf8, "po_number": pl.Utf8},
        ),
    )
    conditions = [
        {
            "rule_position": i,
            "match_column": column,
            "tag_key": column.removeprefix("tag:"),
            "pattern": pattern,
        }
        for i, rule in enumerate(rules)
        for column, pattern in rule.match.items()
    ]
    _register(
        state,
        "cfg_allocation_conditions",
        pl.DataFrame(
            conditions,
            schema={
                "rule_position": pl.Int64,
                "match_column": pl.Utf8,
                "tag_key": pl.Utf8,
                "pattern": pl.Utf8,
            },
        ),
    )
    _register(state, "cfg_burn_thresholds", pl.DataFrame({"threshold": config.alerts.burn_thresholds}))
    eligible = config.commitments.eligible_services
    _register(
        state,
        "cfg_commitment_eligibility",
        pl.DataFrame(
            [(provider, service) for provider, services in eligible.items() for service in services],
            schema={"provider_name": pl.Utf8, "service_name": pl.Utf8},
            orient="row",
        ),
    )


def _set_variables(state: State, config: Config) -> None:
    erp = config.erp
    variables: dict[str, object] = {
        "po_default_prefix": config.tags.po_default_prefix,
        "trailing_days": int(config.report.trailing_days),
        "untagged_top_n": int(config.report.untagged_top_n),
        "match_tolerance_ratio": float(erp.match_tolerance_ratio),
        "match_tolerance_amount": float(erp.match_tolerance_amount),
        "duplicate_tolerance_amount": float(erp.duplicates.amount_tolerance_amount),
        "duplicate_tolerance_ratio": float(erp.duplicates.amount_tolerance_ratio),
        "duplicate_invoice_days_apart": int(erp.duplicates.invoice_days_apart),
        "reporting_currency": config.report.currency,
        "expiring_within_days": int(config.commitments.expiring_within_days),
    }
    for name, value in variables.items():  # names are this code's; values from config travel as parameters
        state.con.execute(f"set variable {name} = ?", [value])


def _resolve_as_of(state: State, requested: date | None) -> date:
    """The reconciliation date: as requested, else the last charge date in the data, else today."""
    if requested is None:
        requested = state.con.execute("select max(x_charge_date) from stg_focus__charges").fetchall()[0][0]
    as_of = requested or date.today()
    state.con.execute("set variable as_of = ?::date", [as_of])
    return as_of


def _published_totals(state: State) -> tuple[int, float, float]:
    """Rows, Σ BilledCost and Σ EffectiveCost of the charges being published (their daily aggregate)."""
    rows, billed, effective = state.con.execute(
        "select coalesce(sum(charge_count), 0), coalesce(sum(BilledCost), 0), coalesce(sum(EffectiveCost), 0) "
        f"from {PUBLISH_ALIAS}.main.charges_daily"
    ).fetchall()[0]
    return int(rows), float(billed), float(effective)


def _add_new_columns(state: State, history: str, current: str) -> None:
    """A history table gains the columns a newer release added to its mart (older rows read NULL there)."""
    known = {row[0] for row in state.con.execute(f"select column_name from (describe {history})").fetchall()}
    for name, type_ in state.con.execute(
        f"select column_name, column_type from (describe {current})"
    ).fetchall():
        if name not in known:
            state.con.execute(f'alter table {history} add column "{name}" {type_}')


def _keep_po_burn_history(state: State, as_of: date) -> None:
    """po_burn keeps one set of rows per as_of: this run's rows replace that date's, others stay."""
    state_po_burn = f'"{state.catalog}".main.po_burn_history'
    state.con.execute(
        f"create table if not exists {state_po_burn} as select * from {PUBLISH_ALIAS}.main.po_burn limit 0"
    )
    _add_new_columns(state, state_po_burn, f"{PUBLISH_ALIAS}.main.po_burn")
    with state.transaction() as con:
        con.execute(f"delete from {state_po_burn} where as_of = ?", [as_of])
        con.execute(f"insert into {state_po_burn} by name select * from {PUBLISH_ALIAS}.main.po_burn")
    state.con.execute(
        f"create or replace table {PUBLISH_ALIAS}.main.po_burn as "
        f"select * from {state_po_burn} order by as_of, po_number"
    )


# A figure moved when it differs by more than the conservation check's tolerance (1e-9, relative for large sums):
# re-summing the same charges in another order must not look like a restatement.
_FIGURE_MOVED_MACRO = """
create or replace temp macro billing_period_figure_moved(before_value, after_value) as
    abs(after_value - before_value) > greatest(1e-9, 1e-9 * greatest(abs(before_value), abs(after_value)))
"""

# The published versions of billing_period_totals: one row per key whose figures this run changes, with the
# key's figures in its latest version ("before", zeros when it has none or was removed) and now ("after").
_BILLING_PERIOD_HISTORY_SQL = """
insert into {history} by name
with current_totals as (
    select
        true as present, billing_period, provider_name, billing_account_id, billing_currency,
        total_cost, valid_po_cost, invalid_po_cost, untagged_cost, total_billed_cost, charge_count
    from {totals}
),

latest as (
    select *
    from {history}
    qualify row_number() over (
        partition by billing_period, provider_name, billing_account_id, billing_currency order by version desc
    ) = 1
),

recent_restatements as (  -- recorded since the last publication: by this run or by runs that never published
    select *
    from {restatements}
    where run_id in (
        select run_id
        from {runs}
        where started_at > coalesce(
            (select max(started_at) from {runs} where status = 'succeeded' and run_id <> $run_id),
            timestamptz '-infinity'
        )
    )
),

compared as (
    select
        case when cur.present then cur.billing_period else prev.billing_period end as billing_period,
        case when cur.present then cur.provider_name else prev.provider_name end as provider_name,
        case when cur.present then cur.billing_account_id else prev.billing_account_id end as billing_account_id,
        case when cur.present then cur.billing_currency else prev.billing_currency end as billing_currency,
        coalesce(prev.version, 0) + 1 as version,
        coalesce(prev.total_cost_after, 0) as total_cost_before,
        coalesce(cur.total_cost, 0) as total_cost_after,
        coalesce(prev.valid_po_cost_after, 0) as valid_po_cost_before,
        coalesce(cur.valid_po_cost, 0) as valid_po_cost_after,
        coalesce(prev.invalid_po_cost_after, 0) as invalid_po_cost_before,
        coalesce(cur.invalid_po_cost, 0) as invalid_po_cost_after,
        coalesce(prev.untagged_cost_after, 0) as untagged_cost_before,
        coalesce(cur.untagged_cost, 0) as untagged_cost_after,
        coalesce(prev.total_billed_cost_after, 0) as total_billed_cost_before,
        coalesce(cur.total_billed_cost, 0) as total_billed_cost_after,
        coalesce(prev.charge_count_after, 0) as charge_count_before,
        coalesce(cur.charge_count, 0) as charge_count_after
    from current_totals as cur
    full join latest as prev
        on cur.billing_period is not distinct from prev.billing_period
        and cur.provider_name is not distinct from prev.provider_name
        and cur.billing_account_id is not distinct from prev.billing_account_id
        and cur.billing_currency is not distinct from prev.billing_currency
)

select
    $run_id as run_id,
    $as_of as as_of,
    $published_at as published_at,
    billing_period, provider_name, billing_account_id, billing_currency, version,
    case
        when charge_count_before = 0 then 'new'
        when charge_count_after = 0 then 'removed'
        else 'changed'
    end as change_kind,
    coalesce(billing_period < strftime($as_of, '%Y-%m'), false) as period_closed,
    exists (
        select 1
        from recent_restatements as restated
        where restated.billing_period is not distinct from compared.billing_period
            and restated.provider_name is not distinct from compared.provider_name
            and restated.billing_account_id is not distinct from compared.billing_account_id
            and restated.billing_currency is not distinct from compared.billing_currency
    ) as restated,
    total_cost_before, total_cost_after, total_cost_after - total_cost_before as total_cost_delta,
    valid_po_cost_before, valid_po_cost_after, valid_po_cost_after - valid_po_cost_before as valid_po_cost_delta,
    invalid_po_cost_before, invalid_po_cost_after,
    invalid_po_cost_after - invalid_po_cost_before as invalid_po_cost_delta,
    untagged_cost_before, untagged_cost_after, untagged_cost_after - untagged_cost_before as untagged_cost_delta,
    total_billed_cost_before, total_billed_cost_after,
    total_billed_cost_after - total_billed_cost_before as total_billed_cost_delta,
    charge_count_before, charge_count_after, charge_count_after - charge_count_before as charge_count_delta
from compared
where charge_count_before <> charge_count_after
    or billing_period_figure_moved(total_cost_before, total_cost_after)
    or billing_period_figure_moved(valid_po_cost_before, valid_po_cost_after)
    or billing_period_figure_moved(invalid_po_cost_before, invalid_po_cost_after)
    or billing_period_figure_moved(untagged_cost_before, untagged_cost_after)
    or billing_period_figure_moved(total_billed_cost_before, total_billed_cost_after)
"""


def _keep_billing_period_history(state: State, run_id: str, as_of: date) -> None:
    """billing_period_totals keeps every published version: a night that changes nothing adds nothing, a
    re-delivered month adds a row per key it moved (before and after), whatever the as_of of either run.

    The state file is written first, then copied into the new publication. Versions of runs that never
    published (failed, or killed and left `running`) are dropped first, so "before" is always what analysts saw.
    """
    catalog = f'"{state.catalog}".main'
    history = f"{catalog}.billing_period_history"
    state.con.execute(_FIGURE_MOVED_MACRO)
    insert = _BILLING_PERIOD_HISTORY_SQL.format(
        history=history,
        totals=f"{PUBLISH_ALIAS}.main.billing_period_totals",
        restatements=f"{catalog}.restatements",
        runs=f"{catalog}.runs",
    )
    with state.transaction() as con:
        con.execute(
            f"delete from {history} where run_id in "
            f"(select run_id from {catalog}.runs where status <> 'succeeded' and run_id <> ?)",
            [run_id],
        )
        con.execute(insert, {"run_id": run_id, "as_of": as_of, "published_at": datetime.now(UTC)})
    state.con.execute(
        f"create or replace table {PUBLISH_ALIAS}.main.billing_period_history as select * from {history} "
        "order by billing_period, provider_name, billing_account_id, billing_currency, version"
    )


# Views over the history tables: the newest version, what an analyst usually means (docs/data-dictionary.md).
LATEST_VIEWS = {
    "po_burn_latest": "select * from po_burn where as_of = (select max(as_of) from po_burn)",
    "billing_period_history_latest": (
        "select * from billing_period_history qualify row_number() over (partition by billing_period, "
        "provider_name, billing_account_id, billing_currency order by version desc) = 1"
    ),
}


def _create_latest_views(state: State) -> None:
    """`<history>_latest` views, bound by bare name so they work whatever the file is opened as."""
    for name, body in LATEST_VIEWS.items():
        state.con.execute(f"create or replace view {PUBLISH_ALIAS}.main.{name} as {body}")


def _record_model_seconds(
    state: State, run_id: str, model_seconds: dict[str, float], kept: tuple[partials.PartialRefresh, ...]
) -> None:
    """Each model's seconds in the state's `run_models`, and each kept partial's with what it recomputed."""
    rows = [
        {"model": name, "seconds": seconds, "partitions": None, "partitions_changed": None,
         "partitions_read": None, "charge_keys_recomputed": None}
        for name, seconds in model_seconds.items()
    ] + [
        {"model": p.model, "seconds": p.seconds, "partitions": p.partitions,
         "partitions_changed": p.partitions_changed, "partitions_read": p.partitions_read,
         "charge_keys_recomputed": p.charge_keys_recomputed}
        for p in kept
    ]  # fmt: skip
    frame = pl.DataFrame(
        rows,
        schema={
            "model": pl.Utf8, "seconds": pl.Float64, "partitions": pl.Int32, "partitions_changed": pl.Int32,
            "partitions_read": pl.Int32, "charge_keys_recomputed": pl.Int32,
        },
    ).with_columns(pl.lit(run_id).alias("run_id"))  # fmt: skip
    with state.transaction():
        state.con.execute(f'delete from "{state.catalog}".main.run_models where run_id = ?', [run_id])
        state.insert_frame(f'"{state.catalog}".main.run_models', frame)


def building_path(published: Path, run_id: str) -> Path:
    return published.with_name(f".{published.name}.{run_id}.building")


def build(
    state: State, config: Config, parts: list[str], erp: ErpData, run_id: str, as_of: date | None
) -> BuildResult:
    """Run every model into a new database file beside the published one; the swap is `swap_in`."""
    published = config.resolve(config.warehouse.published_path)
    published.parent.mkdir(parents=True, exist_ok=True)
    for stale in published.parent.glob(f".{published.name}.*.building*"):
        stale.unlink()  # a killed run's leftovers
    target = building_path(published, run_id)
    state.con.execute(f"attach ? as {PUBLISH_ALIAS}", [target.as_posix()])
    try:
        # the partials kept in the state file, brought up to date (bare names there: the state's tables)
        lake_root = config.resolve(config.warehouse.lake_path)
        kept = (partials.refresh_duplicates(state, lake_root, parts, run_id),)
        # bare names in the models: the published database, then temp
        state.con.execute(f"use {PUBLISH_ALIAS}")
        run_macros(state.con)
        _set_variables(state, config)
        _load_inputs(state, config, parts, erp)
        resolved_as_of: date | None = None
        model_seconds: dict[str, float] = {}
        for model in progress.track("model", load_models()):  # a bar in a terminal (finrecon run)
            if model.layer != "staging" and resolved_as_of is None:
                resolved_as_of = _resolve_as_of(state, as_of)
                po_history.record_versions(state, run_id, resolved_as_of, PUBLISH_ALIAS)  # the marts read it
                failpoint("model.partial")  # crash tests: the staging models built, the marts not
            started = time.perf_counter()
            run_model(state.con, model, PUBLISH_ALIAS)
            model_seconds[model.name] = time.perf_counter() - started
        assert resolved_as_of is not None
        _record_model_seconds(state, run_id, model_seconds, kept)
        checked = invariants.check(state.con, PUBLISH_ALIAS, state.catalog, run_id)  # before any swap
        rows, billed, effective = _published_totals(state)
        _keep_po_burn_history(state, resolved_as_of)
        _keep_billing_period_history(state, run_id, resolved_as_of)
        _create_latest_views(state)
    except BaseException:
        state.con.execute(f'use "{state.catalog}"')
        state.con.execute(f"detach {PUBLISH_ALIAS}")
        target.unlink(missing_ok=True)
        raise
    state.con.execute(f'use "{state.catalog}"')
    return BuildResult(resolved_as_of, target, rows, billed, effective, model_seconds, checked, kept)


def copy_state_tables(state: State, tables: tuple[str, ...]) -> None:
    """Copy state tables into the publication being built (alert rules read `runs` and `run_files` there)."""
    for table in tables:
        state.con.execute(
            f'create or replace table {PUBLISH_ALIAS}.main.{table} as select * from "{state.catalog}".main.{table}'
        )


def swap_in(state: State, config: Config, result: BuildResult) -> Path:
    """Copy the run history into the new file, close it, and rename it over the published one."""
    published = config.resolve(config.warehouse.published_path)
    try:
        copy_state_tables(state, STATE_TABLES)
        apply_comments(state.con, PUBLISH_ALIAS)  # COMMENT ON from the data dictionary's source
        state.con.execute(f"checkpoint {PUBLISH_ALIAS}")
    finally:
        state.con.execute(f"detach {PUBLISH_ALIAS}")
    with result.path.open("rb") as handle:
        os.fsync(handle.fileno())
    failpoint("publish.before-rename")  # crash tests: the new file complete, the old one still published
    os.replace(result.path, published)
    failpoint("publish.after-rename")  # crash tests: published, the state file not closed yet
    return published


def refresh_state_tables(state: State, config: Config, run_id: str, tables: tuple[str, ...]) -> Path:
    """Re-publish only some state tables (the alert outbox after a night with nothing new): a copy of the current
    publication gets the fresh tables and replaces it atomically, so open sessions keep the old file whole."""
    published = config.resolve(config.warehouse.published_path)
    target = building_path(published, run_id)
    shutil.copyfile(published, target)
    state.con.execute(f"attach ? as {PUBLISH_ALIAS}", [target.as_posix()])
    try:
        copy_state_tables(state, tables)
        apply_comments(state.con, PUBLISH_ALIAS)  # the replaced tables lost theirs
        state.con.execute(f"checkpoint {PUBLISH_ALIAS}")
    finally:
        state.con.execute(f"detach {PUBLISH_ALIAS}")
    with target.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(target, published)
    return published
