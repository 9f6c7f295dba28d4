"""Every file of the bad-input corpus through the real nightly flow, in one run: each either fails alone with a
message naming the file (and the line and column where one is to blame), or lands with exactly its bad rows in
`quarantine`; and for every file the books balance against an independent reading of the raw file.

The outcomes are hand-worked here from the files (see corpus/README.md); the sums come from `corpus.raw_rows`,
which reads the files with the standard library and pyarrow, never with the pipeline's reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from bad_inputs.corpus import CORPUS, build_focus_folder, cost_sum, huge_tags_value, raw_rows
from support import make_project, po, query, run_flow

pytestmark = pytest.mark.e2e

Record = tuple[int | None, str | None, str, str | None]  # row, column, check, raw value


@dataclass(frozen=True)
class Case:
    """One corpus file and its hand-worked outcome."""

    file: str
    kind: str  # the kind of bad input (issue 10, item 3)
    rows: int  # data rows in the file, counted by hand (0: unreadable, its rows are unknown)
    quarantine: tuple[Record, ...] = ()  # landed: exactly these records; failed: the one file-level record
    message: tuple[str, ...] = ()  # failed: the error names the file and says all of these
    failed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _file_error(column: str | None, check: str) -> tuple[Record, ...]:
    return ((None, column, check, None),)


ALL_REQUIRED = (
    "BilledCost,EffectiveCost,BillingCurrency,ChargePeriodStart,ChargeCategory,ProviderName,BillingAccountId"
)

CASES = [
    Case("good.csv", "control: a clean file", 3),
    Case("good_copy.csv", "duplicate rows: good.csv delivered twice", 3),
    Case("duplicate_rows.csv", "duplicate rows: one line twice in a file", 3),
    Case("header_only.csv", "empty file: a header and no rows", 0),
    Case("empty.parquet", "empty file: Parquet without rows", 0),
    Case("empty.csv", "empty file: 0 bytes", 0, _file_error(None, "readable"), ("is empty",), True),
    Case(
        "empty.csv.gz", "empty file: gzip of nothing", 0, _file_error(None, "readable"), ("is empty",), True
    ),
    Case(
        "truncated.csv.gz",
        "truncated gzip",
        0,
        _file_error(None, "readable"),
        ("gzip stream is truncated or corrupt", "its rows are unknown"),
        True,
    ),
    Case(
        "truncated.parquet", "truncated Parquet", 0, _file_error(None, "readable"), ("cannot be read",), True
    ),
    Case(
        "semicolon_delimited.csv",
        "wrong delimiter: ';'",
        2,
        _file_error(ALL_REQUIRED, "column_present"),
        ("required columns 'BilledCost'", "looks ';'-delimited"),
        True,
    ),
    Case(
        "tab_delimited.csv",
        "wrong delimiter: tab",
        1,
        _file_error(ALL_REQUIRED, "column_present"),
        ("looks tab-delimited",),
        True,
    ),
    Case("bom_utf8.csv", "UTF-8 byte-order mark (valid: read as UTF-8)", 2),
    Case("bom_utf8.csv.gz", "UTF-8 byte-order mark inside gzip", 2),
    Case(
        "utf16.csv", "non-UTF-8: UTF-16 with BOM", 0, _file_error(None, "is_utf8"), ("UTF-16-encoded",), True
    ),
    Case(
        "latin1.csv",
        "non-UTF-8: Latin-1 byte in a value",
        3,
        _file_error("ResourceName", "is_utf8"),
        ("not UTF-8 text at line 3 (byte 0xE9), column 'ResourceName'",),
        True,
    ),
    Case(
        "latin1.csv.gz",
        "non-UTF-8 inside gzip",
        3,
        _file_error("ResourceName", "is_utf8"),
        ("not UTF-8 text at line 3 (byte 0xE9), column 'ResourceName'",),
        True,
    ),
    Case(
        "missing_columns.csv",
        "missing required columns",
        2,
        _file_error("BilledCost,BillingCurrency", "column_present"),
        ("required columns 'BilledCost', 'BillingCurrency' are missing",),
        True,
    ),
    Case("extra_columns.csv", "extra columns (one named with SQL metacharacters)", 2),
    Case(
        "reserved_column.csv",
        "extra column named like a pipeline column",
        2,
        _file_error("x_po_number", "not_reserved_column"),
        ("column 'x_po_number' is reserved",),
        True,
    ),
    Case(
        "duplicated_column.csv",
        "duplicated header: a column named twice",
        2,
        _file_error("ResourceId", "unique_column"),
        ("column 'ResourceId' appears twice (columns 8 and 10)",),
        True,
    ),
    Case(
        "duplicated_column.parquet",
        "duplicated header: a Parquet field named twice",
        2,
        _file_error("BilledCost", "unique_column"),
        ("column 'BilledCost' appears twice (columns 6 and 7)",),
        True,
    ),
    Case(
        "duplicated_header_row.csv",
        "duplicated header: the header row again inside the data",
        4,
        (
            (3, "BilledCost", "is_decimal", "BilledCost"),
            (3, "BillingCurrency", "is_iso4217_currency", "BillingCurrency"),
            (3, "ChargeCategory", "is_focus_ChargeCategory", "ChargeCategory"),
            (3, "ChargePeriodStart", "is_timestamp", "ChargePeriodStart"),
            (3, "EffectiveCost", "is_decimal", "EffectiveCost"),
            (3, "Tags", "is_json_object", "Tags"),
        ),
    ),
    Case(
        "costs_text_nan_inf.csv",
        "costs as text / NaN / inf / overflow / empty",
        14,
        (
            (2, "BilledCost", "is_decimal", "abc"),
            (3, "BilledCost", "is_decimal", "NaN"),
            (5, "EffectiveCost", "is_decimal", "inf"),
            (7, "BilledCost", "is_decimal", "-Infinity"),
            (9, "BilledCost", "is_decimal", "1,000.00"),
            (11, "BilledCost", "is_decimal", "1e309"),
            (13, "BilledCost", "not_nullable", None),
        ),
    ),
    Case(
        "costs_nan_inf.parquet",
        "costs as native NaN / inf / 1e308",
        6,
        (
            (2, "BilledCost", "is_decimal", "NaN"),
            (3, "EffectiveCost", "is_decimal", "inf"),
            (6, "BilledCost", "is_decimal", "1e+308"),  # finite, but no amount of money
        ),
    ),
    Case(
        "dates_format_timezone.csv",
        "dates in the wrong format or time zone",
        11,
        (
            (2, "ChargePeriodStart", "is_timestamp", "09/05/2024"),
            (4, "ChargePeriodStart", "is_timestamp", "2024-13-05"),
            (6, "ChargePeriodStart", "is_timestamp", "2024-09-05T00:00:00 PST"),
            (8, "ChargePeriodStart", "is_timestamp", "05.09.2024 00:00"),
            (10, "ChargePeriodStart", "is_timestamp", "2024-09-05T00:00:00+25:00"),
        ),
    ),
    Case(
        "future_dates.csv",
        "future dates",
        4,
        (
            (2, "ChargePeriodStart", "is_not_in_future", "2099-01-01T00:00:00Z"),
            (4, "ChargePeriodStart", "is_not_in_future", "9999-12-31T00:00:00Z"),
        ),
    ),
    Case(
        "dates_timezone.parquet",
        "time zones and a future date as Parquet timestamps",
        4,
        ((2, "ChargePeriodStart", "is_not_in_future", "2099-01-01 00:00:00.000000+02:00"),),
    ),
    Case(
        "malformed_tags.csv",
        "malformed Tags JSON",
        16,
        (
            (2, "Tags", "is_json_object", '{"po": "PO-1001"'),
            (3, "Tags", "is_json_object", "{'po': 'PO-1001'}"),
            (5, "Tags", "is_json_object", '[["po", "PO-1001"]]'),
            (6, "Tags", "has_unique_keys", '{"po": "PO-1001", "po": "PO-2002"}'),
            (8, "Tags", "is_json_object", '{"po": "\\ud800"}'),
            (10, "Tags", "is_json_object", '{"po": NaN}'),
            (12, "Tags", "is_json_object", '"PO-1001"'),
            (13, "Tags", "is_json_object", '{"po": "PO-1001"} trailing'),
        ),
    ),
    Case(
        "tags_map.parquet",
        "Tags as a Parquet MAP with a repeated key",
        4,
        ((2, "Tags", "has_unique_keys", '{"po":"PO-1001","po":"PO-2002"}'),),
    ),
    Case(
        "huge_tag.csv",
        "a 50 MB tag value",
        3,
        (
            (
                2,
                "Tags",
                "is_at_most_65536_bytes",  # kept in quarantine as its first 1,000 characters and its length
                huge_tags_value()[:1000] + f"… [{len(huge_tags_value())} characters]",
            ),
        ),
    ),
    Case(
        "mixed_currency.csv",
        "mixed currencies in one billing account",
        4,
        ((4, "BillingCurrency", "is_iso4217_currency", "US$"),),
    ),
    Case("po_lookalikes.csv", "PO tags with SQL metacharacters and Unicode look-alikes", 8),
    Case(
        "cut_last_record.csv",
        "record shape: the file ends inside its last record (no newline)",
        3,
        (
            (
                3,
                None,
                "fields_match_header",
                "line 4 has 7 of 9 fields: the record is cut short or lacks separators",
            ),
        ),
    ),
    Case(
        "overlong_record.csv",
        "record shape: an unquoted comma in a value",
        3,
        ((2, None, "fields_match_header", "line 3 has 10 of 9 fields: quote values that contain commas"),),
    ),
    Case("blank_lines.csv", "record shape: blank lines between and after the records (no rows)", 2),
]
FAILED = sorted(c.file for c in CASES if c.failed)


@dataclass(frozen=True)
class CorpusRun:
    root: Path
    db: Path
    run_id: str
    outcome: Any


@pytest.fixture(scope="module")
def corpus_run(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> CorpusRun:
    """One nightly run over the whole corpus (FOCUS files and the ERP PO headers)."""
    root = tmp_path_factory.mktemp("corpus")
    config = make_project(root, {}, [po("PO-0")])
    (root / "erp" / "po_headers.csv").write_bytes((CORPUS / "erp" / "po_headers.csv").read_bytes())
    build_focus_folder(root / "focus")
    outcome = run_flow(config)
    return CorpusRun(root, outcome.published_path, outcome.run_id, outcome)


def _books(run: CorpusRun, source: str, file_path: str) -> dict[str, Any]:
    con = duckdb.connect(str(run.db), read_only=True)
    try:
        cursor = con.execute(
            "select * from run_files where run_id = ? and source = ? and file_path = ?",
            [run.run_id, source, file_path],
        )
        names = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    finally:
        con.close()
    assert len(rows) == 1, f"{file_path}: {len(rows)} books"
    return dict(zip(names, rows[0], strict=True))


def _records(run: CorpusRun, source: str, file_path: str) -> list[Record]:
    rows = query(
        run.db,
        "select row_number, column_name, check_name, raw_value from quarantine where source = ? and file_path = ?",
        [source, file_path],
    )
    return sorted(rows, key=lambda r: (r[0] or 0, r[1] or "", r[2]))


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_corpus_file_fails_alone_or_quarantines_exactly_its_bad_rows_and_balances(
    corpus_run: CorpusRun, case: Case
) -> None:
    path = corpus_run.root / "focus" / case.file
    raw = raw_rows(path) if case.rows else []
    assert len(raw) == case.rows, "the hand count of the file's rows"
    books = _books(corpus_run, "test", case.file)
    records = _records(corpus_run, "test", case.file)

    assert records == sorted(case.quarantine, key=lambda r: (r[0] or 0, r[1] or "", r[2]))
    if case.failed:
        assert books["status"] == "failed"
        assert case.file in books["error"]
        for words in case.message:
            assert words in books["error"]
        bad_numbers = {r.number for r in raw}
    else:
        assert books["status"] == "landed"
        assert books["error"] is None
        bad_numbers = {record[0] for record in case.quarantine}
    good = [r for r in raw if r.number not in bad_numbers]
    bad = [r for r in raw if r.number in bad_numbers]

    # the books: rows and both costs read = loaded + quarantined, each equal to the independent reading
    assert (books["rows_read"], books["rows_loaded"], books["rows_quarantined"]) == (
        len(raw),
        len(good),
        len(bad),
    )
    for prefix, column in (("billed", "BilledCost"), ("effective", "EffectiveCost")):
        assert books[f"{prefix}_read"] == pytest.approx(cost_sum(raw, column), rel=1e-12)
        assert books[f"{prefix}_loaded"] == pytest.approx(cost_sum(good, column), rel=1e-12)
        assert books[f"{prefix}_quarantined"] == pytest.approx(cost_sum(bad, column), rel=1e-12)
        assert books[f"{prefix}_read"] == pytest.approx(
            books[f"{prefix}_loaded"] + books[f"{prefix}_quarantined"], rel=1e-12
        )

    # what was published for the file is exactly its good rows, cent for cent
    published = query(
        corpus_run.db,
        "select x_source_row, ResourceId, BilledCost, EffectiveCost from charges where x_source_file = ? "
        "order by x_source_row",
        [case.file],
    )
    assert [(r[0], r[1]) for r in published] == [(r.number, r.values["ResourceId"]) for r in good]
    assert sum(r[2] for r in published) == pytest.approx(cost_sum(good, "BilledCost"), rel=1e-12)
    assert sum(r[3] for r in published) == pytest.approx(cost_sum(good, "EffectiveCost"), rel=1e-12)


def test_the_run_publishes_and_names_exactly_the_failed_files(corpus_run: CorpusRun) -> None:
    run = corpus_run.outcome.summary.run
    assert run["status"] == "succeeded"
    assert sorted(f["file_path"] for f in corpus_run.outcome.failed_files) == FAILED
    assert run["files_failed"] == len(FAILED)
    landed = query(
        corpus_run.db,
        "select count(*) from run_files where run_id = ? and source = 'test'",
        [corpus_run.run_id],
    )
    assert landed == [(len(CASES),)]
    # a charge dated 2099 or 9999 is quarantined, so the reconciliation date is the last real charge date:
    # po_lookalikes.csv's 2024-09-09
    assert query(corpus_run.db, "select distinct as_of from po_burn_latest") == [(date(2024, 9, 9),)]


def test_time_zones_land_as_utc(corpus_run: CorpusRun) -> None:
    landed = dict(
        query(
            corpus_run.db,
            "select ResourceId, ChargePeriodStart from charges "
            "where x_source_file in ('dates_format_timezone.csv', 'dates_timezone.parquet')",
        )
    )
    assert landed == {
        "date-1": datetime(2024, 9, 5, 0, 0),
        "date-3": datetime(2024, 9, 4, 22, 0),  # +02:00
        "date-5": datetime(2024, 9, 6, 4, 30),  # 23:30 at -05:00 is the next day in UTC
        "date-7": datetime(2024, 9, 5, 0, 0),  # a bare date
        "date-9": datetime(2024, 9, 5, 12, 0),  # no offset: UTC
        "date-11": datetime(2024, 9, 5, 10, 0, 0, 250000),
        "pq-date-1": datetime(2024, 9, 4, 22, 0),
        "pq-date-3": datetime(2024, 9, 5, 21, 0),
        "pq-date-4": datetime(2024, 9, 4, 23, 30),
    }
    days = dict(
        query(corpus_run.db, "select ResourceId, x_charge_date from charges where ResourceId = 'date-5'")
    )
    assert days == {"date-5": date(2024, 9, 6)}


def test_extra_columns_land_verbatim_even_with_sql_metacharacters_in_their_names(
    corpus_run: CorpusRun,
) -> None:
    rows = query(
        corpus_run.db,
        'select ResourceId, x_CostCenter, x_Team, "x_Team""; drop table charges;--" from charges '
        "where x_source_file = 'extra_columns.csv' order by ResourceId",
    )
    assert rows == [("extra-1", "CC-7", "blue", "x"), ("extra-2", "CC-8", "red", "y")]
    assert query(corpus_run.db, "select count(*) from charges") != [(0,)]


def test_duplicate_rows_are_each_counted_once_and_copies_across_files_are_reported(
    corpus_run: CorpusRun,
) -> None:
    within = query(
        corpus_run.db,
        "select count(*), sum(BilledCost) from charges where x_source_file = 'duplicate_rows.csv'",
    )
    assert within == [(3, pytest.approx(1.50 + 1.50 + 2.50))]
    reported = query(
        corpus_run.db,
        "select resource_id, copies, files, source_files, billed_cost_in_extra_copies from duplicate_charges "
        "order by resource_id",
    )
    assert reported == [
        ("bom-1", 2, 2, ["bom_utf8.csv", "bom_utf8.csv.gz"], pytest.approx(3.00)),
        ("bom-2", 2, 2, ["bom_utf8.csv", "bom_utf8.csv.gz"], pytest.approx(4.00)),
        ("good-1", 2, 2, ["good.csv", "good_copy.csv"], pytest.approx(10.00)),
        ("good-2", 2, 2, ["good.csv", "good_copy.csv"], pytest.approx(20.00)),
        ("good-3", 2, 2, ["good.csv", "good_copy.csv"], pytest.approx(0.50)),
    ]


def test_mixed_currencies_in_one_billing_account_are_never_summed_together(corpus_run: CorpusRun) -> None:
    totals = query(
        corpus_run.db,
        "select billing_currency, total_billed_cost, charge_count from billing_period_totals "
        "where billing_account_id = '333333333333' order by billing_currency",
    )
    # cur-1 USD 100 + cur-3 'usd' 50 (normalised); cur-2 EUR 200; cur-4 'US$' quarantined
    assert totals == [("EUR", pytest.approx(200.00), 1), ("USD", pytest.approx(150.00), 2)]


def test_a_po_in_another_currency_than_its_charges_is_flagged_never_converted_at_one(
    corpus_run: CorpusRun,
) -> None:
    burn = query(
        corpus_run.db,
        "select po_currency, consumed_amount, threshold_state, error, consumed_billed_cost, billing_currency "
        "from po_burn_latest where po_number = 'PO-2002'",
    )
    # po-8 (128.00 USD) is tagged PO-2002, a EUR PO, and the extract has no USD→EUR rate
    assert burn == [
        (
            "EUR",
            None,
            "fx_missing",
            "no FX rate USD->EUR on or before 2024-09-09",
            pytest.approx(128.00),
            "USD",
        )
    ]


LOOKALIKES = {
    # ResourceId: (PO tag value as delivered, status, reason, PO it resolves to)
    "po-1": ("PO-1001", "valid", "tag", "PO-1001"),
    "po-2": ("\u0420\u041e-1001", "valid", "tag", "\u0420\u041e-1001"),  # Cyrillic: the ERP's own Cyrillic PO
    "po-3": ("PO-\uff11\uff10\uff10\uff11", "invalid", "unknown_po", None),  # full-width digits
    "po-4": ("PO-10\u200b01", "invalid", "unknown_po", None),  # a zero-width space
    "po-5": ("PO-1001'; drop table charges;--", "invalid", "unknown_po", None),
    "po-6": ("PO-1005'; drop table po_headers;--", "valid", "tag", "PO-1005'; drop table po_headers;--"),
    "po-7": ("PO-1004", "invalid", "unknown_po", None),  # the ERP's PO is 'PO-100\u200b4'
    "po-8": ("PO-2002", "valid", "tag", "PO-2002"),
}


def test_po_look_alikes_never_match_the_real_po_and_metacharacters_are_stored_verbatim(
    corpus_run: CorpusRun,
) -> None:
    rows = query(
        corpus_run.db,
        "select ResourceId, x_po_tag_value, x_po_status, x_po_reason, "
        "case when x_po_status = 'valid' then x_po_number end from charges "
        "where x_source_file = 'po_lookalikes.csv'",
    )
    assert {r[0]: r[1:] for r in rows} == LOOKALIKES
    # only po-1 is consumption of the real PO-1001 (plus the malformed_tags.csv rows tagged PO-1001 that landed:
    # tag-1, tag-4, tag-9, tag-11, tag-15, and tags_map.parquet's pq-tag-1)
    consumed = query(corpus_run.db, "select consumed_amount from po_burn_latest where po_number = 'PO-1001'")
    assert consumed == [(pytest.approx(1.00 + 1.00 + 4.00 + 9.00 + 11.00 + 15.00 + 1.00),)]


def test_erp_po_numbers_with_metacharacters_and_look_alikes_are_stored_verbatim(
    corpus_run: CorpusRun,
) -> None:
    books = _books(corpus_run, "erp", "erp/po_headers.csv")
    assert (books["status"], books["rows_read"], books["rows_loaded"], books["rows_quarantined"]) == (
        "landed",
        8,
        7,
        1,
    )
    assert _records(corpus_run, "erp", "erp/po_headers.csv") == [
        (7, "currency", "is_iso4217_currency", "US$")
    ]
    published = query(corpus_run.db, "select po_number, currency from po_headers order by po_number")
    assert sorted(published) == sorted(
        [
            ("PO-1001", "USD"),
            ("PO-2002", "EUR"),
            ("\u0420\u041e-1001", "USD"),
            ("PO-\uff11\uff10\uff10\uff13", "USD"),
            ("PO-100\u200b4", "USD"),
            ("PO-1005'; drop table po_headers;--", "USD"),
            ("PO-1007", "EUR"),
        ]
    )
    tables = {r[0] for r in query(corpus_run.db, "select table_name from information_schema.tables")}
    assert {"charges", "po_headers", "quarantine", "run_files"} <= tables
