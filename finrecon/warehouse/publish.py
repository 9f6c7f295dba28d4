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
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from finrecon.models import charges as charge_models
from finrecon.models.config import Config
from finrecon.models.quarantine import ROW_COLUMN
from finrecon.warehouse.erp_landing import ErpData
from finrecon.warehouse.landing import ReconciliationError, costs_match
from finrecon.warehouse.models_runner import load_models, run_macros, run_model
from finrecon.warehouse.state import State

PUBLISH_ALIAS = "publishing"
# State tables copied into every publication, for analysts and alert rules.
STATE_TABLES = ("runs", "run_files", "quarantine", "restatements")


@dataclass(frozen=True)
class BuildResult:
    as_of: date
    path: Path
    charge_rows: int
    billed_cost: float
    effective_cost: float
    model_seconds: dict[str, float]


def _sql_text(value: str | None) -> str:
    return "null" if value is None else "'" + value.replace("'", "''") + "'"


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
        files = ", ".join(_sql_text((lake_root / p).resolve().as_posix()) for p in parts)
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


def _set_variables(state: State, config: Config) -> None:
    state.con.execute(f"set variable po_default_prefix = {_sql_text(config.tags.po_default_prefix)}")
    state.con.execute(f"set variable trailing_days = {int(config.report.trailing_days)}")
    state.con.execute(f"set variable untagged_top_n = {int(config.report.untagged_top_n)}")


def _resolve_as_of(state: State, requested: date | None) -> date:
    """The reconciliation date: as requested, else the last charge date in the data, else today."""
    if requested is None:
        requested = state.con.execute("select max(x_charge_date) from stg_focus__charges").fetchall()[0][0]
    as_of = requested or date.today()
    state.con.execute(f"set variable as_of = date '{as_of.isoformat()}'")
    return as_of


def _check_conservation(state: State) -> tuple[int, float, float]:
    """Published charges (their daily aggregate, which every mart reads) must equal the lake's current parts,
    row for row and cent for cent: a resolution join that duplicated or dropped a charge would show here."""
    expected = state.con.execute(
        f"select coalesce(sum(row_count), 0), coalesce(sum(billed_cost), 0), coalesce(sum(effective_cost), 0) "
        f'from "{state.catalog}".main.lake_parts'
    ).fetchall()[0]
    actual = state.con.execute(
        "select coalesce(sum(charge_count), 0), coalesce(sum(BilledCost), 0), coalesce(sum(EffectiveCost), 0) "
        f"from {PUBLISH_ALIAS}.main.charges_daily"
    ).fetchall()[0]
    if (
        int(expected[0]) != int(actual[0])
        or not costs_match(expected[1], actual[1])
        or not costs_match(expected[2], actual[2])
    ):
        raise ReconciliationError(
            f"published charges (rows {actual[0]}, BilledCost {actual[1]}, EffectiveCost {actual[2]}) do not match "
            f"the lake (rows {expected[0]}, BilledCost {expected[1]}, EffectiveCost {expected[2]})"
        )
    return int(actual[0]), float(actual[1]), float(actual[2])


def _keep_po_burn_history(state: State, as_of: date) -> None:
    """po_burn keeps one set of rows per as_of: this run's rows replace that date's, others stay."""
    state_po_burn = f'"{state.catalog}".main.po_burn_history'
    state.con.execute(
        f"create table if not exists {state_po_burn} as select * from {PUBLISH_ALIAS}.main.po_burn limit 0"
    )
    with state.transaction() as con:
        con.execute(f"delete from {state_po_burn} where as_of = ?", [as_of])
        con.execute(f"insert into {state_po_burn} by name select * from {PUBLISH_ALIAS}.main.po_burn")
    state.con.execute(
        f"create or replace table {PUBLISH_ALIAS}.main.po_burn as "
        f"select * from {state_po_burn} order by as_of, po_number"
    )


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
    state.con.execute(f"attach {_sql_text(target.as_posix())} as {PUBLISH_ALIAS}")
    state.con.execute(f"use {PUBLISH_ALIAS}")  # bare names in the models: the published database, then temp
    try:
        run_macros(state.con)
        _set_variables(state, config)
        _load_inputs(state, config, parts, erp)
        resolved_as_of: date | None = None
        model_seconds: dict[str, float] = {}
        for model in load_models():
            if model.layer != "staging" and resolved_as_of is None:
                resolved_as_of = _resolve_as_of(state, as_of)
            started = time.perf_counter()
            run_model(state.con, model, PUBLISH_ALIAS)
            model_seconds[model.name] = time.perf_counter() - started
        assert resolved_as_of is not None
        rows, billed, effective = _check_conservation(state)
        _keep_po_burn_history(state, resolved_as_of)
    except BaseException:
        state.con.execute(f'use "{state.catalog}"')
        state.con.execute(f"detach {PUBLISH_ALIAS}")
        target.unlink(missing_ok=True)
        raise
    state.con.execute(f'use "{state.catalog}"')
    return BuildResult(resolved_as_of, target, rows, billed, effective, model_seconds)


def swap_in(state: State, config: Config, result: BuildResult) -> Path:
    """Copy the run history into the new file, close it, and rename it over the published one."""
    published = config.resolve(config.warehouse.published_path)
    try:
        for table in STATE_TABLES:
            state.con.execute(
                f'create or replace table {PUBLISH_ALIAS}.main.{table} as select * from "{state.catalog}".main.{table}'
            )
        state.con.execute(f"checkpoint {PUBLISH_ALIAS}")
    finally:
        state.con.execute(f"detach {PUBLISH_ALIAS}")
    with result.path.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(result.path, published)
    return published
