"""Nothing is lost: bad rows are quarantined with file, row, column, check and raw value; every file's books
balance (rows and Σ BilledCost / Σ EffectiveCost read = loaded + quarantined); a broken file fails alone.

Runs the real nightly flow. Expected sums are computed here from the rows as written, never read back from the
pipeline.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
from support import FOCUS_COLUMNS, charge, make_project, po, query, run_flow, write_csv

from finrecon.flows.nightly import FileErrorsFatal

# --- input rows (row numbers are 1-based data rows, header excluded) ----------------------------------------

A_ROWS: list[dict[str, Any]] = [
    charge("2024-09-01", ResourceId="a-1", BilledCost="10.10", EffectiveCost="9.05", Tags={"po": "PO-1"}),
    charge("2024-09-01", ResourceId="a-2", BilledCost="12,5x", EffectiveCost="3.30"),
    charge("2024-09-02", ResourceId="a-3", BilledCost="0.35", EffectiveCost="0.30"),
    charge(
        "2024-09-02",
        ResourceId="a-4",
        BilledCost="7.77",
        EffectiveCost="7.00",
        ChargePeriodStart="not-a-date",
    ),
    charge("2024-09-03", ResourceId="a-5", BilledCost="100", EffectiveCost="95.5", Tags={"po": "PO-2"}),
    charge("2024-09-03", ResourceId="a-6", BilledCost="4.40", EffectiveCost="4.00", BillingCurrency="XXQ"),
    charge("2024-09-04", ResourceId="a-7", BilledCost="0.01", EffectiveCost="0.01"),
    charge("2024-09-04", ResourceId="a-8", BilledCost="2.20", EffectiveCost="2.00", Tags='{"po": "PO-1"'),
    charge(
        "2024-09-05", ResourceId="a-9", BilledCost="-1.50", EffectiveCost="-1.50", ChargeCategory="Credit"
    ),
    charge("2024-09-05", ResourceId="a-10", BilledCost="5.55", EffectiveCost="5.00", ProviderName=""),
    charge(
        "2024-09-06",
        ResourceId="a-11",
        BilledCost="6.60",
        EffectiveCost="n/a",
        BillingCurrency="QQQ",
    ),
    charge("2024-09-06", ResourceId="a-12", BilledCost="3.03", EffectiveCost="3.00"),
]
A_BAD = {2, 4, 6, 8, 10, 11}  # 6 of 12: a ratio of exactly 0.5 does not exceed the default max_failure_ratio
A_FAILURES = [
    (2, "BilledCost", "is_decimal", "12,5x"),
    (4, "ChargePeriodStart", "is_timestamp", "not-a-date"),
    (6, "BillingCurrency", "is_iso4217_currency", "XXQ"),
    (8, "Tags", "is_json_object", '{"po": "PO-1"'),
    (10, "ProviderName", "not_nullable", None),
    (11, "BillingCurrency", "is_iso4217_currency", "QQQ"),
    (11, "EffectiveCost", "is_decimal", "n/a"),
]

B_ROWS = [
    charge("2024-09-02", ResourceId="b-1", BilledCost="1.25", EffectiveCost="1.20"),
    charge("2024-09-03", ResourceId="b-2", BilledCost="2.50", EffectiveCost="2.40"),
    charge("2024-09-04", ResourceId="b-3", BilledCost="3.75", EffectiveCost="3.60"),
]

C_ROWS = [  # no BilledCost column at all
    {
        k: v
        for k, v in charge("2024-09-02", ResourceId="c-1", EffectiveCost="8.00").items()
        if k != "BilledCost"
    },
    {
        k: v
        for k, v in charge("2024-09-03", ResourceId="c-2", EffectiveCost="2.00").items()
        if k != "BilledCost"
    },
]

D_GOOD = [
    charge("2024-09-05", ResourceId="d-1", BilledCost="20.00", EffectiveCost="18.00"),
    charge("2024-09-06", ResourceId="d-2", BilledCost="30.00", EffectiveCost="27.00"),
]
D_MOSTLY_BAD = [  # 2 of 3 rows fail: above 0.5, the file is held back
    charge("2024-09-05", ResourceId="d2-1", BilledCost="oops", EffectiveCost="1.00"),
    charge("2024-09-06", ResourceId="d2-2", BilledCost="40.00", EffectiveCost="36.00"),
    charge("2024-09-07", ResourceId="d2-3", BilledCost="5.00", EffectiveCost="4.50", BillingCurrency="XXQ"),
]

POS = [  # 3 of 6 bad: a ratio of exactly 0.5 does not hold the extract back (max_failure_ratio)
    po("PO-1"),
    po("PO-2", total_amount="-5.00"),
    po("PO-3", currency="XXQ"),
    po("PO-4", status="Frozen"),
    po("PO-5"),
    po("PO-6"),
]
FX = [
    {"rate_date": "2024-09-01", "from_currency": "EUR", "to_currency": "USD", "rate": "1.10"},
    {"rate_date": "2024-09-02", "from_currency": "EUR", "to_currency": "USD", "rate": "0"},
]


def _cost(text: Any) -> float:
    """A cost as written, or 0 when it is not a number (what cannot be parsed adds nothing to a sum)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return 0.0


