"""CSV records as files go wrong in practice (issue 17, items 1-4), through the real `finrecon run` in a subprocess:
a truncated gzip fails alone and its previous version stays published; a last record cut short, a record with an
unquoted comma and blank lines never turn into charges, and the file's good rows land.

Each checks the exit code, the one line naming file and line, no traceback, the books (read = loaded +
quarantined), the quarantine record, and that the publication holds exactly the good rows. Expected figures are
the costs the tests write (or, for the bundled fixture, its values summed here with the `csv` module).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli.test_errors import assert_actionable
from support import charge, make_project, po, query, write_csv

from finrecon.models.config import PROJECT_ROOT

pytestmark = pytest.mark.usefixtures("prefect_harness")

EXIT_OK, EXIT_FILES_FAILED = 0, 1
FIXTURE = PROJECT_ROOT / "data" / "fixtures" / "focus" / "aws_focus_1.0_2024-09.csv.gz"
SHAPE_CHECK = "fields_match_header"


def finrecon_run(config: Path) -> tuple[int, str]:
    """`finrecon run` as a user runs it (its own process, on the test session's Prefect server): exit code and
    stdout + stderr with whitespace collapsed."""
    import prefect.settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("FINRECON_")}
    env["PREFECT_API_URL"] = str(prefect.settings.PREFECT_API_URL.value())
    result = subprocess.run(
        [sys.executable, "-m", "finrecon", "run", "--config", str(config)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def published(config: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return query(config.parent / "out" / "finops.duckdb", sql, params or [])


def books(config: Path, file_path: str) -> tuple[Any, ...]:
    """The last run's books of one file: status, rows read/loaded/quarantined, Σ BilledCost read/loaded/quarantined."""
    rows = published(
        config,
        "select status, rows_read, rows_loaded, rows_quarantined, billed_read, billed_loaded, billed_quarantined "
        "from finops.run_files where file_path = ? and run_id = (select max(run_id) from finops.runs)",
        [file_path],
    )
    assert len(rows) == 1, rows
    _status, read, loaded, quarantined, billed_read, billed_loaded, billed_quarantined = rows[0]
    assert read == loaded + quarantined
    assert billed_read == pytest.approx(billed_loaded + billed_quarantined, abs=1e-9)
    return rows[0]


def costs(count: int, first: float, file_tag: str) -> list[dict[str, Any]]:
    """`count` tagged charges of `first`, 2·first, 4·first, …; ResourceId `<file_tag>-<n>`."""
    return [
        charge(
            ResourceId=f"{file_tag}-{n}", BilledCost=f"{first * 2 ** (n - 1):.2f}",
            EffectiveCost=f"{first * 2 ** (n - 1):.2f}", Tags={"po": "PO-1"},
        )
        for n in range(1, count + 1)
    ]  # fmt: skip


def test_cut_short_overlong_and_blank_records_never_become_charges_and_the_good_rows_land(
    tmp_path: Path,
) -> None:
    config = make_project(
        tmp_path,
        {},
        [po("PO-1", total_amount="100000.00"), po("PO-2"), po("PO-3")],
    )
    focus = tmp_path / "focus"
    # item 2: six charges, the file ends inside the sixth one's ServiceName (field 16 of 18), no newline
    whole = write_csv(focus / "short.csv", costs(6, 1.0, "short")).read_bytes().rstrip(b"\r\n")
    (focus / "short.csv").write_bytes(whole[: whole.rindex(b"Amazon Elastic") + len(b"Amazon Elastic Comp")])
    # item 2 again: the file ends inside the third charge's quoted Tags (its 18th field)
    whole = write_csv(focus / "quoted.csv", costs(3, 10.0, "quoted")).read_bytes().rstrip(b"\r\n")
    (focus / "quoted.csv").write_bytes(whole[: whole.rindex(b'""po""')])
    # item 3: two charges, then three empty lines
    blank = write_csv(focus / "blank.csv", costs(2, 100.0, "blank"))
    blank.write_bytes(blank.read_bytes() + b"\r\n\r\n\r\n")
    # item 4: the second of three charges has an unquoted comma in its ServiceName (19 fields)
    rows = costs(3, 1000.0, "long")
    rows[1]["ServiceName"] = "Compute<comma>"
    long = write_csv(focus / "long.csv", rows)
    long.write_bytes(long.read_bytes().replace(b"Compute<comma>", b"Compute, Storage"))
    # an ERP extract cut short the same way: its third PO is never published
    headers = (tmp_path / "erp" / "po_headers.csv").read_bytes().rstrip(b"\r\n")
    (tmp_path / "erp" / "po_headers.csv").write_bytes(headers[: headers.rindex(b"PO-3") + len(b"PO-3,V-")])

    code, output = finrecon_run(config)

    assert code == EXIT_OK, output
    assert_actionable(
        output,
        "short.csv: line 7 has 16 of 18 fields: the record is cut short or lacks separators; quarantined",
        "quoted.csv: line 4 has 18 of 18 fields and ends inside a quoted value: the file is cut short",
        "long.csv: line 3 has 19 of 18 fields: quote values that contain commas; quarantined",
    )
    assert "blank.csv: line" not in output  # blank lines are no records: nothing to say
    # the books: the cut or overlong record is read and quarantined, its cost unknown (counted 0, never guessed)
    assert books(config, "short.csv") == ("landed", 6, 5, 1, 31.0, 31.0, 0.0)
    assert books(config, "quoted.csv") == ("landed", 3, 2, 1, 30.0, 30.0, 0.0)
    assert books(config, "blank.csv") == ("landed", 2, 2, 0, 300.0, 300.0, 0.0)
    assert books(config, "long.csv") == ("landed", 3, 2, 1, 5000.0, 5000.0, 0.0)
    assert published(
        config,
        "select file_path, row_number, column_name, check_name, raw_value from finops.quarantine "
        "where source = 'test' order by file_path",
    ) == [
        ("long.csv", 2, None, SHAPE_CHECK, "line 3 has 19 of 18 fields: quote values that contain commas"),
        ("quoted.csv", 3, None, SHAPE_CHECK,
         "line 4 has 18 of 18 fields and ends inside a quoted value: the file is cut short"),
        ("short.csv", 6, None, SHAPE_CHECK,
         "line 7 has 16 of 18 fields: the record is cut short or lacks separators"),
    ]  # fmt: skip
    # published: exactly the good rows, each under its own row number; nothing untagged crept in
    assert published(
        config, "select x_source_file, list(x_source_row order by x_source_row), sum(BilledCost) "
        "from finops.charges group by 1 order by 1",
    ) == [
        ("blank.csv", [1, 2], pytest.approx(300.0)),
        ("long.csv", [1, 3], pytest.approx(5000.0)),
        ("quoted.csv", [1, 2], pytest.approx(30.0)),
        ("short.csv", [1, 2, 3, 4, 5], pytest.approx(31.0)),
    ]  # fmt: skip
    assert published(config, "select sum(total_cost), sum(untagged_cost) from finops.tag_coverage") == [
        (pytest.approx(5361.0), pytest.approx(0.0))
    ]
    # the ERP extract: the cut third PO is quarantined, the two whole ones published
    assert books(config, "erp/po_headers.csv")[:4] == ("landed", 3, 2, 1)
    assert published(
        config, "select distinct row_number from finops.quarantine where file_path = 'erp/po_headers.csv'"
    ) == [(3,)]
    assert published(config, "select po_number from finops.po_headers order by 1") == [("PO-1",), ("PO-2",)]


def fixture_rows() -> tuple[bytes, list[str], int, float]:
    """The bundled AWS FOCUS fixture: its bytes, the header, its rows and Σ BilledCost (read with `csv`)."""
    text = gzip.decompress(FIXTURE.read_bytes())
    records = list(csv.reader(io.StringIO(text.decode("utf-8"), newline="")))
    column = records[0].index("BilledCost")
    billed = sum(float(r[column]) for r in records[1:] if r[column] != "NULL")
    return text, records[0], len(records) - 1, billed


def test_a_truncated_gzip_fails_alone_and_its_previous_version_stays_published(tmp_path: Path) -> None:
    config = make_project(tmp_path, {}, [po("PO-1", total_amount="100000.00")])
    text, _header, rows, billed = fixture_rows()
    body = text[text.index(b"\n") + 1 :]
    data = gzip.compress(text + body, mtime=0)  # the fixture's rows twice: > 100 kB compressed
    assert len(data) > 100_000
    big = tmp_path / "focus" / "big.csv.gz"
    big.parent.mkdir(exist_ok=True)
    big.write_bytes(data)
    other = [charge(ResourceId="o1", BilledCost="4.00", EffectiveCost="4.00", Tags={"po": "PO-1"})]
    write_csv(tmp_path / "focus" / "other.csv", other)

    code, output = finrecon_run(config)
    assert code == EXIT_OK, output
    before = published(
        config, "select x_source_file, count(*), sum(BilledCost) from finops.charges group by 1 order by 1"
    )
    assert before == [
        ("big.csv.gz", 2 * rows, pytest.approx(2 * billed)),
        ("other.csv", 1, pytest.approx(4.0)),
    ]

    big.write_bytes(data[: len(data) * 60 // 100])
    other.append(charge(ResourceId="o2", BilledCost="6.00", EffectiveCost="6.00", Tags={"po": "PO-1"}))
    write_csv(tmp_path / "focus" / "other.csv", other)
    code, output = finrecon_run(config)

    assert code == EXIT_FILES_FAILED, output
    assert_actionable(
        output,
        "file failed: sources[0] (test): big.csv.gz: cannot be read: the gzip stream is truncated or corrupt",
        "stale: sources[0] (test): big.csv.gz keeps its last good version",
    )
    # nothing of the cut file is known or loaded this run; its first version stands, the other file's change lands
    assert books(config, "big.csv.gz") == ("failed", 0, 0, 0, 0.0, 0.0, 0.0)
    assert books(config, "other.csv") == ("landed", 2, 2, 0, 10.0, 10.0, 0.0)
    after = published(
        config, "select x_source_file, count(*), sum(BilledCost) from finops.charges group by 1 order by 1"
    )
    assert after == [
        ("big.csv.gz", 2 * rows, pytest.approx(2 * billed)),
        ("other.csv", 2, pytest.approx(10.0)),
    ]
