"""An ERP extract that fails keeps its last good version in the publication, reported as failed and stale.

Issue 17 item 0: a `po_headers.csv` missing one column used to publish no POs at all, so every valid charge turned
`unknown_po`, PO burn emptied and open alerts went out as resolved. Now each extract that lands is kept (its
typed rows in the state file) and stands in while a later file fails — whether the file fails as a whole (a
missing column) or has more than `validation.max_failure_ratio` of its rows quarantined.

The headline case and a held-back FX extract run through the real CLI; every ERP extract is checked for the
"keeps its previous rows" property through `land_erp` against a real state file, and a kill between writing the
copy and committing it (a real SIGKILL at the failpoint) leaves the previous version in force.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from support import FX_COLUMNS, charge, make_project, po, query, write_csv
from typer.testing import CliRunner

from finrecon.cli import app
from finrecon.core.failpoints import ENV
from finrecon.models.config import load_config
from finrecon.warehouse import erp_versions
from finrecon.warehouse.erp_landing import land_erp
from finrecon.warehouse.state import State

runner = CliRunner()
HEADER_COLUMNS = list(po("PO-1"))


def cli_run(config: Path) -> tuple[int, str]:
    """`finrecon run`: exit code and output (stdout and stderr) with Rich's wrapping collapsed.

    The run ends by its exit code, never by an exception escaping the command. (Prefect's log handlers created
    in one invocation print "Logging error" tracebacks of the test rig's own into the next, so the output is
    not searched for tracebacks here; tests/cli/test_errors.py does that, one invocation per test.)"""
    result = runner.invoke(app, ["run", "--config", str(config)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


def published_run_id(db: Path) -> str:
    return str(query(db, "select run_id from runs where status = 'succeeded' order by started_at desc")[0][0])


def run_date(run_id: str) -> str:
    """The UTC day a run started, from its id (YYYYMMDDTHHMMSSZ-…)."""
    return f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}"


# -- the headline case, through the CLI ---------------------------------------------------------------------------

# PO-1 (100 USD) consumes 30; PO-2 (50 USD) consumes 45 = 90 %, past the 50 % and 80 % burn thresholds.
CHARGES = [
    charge("2024-09-02", ResourceId="r1", BilledCost="30.00", EffectiveCost="30.00", Tags={"po": "PO-1"}),
    charge("2024-09-03", ResourceId="r2", BilledCost="45.00", EffectiveCost="45.00", Tags={"po": "PO-2"}),
    charge("2024-09-04", ResourceId="r3", BilledCost="5.00", EffectiveCost="5.00"),
]
POS = [po("PO-1", total_amount="100.00"), po("PO-2", total_amount="50.00")]
PO_2_OPEN_ALERTS = "select alert_id from alerts where status = 'open' and po_number = 'PO-2' order by 1"


def headline_figures(db: Path) -> dict[str, Any]:
    """What a procurement lead reads: the POs, PO-1's amount, consumption per PO, charge statuses."""
    return {
        "po_count": query(db, "select count(*) from po_headers")[0][0],
        "po_1_amount": query(db, "select total_amount from po_headers where po_number = 'PO-1'")[0][0],
        "consumed": query(db, "select po_number, consumed_amount from po_burn_latest order by po_number"),
        "statuses": query(db, "select ResourceId, x_po_status from charges order by ResourceId"),
    }


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_po_headers_missing_a_column_keeps_the_last_good_pos_until_the_file_is_fixed(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"sept.csv": CHARGES}, POS)
    db = tmp_path / "out" / "finops.duckdb"
    headers = tmp_path / "erp" / "po_headers.csv"
    good_bytes = headers.read_bytes()

    code, output = cli_run(config)
    assert code == 0, output
    first = published_run_id(db)
    expected = {
        "po_count": 2,
        "po_1_amount": 100.0,
        "consumed": [("PO-1", 30.0), ("PO-2", 45.0)],
        "statuses": [("r1", "valid"), ("r2", "valid"), ("r3", "untagged")],
    }
    assert headline_figures(db) == expected
    open_alerts = query(db, PO_2_OPEN_ALERTS)
    assert open_alerts, "PO-2 at 90 % must have raised a burn alert"

    # the ERP drops a column: the file fails, the POs of night 1 stay published
    write_csv(headers, POS, [c for c in HEADER_COLUMNS if c != "currency"])
    for _night in (2, 3):  # the same broken file on a second night is still failed, never "nothing new"
        code, output = cli_run(config)
        assert code == 1, output
        assert "file failed: erp: erp/po_headers.csv: required column 'currency' is missing" in output
        assert (
            f"stale: erp: erp/po_headers.csv keeps its last good version of {run_date(first)} "
            f"(landed by run {first}) in the publication" in output
        )
        assert headline_figures(db) == expected
        assert query(db, PO_2_OPEN_ALERTS) == open_alerts
        assert query(db, "select count(*) from alerts where status = 'resolved'") == [(0,)]
        assert query(db, "select count(*) from alert_notifications where event = 'resolved'") == [(0,)]
        failed_alert = (
            "select count(*) from alerts where status = 'open' and title like 'erp: erp/po_headers.csv%'"
        )
        assert query(db, failed_alert) == [(1,)]  # the failure is also an alert
    message = query(db, "select message from runs order by started_at desc limit 1")[0][0]
    assert message.startswith("stale: 1 input(s) failed this run") and f"(last good: run {first})" in message

    # the file is fixed: it lands again, nothing is stale
    headers.write_bytes(good_bytes)
    code, output = cli_run(config)
    assert code == 0, output
    # (the rig's "Logging error" dumps may quote cli.py's source, `[yellow]stale:[/yellow] {line}`)
    assert "stale: erp:" not in output and "file failed: erp:" not in output
    assert headline_figures(db) == expected
    assert query(db, PO_2_OPEN_ALERTS) == open_alerts
    # only the alert that said the extract failed resolves
    assert query(db, "select title from alerts where status = 'resolved'") == [
        ("erp: erp/po_headers.csv failed validation (100.0%)",)
    ]


