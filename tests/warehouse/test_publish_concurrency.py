"""Analysts keep the published database open while a run writes: the run is not blocked, the open session
keeps a consistent snapshot, and a new session sees the new data."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest
from support import charge, make_project, po, query, run_flow, write_csv

# A separate process, like an analyst's notebook: DuckDB caches databases per process, so an in-process
# connection would not show what another program sees.
ANALYST = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    def totals():
        charges = con.execute("select count(*), sum(BilledCost) from charges").fetchall()[0]
        coverage = con.execute("select sum(total_billed_cost) from tag_coverage").fetchall()[0][0]
        return f"{charges[0]} {charges[1]:.2f} {coverage:.2f}"
    print(totals(), flush=True)
    for line in sys.stdin:      # one query per line received, until stdin closes
        print(totals(), flush=True)
    """
)


@pytest.mark.usefixtures("prefect_harness")
def test_open_analyst_session_neither_blocks_nor_sees_a_half_written_state(tmp_path: Path) -> None:
    config = make_project(
        tmp_path, {"a.csv": [charge(BilledCost="2.00"), charge(BilledCost="3.00")]}, [po("PO-1")]
    )
    published = run_flow(config).published_path

    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(published)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert analyst.stdin is not None and analyst.stdout is not None
    try:
        assert analyst.stdout.readline().strip() == "2 5.00 5.00"
        # a new file, and a restatement of the file the open snapshot reads (its old part must stay readable)
        write_csv(tmp_path / "focus" / "b.csv", [charge("2024-09-02", BilledCost="4.00")])
        write_csv(tmp_path / "focus" / "a.csv", [charge(BilledCost="2.50"), charge(BilledCost="3.00")])
        outcome = run_flow(config)  # would raise if the analyst's read-only session blocked it
        assert outcome.summary.run["status"] == "succeeded"
        analyst.stdin.write("again\n")
        analyst.stdin.flush()
        assert analyst.stdout.readline().strip() == "2 5.00 5.00"  # the old snapshot, whole
    finally:
        analyst.stdin.close()
        analyst.wait(timeout=30)
    assert analyst.returncode == 0

    # 2.50 + 3.00 + 4.00 = 9.50 in a new session
    assert query(published, "select count(*), sum(BilledCost) from charges") == [(3, 9.5)]
    assert not list(published.parent.glob(".*.building*"))


@pytest.mark.usefixtures("prefect_harness")
def test_failed_run_leaves_the_last_publication_intact(tmp_path: Path) -> None:
    config = make_project(
        tmp_path,
        {"a.csv": [charge(BilledCost="2.00")]},
        [po("PO-1")],
        extra_toml="[validation]\nfail_on_file_error = true\n",
    )
    published = run_flow(config).published_path
    before = published.read_bytes()
    write_csv(tmp_path / "focus" / "broken.csv", [{"ProviderName": "AWS", "BilledCost": "1"}])
    with pytest.raises(Exception, match=r"broken\.csv"):
        run_flow(config)
    assert published.read_bytes() == before
    con = duckdb.connect(str(published), read_only=True)
    try:
        assert con.execute("select count(*), sum(BilledCost) from charges").fetchall() == [(1, 2.0)]
        # the failed run is in the state file's history, not in the publication it did not make
        assert con.execute("select count(*) from runs where status = 'failed'").fetchall() == [(0,)]
    finally:
        con.close()
