"""Each ERP extract's last good version: what the publication keeps while the extract's file fails.

A charge file that fails keeps its previous lake parts; an ERP extract is read whole every night, so without a
copy a failed `po_headers.csv` would publish no POs at all (every valid charge `unknown_po`, PO burn empty, open
alerts resolved). So the typed rows of each extract that lands are kept in the state file (table
`erp_version__<table>`, recorded in `erp_versions`), and a later failure publishes that copy, reported as stale.

Crash safety: the copy and its record are written in one state-file transaction, so a run killed at any point
leaves either the previous version or the new one, whole. (The state file, not the lake: the lake holds only
charge parts, and ERP extracts are small.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from finrecon.core.failpoints import failpoint
from finrecon.core.sql_text import identifier
from finrecon.warehouse.state import State

ERP_SOURCE = "erp"


@dataclass(frozen=True)
class ErpVersion:
    """The last good version of one ERP extract: its typed rows and where and when they were read."""

    table: str
    frame: pl.DataFrame
    file_path: str  # the extract's file as configured when it landed
    run_id: str  # the run that landed it
    landed_at: datetime


COPY_PREFIX = "erp_version__"  # + the ERP table's name: the state table holding its last good rows


def keep(state: State, table: str, frame: pl.DataFrame, file_path: str, run_id: str) -> None:
    """Make `frame` (the typed valid rows of an extract that landed) the table's last good version."""
    with state.transaction() as con:
        con.register("__erp_version", frame.to_arrow())
        try:
            copy = f"create or replace table {identifier(COPY_PREFIX + table)} as select * from __erp_version"
            con.execute(copy)
        finally:
            con.unregister("__erp_version")
        failpoint("erp.version-written")  # crash tests: the copy written, its transaction not committed
        con.execute("delete from erp_versions where table_name = ?", [table])
        con.execute(
            "insert into erp_versions (table_name, file_path, row_count, run_id, landed_at) values (?, ?, ?, ?, ?)",
            [table, file_path, frame.height, run_id, datetime.now(UTC)],
        )


def recall(state: State, table: str) -> ErpVersion | None:
    """The table's last good version, or None when it never landed."""
    rows = state.rows("select file_path, run_id, landed_at from erp_versions where table_name = ?", [table])
    if not rows:
        return None
    frame = state.con.sql(f"select * from {identifier(COPY_PREFIX + table)}").pl()
    row = rows[0]
    return ErpVersion(table, frame, str(row["file_path"]), str(row["run_id"]), row["landed_at"])


def mark_standing_in(state: State, table: str, failed_path: str, run_id: str) -> None:
    """Record that this run publishes the table's last good version in place of its failed file."""
    state.con.execute(
        "update erp_versions set stood_in_run_id = ?, stood_in_for = ? where table_name = ?",
        [run_id, failed_path, table],
    )


def stale_extracts(state: State, run_id: str) -> list[dict[str, object]]:
    """The ERP extracts this run published at their last good version, as `RunBook.stale_inputs` rows (source,
    file_path, last_good_run, failed_path) plus `last_good_at`, the UTC day that version landed."""
    return state.rows(
        "select ? as source, file_path, run_id as last_good_run, stood_in_for as failed_path, "
        "cast(timezone('UTC', landed_at) as date) as last_good_at "
        "from erp_versions where stood_in_run_id = ? order by table_name",
        [ERP_SOURCE, run_id],
    )


def failed_when_last_published(state: State) -> bool:
    """Whether an ERP extract failed in the run behind the current publication: its file must be read again
    tonight (it is not 'nothing new' while the publication stands on a stale or missing extract)."""
    rows = state.rows(
        """
        select count(*) as failed
        from run_files
        where source = ? and status = 'failed'
          and run_id = (select run_id from runs where status = 'succeeded' order by started_at desc limit 1)
        """,
        [ERP_SOURCE],
    )
    return bool(rows[0]["failed"])