# PO-E is in EUR; its one USD charge of 10.00 converts at the FX extract's USD→EUR rate.
EUR_POS = [po("PO-E", currency="EUR", total_amount="100.00")]
FX_GOOD = [{"rate_date": "2024-09-01", "from_currency": "USD", "to_currency": "EUR", "rate": "0.90"}]
FX_MOSTLY_BAD = [
    {"rate_date": "2024-09-01", "from_currency": "USD", "to_currency": "EUR", "rate": "0.50"},
    {"rate_date": "2024-09-02", "from_currency": "USD", "to_currency": "EUR", "rate": "zero"},
    {"rate_date": "2024-09-03", "from_currency": "USD", "to_currency": "EUR", "rate": "-1"},
]


@pytest.mark.usefixtures("prefect_logs_in_output")
def test_an_fx_extract_mostly_quarantined_is_held_back_and_the_last_good_rates_stand(tmp_path: Path) -> None:
    charges = [charge("2024-09-05", BilledCost="10.00", EffectiveCost="10.00", Tags={"po": "PO-E"})]
    config = make_project(tmp_path, {"sept.csv": charges}, EUR_POS, fx=FX_GOOD)
    db = tmp_path / "out" / "finops.duckdb"
    code, output = cli_run(config)
    assert code == 0, output
    first = published_run_id(db)
    consumed = "select consumed_amount from po_burn_latest where po_number = 'PO-E'"
    assert query(db, consumed) == [(pytest.approx(10.00 * 0.90),)]

    # 2 of 3 rows bad (> 0.5): held back whole; loading its one good row would have made it 10 × 0.50 = 5.00
    write_csv(tmp_path / "erp" / "fx_rates.csv", FX_MOSTLY_BAD, FX_COLUMNS)
    code, output = cli_run(config)
    assert code == 1, output
    assert (
        "file failed: erp: erp/fx_rates.csv: 2 of 3 rows failed validation, above "
        "validation.max_failure_ratio=0.5; the extract is held back" in output
    )
    assert f"stale: erp: erp/fx_rates.csv keeps its last good version of {run_date(first)}" in output
    assert query(db, consumed) == [(pytest.approx(9.00),)]
    assert query(db, "select rate_date, from_currency, to_currency, rate from fx_rates") == [
        (date(2024, 9, 1), "USD", "EUR", 0.9)
    ]
    run_id = published_run_id(db)
    books = (
        "select rows_read, rows_loaded, rows_quarantined from run_files where run_id = ? and file_path = ?"
    )
    assert query(db, books, [run_id, "erp/fx_rates.csv"]) == [(3, 0, 3)]  # held back: every row quarantined
    bad_rows = (
        "select row_number, column_name from quarantine where file_path = 'erp/fx_rates.csv' order by 1"
    )
    assert query(db, bad_rows) == [(2, "rate"), (3, "rate")]  # the rows that failed, for the ERP team to fix