def _books(rows: list[dict[str, Any]], bad: set[int]) -> dict[str, float]:
    """Expected books of one file: row counts and both cost sums, read / loaded / quarantined."""
    good_rows = [r for i, r in enumerate(rows, start=1) if i not in bad]
    bad_rows = [r for i, r in enumerate(rows, start=1) if i in bad]
    books: dict[str, float] = {
        "rows_read": len(rows),
        "rows_loaded": len(good_rows),
        "rows_quarantined": len(bad_rows),
    }
    for prefix, column in (("billed", "BilledCost"), ("effective", "EffectiveCost")):
        books[f"{prefix}_read"] = sum(_cost(r.get(column)) for r in rows)
        books[f"{prefix}_loaded"] = sum(_cost(r.get(column)) for r in good_rows)
        books[f"{prefix}_quarantined"] = sum(_cost(r.get(column)) for r in bad_rows)
    return books


BOOK_COLUMNS = [
    "rows_read",
    "rows_loaded",
    "rows_quarantined",
    "billed_read",
    "billed_loaded",
    "billed_quarantined",
    "effective_read",
    "effective_loaded",
    "effective_quarantined",
]


def _run_files(db: Path, run_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    columns = ", ".join(["source", "file_path", "status", "error", *BOOK_COLUMNS])
    con = duckdb.connect(str(db), read_only=True)
    try:
        cursor = con.execute(f"select {columns} from run_files where run_id = ?", [run_id])
        names = [d[0] for d in cursor.description or []]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    return {(r["source"], r["file_path"]): r for r in rows}


def _assert_books(actual: dict[str, Any], expected: dict[str, float]) -> None:
    for name in BOOK_COLUMNS:
        assert actual[name] == pytest.approx(expected[name], abs=1e-9), name
    # the identities themselves
    assert actual["rows_read"] == actual["rows_loaded"] + actual["rows_quarantined"]
    for prefix in ("billed", "effective"):
        assert actual[f"{prefix}_read"] == pytest.approx(
            actual[f"{prefix}_loaded"] + actual[f"{prefix}_quarantined"], abs=1e-9
        )


def _quarantine(db: Path, source: str, file_path: str) -> list[tuple[Any, ...]]:
    return query(
        db,
        "select row_number, column_name, check_name, raw_value from quarantine "
        "where source = ? and file_path = ? order by row_number nulls first, column_name, check_name",
        [source, file_path],
    )


def test_bad_rows_quarantined_books_balance_and_broken_files_fail_alone(
    prefect_harness: None, tmp_path: Path
) -> None:
    config = make_project(
        tmp_path,
        {"a_bad.csv": A_ROWS, "b_clean.csv": B_ROWS, "c_missing.csv": C_ROWS, "d.csv": D_GOOD},
        POS,
        fx=FX,
    )

    # ---------------- run 1 ----------------
    outcome = run_flow(config)
    db = outcome.published_path
    run1 = outcome.run_id

    expected = {
        "a_bad.csv": _books(A_ROWS, A_BAD),
        "b_clean.csv": _books(B_ROWS, set()),
        "c_missing.csv": _books(C_ROWS, {1, 2}),
        "d.csv": _books(D_GOOD, set()),
    }
    # sanity of the hand-built expectations themselves (independent of the pipeline)
    assert expected["a_bad.csv"]["billed_read"] == pytest.approx(
        10.10 + 0.35 + 7.77 + 100 + 4.40 + 0.01 + 2.20 - 1.50 + 5.55 + 6.60 + 3.03
    )
    assert expected["a_bad.csv"]["effective_loaded"] == pytest.approx(9.05 + 0.30 + 95.5 + 0.01 - 1.50 + 3.00)
    assert expected["c_missing.csv"]["effective_read"] == pytest.approx(10.0)

    # quarantine: exactly the injected failures, with file, row, column, check and raw value
    assert _quarantine(db, "test", "a_bad.csv") == A_FAILURES
    assert _quarantine(db, "test", "b_clean.csv") == []
    assert _quarantine(db, "test", "d.csv") == []
    quarantine_runs = query(db, "select distinct run_id from quarantine where file_path = 'a_bad.csv'")
    assert quarantine_runs == [(run1,)]

    # the file without BilledCost fails as a whole, naming the file and the column
    missing = query(
        db,
        "select row_number, column_name, message from quarantine where file_path = 'c_missing.csv'",
    )
    assert len(missing) == 1
    assert missing[0][0] is None
    assert missing[0][1] == "BilledCost"
    assert "c_missing.csv" in missing[0][2]
    assert "BilledCost" in missing[0][2]

    # per-file books
    files = _run_files(db, run1)
    assert {k for k in files if k[0] == "test"} == {("test", name) for name in expected}
    for name, books in expected.items():
        _assert_books(files[("test", name)], books)
    assert files[("test", "a_bad.csv")]["status"] == "landed"
    assert files[("test", "b_clean.csv")]["status"] == "landed"
    assert files[("test", "d.csv")]["status"] == "landed"
    failed = files[("test", "c_missing.csv")]
    assert failed["status"] == "failed"
    assert "c_missing.csv" in failed["error"]
    assert "BilledCost" in failed["error"]
    assert [f["file_path"] for f in outcome.failed_files] == ["c_missing.csv"]
    assert "BilledCost" in str(outcome.failed_files[0]["error"])

    # what landed is exactly the good rows, cent for cent
    landed = query(
        db,
        "select x_source_file, count(*), sum(BilledCost), sum(EffectiveCost), list(ResourceId order by ResourceId) "
        "from charges group by x_source_file order by x_source_file",
    )
    a_good = [r for i, r in enumerate(A_ROWS, start=1) if i not in A_BAD]
    expected_landed = [
        ("a_bad.csv", a_good),
        ("b_clean.csv", B_ROWS),
        ("d.csv", D_GOOD),
    ]
    assert [row[0] for row in landed] == [name for name, _ in expected_landed]
    for row, (_name, rows) in zip(landed, expected_landed, strict=True):
        assert row[1] == len(rows)
        assert row[2] == pytest.approx(sum(float(r["BilledCost"]) for r in rows), abs=1e-9)
        assert row[3] == pytest.approx(sum(float(r["EffectiveCost"]) for r in rows), abs=1e-9)
        assert row[4] == sorted(r["ResourceId"] for r in rows)
    source_rows = query(db, "select x_source_row from charges where x_source_file = 'a_bad.csv' order by 1")
    assert [r[0] for r in source_rows] == [1, 3, 5, 7, 9, 12]

    # run totals (FOCUS files only) and what was published
    total_loaded_rows = len(a_good) + len(B_ROWS) + len(D_GOOD)
    run = outcome.summary.run
    assert run["run_id"] == run1
    assert run["status"] == "succeeded"
    assert run["files_failed"] == 1
    assert run["files_landed"] == 3
    assert run["rows_read"] == len(A_ROWS) + len(B_ROWS) + len(C_ROWS) + len(D_GOOD)
    assert run["rows_loaded"] == total_loaded_rows
    assert run["rows_quarantined"] == len(A_BAD) + len(C_ROWS)
    for prefix in ("billed", "effective"):
        for kind in ("read", "loaded", "quarantined"):
            want = sum(books[f"{prefix}_{kind}"] for books in expected.values())
            assert run[f"{prefix}_{kind}"] == pytest.approx(want, abs=1e-9), f"{prefix}_{kind}"
    assert run["published_charge_rows"] == total_loaded_rows
    assert run["published_billed_cost"] == pytest.approx(
        sum(float(r["BilledCost"]) for r in [*a_good, *B_ROWS, *D_GOOD]), abs=1e-9
    )

    # ERP: bad rows quarantined under source 'erp'; the bad POs are not published
    assert _quarantine(db, "erp", "erp/po_headers.csv") == [
        (2, "total_amount", "is_non_negative", "-5.00"),
        (3, "currency", "is_iso4217_currency", "XXQ"),
        (4, "status", "is_known_po_status", "Frozen"),
    ]
    assert _quarantine(db, "erp", "erp/fx_rates.csv") == [(2, "rate", "is_positive", "0")]
    assert query(db, "select po_number from po_headers order by po_number") == [
        ("PO-1",),
        ("PO-5",),
        ("PO-6",),
    ]
    assert _run_files_books(files, "erp", "erp/po_headers.csv") == (6, 3, 3)
    assert _run_files_books(files, "erp", "erp/fx_rates.csv") == (2, 1, 1)
    # a charge tagged with a quarantined PO does not resolve to it
    assert query(db, "select x_po_status, x_po_reason from charges where ResourceId = 'a-5'") == [
        ("invalid", "unknown_po")
    ]
    assert query(db, "select x_po_status, x_po_number from charges where ResourceId = 'a-1'") == [
        ("valid", "PO-1")
    ]

    # ---------------- run 2: d.csv is replaced by a version above max_failure_ratio ----------------
    write_csv(tmp_path / "focus" / "d.csv", D_MOSTLY_BAD)
    outcome2 = run_flow(config)
    db = outcome2.published_path
    run2 = outcome2.run_id
    files2 = _run_files(db, run2)

    held = files2[("test", "d.csv")]
    assert held["status"] == "failed"
    assert "d.csv" in held["error"]
    assert "max_failure_ratio" in held["error"]
    d_books = _books(D_MOSTLY_BAD, {1, 3})
    # held back: every row counted as quarantined, nothing loaded
    _assert_books(
        held,
        {
            "rows_read": 3,
            "rows_loaded": 0,
            "rows_quarantined": 3,
            "billed_read": d_books["billed_read"],
            "billed_loaded": 0.0,
            "billed_quarantined": d_books["billed_read"],
            "effective_read": d_books["effective_read"],
            "effective_loaded": 0.0,
            "effective_quarantined": d_books["effective_read"],
        },
    )
    assert d_books["billed_read"] == pytest.approx(45.0)
    assert sorted(f["file_path"] for f in outcome2.failed_files) == ["c_missing.csv", "d.csv"]
    d_quarantine = set(_quarantine(db, "test", "d.csv"))
    assert {
        (1, "BilledCost", "is_decimal", "oops"),
        (3, "BillingCurrency", "is_iso4217_currency", "XXQ"),
    } <= (d_quarantine)

    # the previous good version of d.csv stays published; nothing of the new one is in charges
    assert query(
        db,
        "select list(ResourceId order by ResourceId), sum(BilledCost), sum(EffectiveCost) "
        "from charges where x_source_file = 'd.csv'",
    ) == [(["d-1", "d-2"], pytest.approx(50.0), pytest.approx(45.0))]
    assert query(db, "select count(*) from charges where ResourceId like 'd2-%'") == [(0,)]

    # the unchanged files keep their rows and quarantine
    assert files2[("test", "a_bad.csv")]["status"] == "unchanged"
    assert _quarantine(db, "test", "a_bad.csv") == A_FAILURES
    assert query(db, "select count(*) from charges") == [(total_loaded_rows,)]
    assert outcome2.summary.run["published_charge_rows"] == total_loaded_rows
    assert query(db, "select run_id, status from runs order by started_at") == [
        (run1, "succeeded"),
        (run2, "succeeded"),
    ]


def _run_files_books(files: dict[tuple[str, str], dict[str, Any]], source: str, path: str) -> tuple[int, ...]:
    row = files[(source, path)]
    assert row["status"] == "landed"
    return (row["rows_read"], row["rows_loaded"], row["rows_quarantined"])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fail_on_file_error_stops_the_run_and_keeps_the_previous_publication(
    prefect_harness: None, tmp_path: Path
) -> None:
    config = make_project(
        tmp_path,
        {"a.csv": B_ROWS},
        [po("PO-1")],
        extra_toml="[validation]\nfail_on_file_error = true\n",
    )
    first = run_flow(config)
    published = first.published_path
    before = _sha256(published)
    assert query(published, "select count(*) from charges") == [(len(B_ROWS),)]

    broken_columns = [c for c in FOCUS_COLUMNS if c != "BilledCost"]
    write_csv(tmp_path / "focus" / "b_missing.csv", C_ROWS, broken_columns)
    with pytest.raises(FileErrorsFatal, match=re.escape("b_missing.csv")):
        run_flow(config)

    # the publication analysts open is exactly as it was
    assert _sha256(published) == before
    assert query(published, "select run_id, status from runs") == [(first.run_id, "succeeded")]
    assert query(published, "select count(*), sum(BilledCost) from charges") == [
        (len(B_ROWS), pytest.approx(1.25 + 2.50 + 3.75))
    ]
    assert list(published.parent.glob("*.building*")) == []

    # the failed run is on record in the pipeline's own state
    state = tmp_path / "out" / "state.duckdb"
    runs = query(state, "select run_id, status, message from runs order by started_at")
    assert len(runs) == 2
    assert runs[0][:2] == (first.run_id, "succeeded")
    assert runs[1][1] == "failed"
    assert "b_missing.csv" in runs[1][2]
