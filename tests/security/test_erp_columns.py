"""An ERP extract's columns that reconciliation does not use (bank details, personal data) are not ingested.

The PO header extract below carries an IBAN, a bank account and an approver's e-mail next to the columns the
pipeline needs, on a good row and on a row that is quarantined (its total is "lots"). None of those values may
reach the quarantine, the state file or the publication; the needed columns still arrive.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from support import charge, make_project, po, query, run_flow

pytestmark = pytest.mark.usefixtures("prefect_harness")

PERSONAL = {
    "iban": "DE89370400440532013000",
    "bank_account": "0532013000",
    "approver_email": "jane.doe@example.org",
}


def every_text(path: Path) -> str:
    """Every text value and column name of a DuckDB file, joined (the file's bytes may be compressed)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        parts = []
        for table, column in con.execute(
            "select table_name, column_name from information_schema.columns where data_type = 'VARCHAR'"
        ).fetchall():
            parts.append(column)
            quoted = f"{duckdb.ColumnExpression(table)}"
            parts += [
                str(v)
                for (v,) in con.execute(
                    f"select distinct {duckdb.ColumnExpression(column)} from {quoted}"
                ).fetchall()
            ]
        return "\n".join(parts)
    finally:
        con.close()


def test_bank_details_and_personal_data_stay_out(tmp_path: Path) -> None:
    headers = [po("PO-1", total_amount="10.00") | PERSONAL, po("PO-2", total_amount="lots") | PERSONAL]
    config = make_project(tmp_path, {"a.csv": [charge(BilledCost="4.00", Tags={"po": "PO-1"})]}, headers)
    run_flow(config)
    published, state = tmp_path / "out" / "finops.duckdb", tmp_path / "out" / "state.duckdb"

    assert query(published, "select po_number, total_amount, vendor_name from po_headers") == [
        ("PO-1", 10.0, "Cloud Vendor Ltd")
    ]
    assert query(state, "select row_number, column_name, raw_value from quarantine") == [
        (2, "total_amount", "lots")
    ]
    for database in (published, state):
        text = every_text(database)
        assert "PO-1" in text  # the walk really reads the values
        for name, value in PERSONAL.items():
            assert value not in text, f"{name} reached {database.name}"
            assert name not in text, f"column {name} reached {database.name}"