# -- every extract, through land_erp against a real state file -----------------------------------------------------

# table -> (the extract as the ERP writes it: two good rows, a required column to drop, a column to read back and
# its two values as typed)
EXTRACTS: dict[str, tuple[str, str, str, list[Any]]] = {
    "po_headers": (
        "po_number,vendor_id,vendor_name,currency,total_amount,status,valid_from,valid_to\n"
        "PO-1,V-1,Cloud Vendor Ltd,USD,100.00,open,2024-01-01,2024-12-31\n"
        "PO-2,V-1,Cloud Vendor Ltd,USD,50.00,open,2024-01-01,2024-12-31\n",
        "currency", "total_amount", [50.0, 100.0],
    ),
    "po_lines": (
        "po_number,line_number,description,quantity,unit_price,amount\nPO-1,1,compute,10,5.00,50.00\n"
        "PO-1,2,disk,1,7,7\n",
        "amount", "amount", [7.0, 50.0],
    ),
    "fx_rates": (
        "rate_date,from_currency,to_currency,rate\n2024-09-01,USD,EUR,0.90\n2024-09-01,USD,GBP,0.80\n",
        "rate", "rate", [0.8, 0.9],
    ),
    "invoices": (
        "invoice_number,vendor_id,po_number,invoice_date,currency,amount\nINV-1,V-1,PO-1,2024-09-30,USD,30.00\n"
        "INV-2,V-1,PO-2,2024-09-30,USD,45.00\n",
        "amount", "amount", [30.0, 45.0],
    ),
    "goods_receipts": (
        "receipt_number,po_number,receipt_date,amount\nGR-1,PO-1,2024-09-10,20.00\nGR-2,PO-1,2024-09-20,12.50\n",
        "receipt_date", "amount", [12.5, 20.0],
    ),
    "commitments": (
        "commitment_discount_id,term_start,term_end,po_number\nri-1,2024-01-01,2024-12-31,PO-1\n"
        "sp-2,2024-06-01,2025-05-31,PO-2\n",
        "term_end", "commitment_discount_id", ["ri-1", "sp-2"],
    ),
    "po_cloud_mapping": (
        "po_number,line_number,match_column,match_value,valid_from,valid_to\n"
        "PO-1,1,SubAccountId,222222222222,,\nPO-2,1,tag:team,data,2024-01-01,\n",
        "match_value", "match_value", ["222222222222", "data"],
    ),
}  # fmt: skip


def all_extracts_project(root: Path) -> Path:
    """A project configuring every ERP extract, each with the two good rows of EXTRACTS."""
    beyond_the_default_three = {
        name: [] for name in EXTRACTS if name not in ("po_headers", "po_lines", "fx_rates")
    }
    config = make_project(root, {"none.csv": []}, POS, erp_tables=beyond_the_default_three)
    for name, (text, *_) in EXTRACTS.items():
        (root / "erp" / f"{name}.csv").write_text(text, encoding="utf-8")
    return config


def without_column(text: str, column: str) -> str:
    """The CSV `text` with one column left out, as an ERP export that dropped it would be."""
    rows = [line.split(",") for line in text.splitlines()]
    position = rows[0].index(column)
    return "".join(",".join(row[:position] + row[position + 1 :]) + "\n" for row in rows)


def values(frame: Any, column: str) -> list[Any]:
    return sorted(frame.get_column(column).to_list())


def landings_by_file(erp: Any) -> Mapping[str, Any]:
    return {landing.file_path: landing for landing in erp.landings}


