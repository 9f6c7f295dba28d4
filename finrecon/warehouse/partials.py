"""Partial results kept between runs, so a night recomputes only what its new lake parts can change.

`duplicate_charges` groups every charge by the hash of its content: the one model whose cost grew with every row
ever landed. Every copy of a charge has the same ProviderName and ChargePeriodStart, so each group lies within one
*charge key* (provider name × month of ChargePeriodStart). The state file keeps the groups of every key
(`partial_duplicate_groups`), which charge keys each lake partition (provider × billing period: the folder of its
parts) holds (`partial_charge_keys`), and per partition a signature of its current parts and of the partial's SQL
(`partial_partitions`). A run

1. finds the partitions whose signature changed (new, re-delivered or removed parts),
2. reads the charge keys the changed ones hold (one scan of two columns),
3. recomputes the groups of every charge key a changed partition held before or holds now, reading only the
   partitions that hold rows of those keys: usually exactly the changed ones (a billing period's charges start in
   its month); a charge billed in another month's period is found through the index, and
4. replaces those keys' groups, the index and the signatures in one transaction.

The published table is assembled from the kept groups (sql/marts/duplicate_charges.sql), with the reporting
currency's rate applied at publication, as rates may change without any charge changing. Runs with the state
catalog as the connection's default (before the publication is `use`d).
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import polars as pl

from finrecon.warehouse.models_runner import SQL_DIR, Model, run_model
from finrecon.warehouse.state import State

PARTIALS_DIR = SQL_DIR / "partials"
DUPLICATES = "duplicate_charge_groups"

# The rows a partial reads: the parts of the partitions to read (`partial_read_files`), typed as the published
# lake view reads them (a scan of every current part, `partial_all_files`; DuckDB opens only the listed ones).
_PARTIAL_INPUT = """
create or replace temp view partial_input as
select
    scanned.* exclude (__part_file),
    cast(ChargePeriodStart as date) as x_charge_date,
    strftime(coalesce(BillingPeriodStart, ChargePeriodStart), '%Y-%m') as x_billing_period
from read_parquet(
    getvariable('partial_all_files'), union_by_name = true, hive_partitioning = false, filename = '__part_file'
) as scanned
where list_contains(getvariable('partial_read_files'), scanned.__part_file)
"""

# The charge keys each changed partition holds now (month first, as a timestamp: cheaper than a string per row).
_NEW_KEYS = """
create or replace temp table __partial_new_keys as
select files.partition, keys.provider_name, strftime(keys.month_start, '%Y-%m') as charge_month
from (
    select distinct __part_file, ProviderName as provider_name, date_trunc('month', ChargePeriodStart) as month_start
    from read_parquet(
        getvariable('partial_read_files'), union_by_name = true, hive_partitioning = false, filename = '__part_file'
    )
) as keys
join __partial_files as files on files.part_file = keys.__part_file
"""

_KEYS_TO_RECOMPUTE = """
create or replace temp table __partial_keys as
select provider_name, charge_month from partial_charge_keys
where model = $model and partition in (select partition from __partial_changed)
union
select provider_name, charge_month from __partial_new_keys
"""

# The partitions holding rows of the keys to recompute, by the index as it stands after this run.
_PARTITIONS_TO_READ = """
with index_after as (
    select partition, provider_name, charge_month from partial_charge_keys
    where model = $model and partition not in (select partition from __partial_changed)
    union all
    select partition, provider_name, charge_month from __partial_new_keys
)

select distinct partition
from index_after
semi join __partial_keys as keys
    on keys.provider_name is not distinct from index_after.provider_name
    and keys.charge_month is not distinct from index_after.charge_month
order by partition
"""

# A partition read may hold rows of a key not being recomputed: that key's groups here are incomplete, left out.
_NEW_GROUPS = """
select __partial_groups.*, $run_id as run_id
from __partial_groups
semi join __partial_keys as keys
    on keys.provider_name is not distinct from __partial_groups.charge_key_provider
    and keys.charge_month is not distinct from __partial_groups.charge_key_month