@pytest.mark.parametrize("table", list(EXTRACTS))
def test_each_extract_that_fails_stands_in_at_its_last_good_version(tmp_path: Path, table: str) -> None:
    text, dropped, column, expected = EXTRACTS[table]
    config = load_config(all_extracts_project(tmp_path))
    state = State.open(tmp_path / "out" / "state.duckdb")
    try:
        night_1 = land_erp(config, state, "20240901T000000Z-night1")
        assert all(landing.status == "landed" for landing in night_1.landings)
        assert {name: frame.height for name, frame in night_1.frames.items()} == dict.fromkeys(EXTRACTS, 2)

        (tmp_path / "erp" / f"{table}.csv").write_text(without_column(text, dropped), encoding="utf-8")
        night_2 = land_erp(config, state, "20240902T000000Z-night2")
        failed = landings_by_file(night_2)[f"erp/{table}.csv"]
        assert failed.status == "failed" and f"required column '{dropped}' is missing" in str(failed.error)
        books = failed.books
        assert (books.rows_read, books.rows_loaded, books.rows_quarantined) == (2, 0, 2)
        assert values(night_2.frames[table], column) == expected  # night 1's rows, typed
        assert night_2.frames[table].equals(night_1.frames[table])
        others = [landing for landing in night_2.landings if landing is not failed]
        assert len(others) == 6 and all(landing.status == "landed" for landing in others)
        assert erp_versions.stale_extracts(state, "20240902T000000Z-night2") == [
            {"source": "erp", "file_path": f"erp/{table}.csv", "last_good_run": "20240901T000000Z-night1",
             "failed_path": f"erp/{table}.csv", "last_good_at": datetime.now(UTC).date()}
        ]  # fmt: skip
    finally:
        state.close()


def test_an_extract_that_never_landed_is_empty_and_says_so(tmp_path: Path) -> None:
    config_path = make_project(tmp_path, {"none.csv": []}, POS)
    write_csv(tmp_path / "erp" / "po_headers.csv", POS, [c for c in HEADER_COLUMNS if c != "vendor_id"])
    state = State.open(tmp_path / "out" / "state.duckdb")
    try:
        erp = land_erp(load_config(config_path), state, "20240901T000000Z-night1")
        assert erp.frames["po_headers"].height == 0
        assert landings_by_file(erp)["erp/po_headers.csv"].error == (
            "erp/po_headers.csv: required column 'vendor_id' is missing; no earlier good po_headers to keep: "
            "published empty"
        )
        assert erp_versions.stale_extracts(state, "20240901T000000Z-night1") == []
    finally:
        state.close()


def test_validate_reads_the_extracts_but_keeps_no_version(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"none.csv": []}, POS)
    result = runner.invoke(app, ["validate", "--config", str(config)])
    assert result.exit_code == 0, result.output
    state = State.open(tmp_path / "out" / "state.duckdb")
    try:
        assert state.rows("select table_name from erp_versions") == []
    finally:
        state.close()


# -- crash safety --------------------------------------------------------------------------------------------------

KEEP_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import polars as pl

    from finrecon.warehouse import erp_versions
    from finrecon.warehouse.state import State

    path, run_id, amount = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    state = State.open(path)
    frame = pl.DataFrame({"po_number": ["PO-1", "PO-2"], "total_amount": [amount, 1.0]})
    erp_versions.keep(state, "po_headers", frame, "erp/po_headers.csv", run_id)
    state.close()
    """
)


def keep_in_a_process(state_path: Path, run_id: str, amount: float, failpoint: str | None = None) -> int:
    """`erp_versions.keep` in a process of its own, killed at `failpoint` if given."""
    env = {k: v for k, v in os.environ.items() if k != ENV} | ({ENV: failpoint} if failpoint else {})
    command = [sys.executable, "-c", KEEP_SCRIPT, str(state_path), run_id, str(amount)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120).returncode


def recalled_amounts(state_path: Path) -> tuple[str, list[float]] | None:
    state = State.open(state_path)
    try:
        version = erp_versions.recall(state, "po_headers")
        return (
            None if version is None else (version.run_id, version.frame.get_column("total_amount").to_list())
        )
    finally:
        state.close()


def test_a_run_killed_while_keeping_a_version_leaves_the_previous_one_whole(tmp_path: Path) -> None:
    state_path = tmp_path / "state.duckdb"
    assert keep_in_a_process(state_path, "20240901T000000Z-night1", 100.0) == 0
    killed = keep_in_a_process(state_path, "20240902T000000Z-night2", 250.0, "erp.version-written")
    assert killed == -9  # SIGKILL between writing the copy and committing it: no finally, no flush
    assert recalled_amounts(state_path) == ("20240901T000000Z-night1", [100.0, 1.0])
    # the next version that lands replaces it whole
    assert keep_in_a_process(state_path, "20240903T000000Z-night3", 300.0) == 0
    assert recalled_amounts(state_path) == ("20240903T000000Z-night3", [300.0, 1.0])