"""

_EMPTY_GROUPS = """
create table if not exists partial_duplicate_groups (
    charge_key_provider varchar, charge_key_month varchar, row_hash varchar, provider_name varchar,
    billing_period varchar, charge_period_start timestamp, charge_date date, service_name varchar,
    resource_id varchar, billed_cost_each double, copies bigint, files bigint, source_files varchar[],
    billed_cost_in_extra_copies double, billing_currency varchar, run_id varchar
)
"""


@dataclass(frozen=True)
class PartialRefresh:
    """What one run recomputed (recorded per run in the state's `run_models`)."""

    model: str
    partitions: int  # lake partitions (provider × billing period) current this run
    partitions_changed: int  # new, re-delivered or removed since the partial was last computed
    partitions_read: int  # read to recompute (the changed ones and any sharing a charge key with them)
    charge_keys_recomputed: int
    seconds: float


def partition_of(part_path: str) -> str:
    """A lake part's partition: its folder (`charges/provider=<slug>/billing_period=YYYY-MM`)."""
    return PurePosixPath(part_path).parent.as_posix()


def _signatures(sql: str, parts: list[str]) -> dict[str, tuple[str, list[str]]]:
    """partition -> (signature of the partial's SQL and the partition's part paths, those paths)."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for part in parts:
        grouped[partition_of(part)].append(part)
    result = {}
    for partition, paths in grouped.items():
        digest = hashlib.sha256(sql.encode())
        for path in sorted(paths):
            digest.update(b"\0" + path.encode())
        result[partition] = (digest.hexdigest(), sorted(paths))
    return result


def _has_groups_table(state: State) -> bool:
    found = state.con.execute(
        "select count(*) from duckdb_tables() where database_name = ? and table_name = 'partial_duplicate_groups'",
        [state.catalog],
    ).fetchall()
    return bool(found[0][0])


def refresh_duplicates(state: State, lake_root: Path, parts: list[str], run_id: str) -> PartialRefresh:
    """Bring the kept duplicate groups up to date with `parts` (the lake's current parts, relative paths) and
    load them into the temp table `int_duplicate_charge_groups`, which the duplicate_charges mart reads."""
    started = time.perf_counter()
    sql = (PARTIALS_DIR / f"{DUPLICATES}.sql").read_text(encoding="utf-8")
    current = _signatures(sql, parts)
    if not _has_groups_table(state):  # nothing kept (a new state file): every partition is computed
        state.con.execute("delete from partial_charge_keys where model = ?", [DUPLICATES])
        state.con.execute("delete from partial_partitions where model = ?", [DUPLICATES])
    stored = {
        str(row["partition"]): str(row["signature"])
        for row in state.rows(
            "select partition, signature from partial_partitions where model = ?", [DUPLICATES]
        )
    }
    changed = sorted(p for p, (signature, _) in current.items() if stored.get(p) != signature)
    removed = sorted(set(stored) - set(current))
    absolute = {
        part: (lake_root / part).resolve().as_posix() for _, paths in current.values() for part in paths
    }
    recomputed = 0
    read: list[str] = []
    if changed or removed:
        files = pl.DataFrame(
            [(absolute[part], partition) for partition, (_, paths) in current.items() for part in paths],
            schema={"part_file": pl.Utf8, "partition": pl.Utf8},
            orient="row",
        )
        state.con.register("__partial_files", files.to_arrow())
        state.con.register(
            "__partial_changed",
            pl.DataFrame({"partition": changed + removed}, schema={"partition": pl.Utf8}).to_arrow(),
        )
        try:
            changed_files = [absolute[part] for partition in changed for part in current[partition][1]]
            if changed_files:
                state.con.execute("set variable partial_read_files = ?", [changed_files])
                state.con.execute(_NEW_KEYS)
            else:
                state.con.execute(
                    "create or replace temp table __partial_new_keys "
                    "(partition varchar, provider_name varchar, charge_month varchar)"
                )
            state.con.execute(_KEYS_TO_RECOMPUTE, {"model": DUPLICATES})
            recomputed = int(state.con.execute("select count(*) from __partial_keys").fetchall()[0][0])
            read = [
                str(row[0])
                for row in state.con.execute(_PARTITIONS_TO_READ, {"model": DUPLICATES}).fetchall()
            ]
            read_files = [absolute[part] for partition in read for part in current[partition][1]]
            if read_files:
                state.con.execute("set variable partial_all_files = ?", [sorted(absolute.values())])
                state.con.execute("set variable partial_read_files = ?", [read_files])
                state.con.execute(_PARTIAL_INPUT)
                run_model(state.con, Model("__partial_groups", "intermediate", sql), state.catalog)
            full = bool(read_files) and not set(current) - set(
                changed
            )  # nothing kept: rebuilt, typed by the SQL
            with state.transaction() as con:
                if full:
                    con.execute(
                        f"create or replace table partial_duplicate_groups as {_NEW_GROUPS}",
                        {"run_id": run_id},
                    )
                elif _has_groups_table(state):
                    con.execute(
                        "delete from partial_duplicate_groups as kept using __partial_keys as keys "
                        "where keys.provider_name is not distinct from kept.charge_key_provider "
                        "and keys.charge_month is not distinct from kept.charge_key_month"
                    )
                    if read_files:
                        con.execute(
                            f"insert into partial_duplicate_groups by name {_NEW_GROUPS}", {"run_id": run_id}
                        )
                con.execute(
                    "delete from partial_charge_keys "
                    "where model = ? and partition in (select partition from __partial_changed)",
                    [DUPLICATES],
                )
                con.execute(
                    "insert into partial_charge_keys by name "
                    "select $model as model, partition, provider_name, charge_month from __partial_new_keys",
                    {"model": DUPLICATES},
                )
                con.execute(
                    "delete from partial_partitions "
                    "where model = ? and partition in (select partition from __partial_changed)",
                    [DUPLICATES],
                )
                if changed:  # (a night may only remove partitions)
                    con.executemany(
                        "insert into partial_partitions (model, partition, signature, run_id) values (?, ?, ?, ?)",
                        [[DUPLICATES, partition, current[partition][0], run_id] for partition in changed],
                    )
        finally:
            state.con.unregister("__partial_files")
            state.con.unregister("__partial_changed")
    state.con.execute(_EMPTY_GROUPS)  # an empty lake (no group ever computed): no groups
    state.con.execute(
        "create or replace temp table int_duplicate_charge_groups as "
        "select * exclude (run_id) from partial_duplicate_groups"
    )
    return PartialRefresh(
        DUPLICATES,
        len(current),
        len(changed) + len(removed),
        len(read),
        recomputed,
        time.perf_counter() - started,
    )
