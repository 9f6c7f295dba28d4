"""`split_valid` with the charge and ERP schemas on small in-memory frames: which rows are quarantined, and
with which row number, column, check and raw value."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import pytest

from finrecon.models import erp
from finrecon.models.charges import charge_schema, missing_required, prepare
from finrecon.models.quarantine import ROW_COLUMN, split_valid


def _frame(columns: dict[str, list[Any]], first_row: int = 1) -> pl.DataFrame:
    """All-text frame with a 1-based source row number (possibly offset, to catch position/row mix-ups)."""
    height = len(next(iter(columns.values())))
    frame = pl.DataFrame(columns, schema={name: pl.Utf8 for name in columns})
    rows = pl.Series(ROW_COLUMN, range(first_row, first_row + height), dtype=pl.Int64)
    return frame.with_columns(rows)


def _failures(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    return sorted(frame.select("row_number", "column_name", "check_name", "raw_value").rows())


def _charges(n: int, **overrides: list[str | None]) -> dict[str, list[str | None]]:
    base: dict[str, list[str | None]] = {
        "BilledCost": ["1.00"] * n,
        "EffectiveCost": ["1.00"] * n,
        "BillingCurrency": ["USD"] * n,
        "ChargePeriodStart": ["2024-09-01T00:00:00Z"] * n,
        "ChargeCategory": ["Usage"] * n,
        "ProviderName": ["AWS"] * n,
        "BillingAccountId": ["111"] * n,
        "Tags": [None] * n,
    }
    base.update(overrides)
    return base


# --- charges ------------------------------------------------------------------------------------------------


def test_clean_charges_are_all_valid() -> None:
    frame = _frame(
        _charges(3, Tags=['{"po": "PO-1"}', '"a": "b"', None], BillingCurrency=["usd", "EUR", "JPY"])
    )
    split = split_valid(prepare(frame), charge_schema(frame.columns))
    assert split.valid.get_column(ROW_COLUMN).to_list() == [1, 2, 3]
    assert split.quarantined_rows.height == 0
    assert split.failures.height == 0


def test_charge_row_failures_name_row_column_check_and_raw_value() -> None:
    columns = _charges(
        8,
        BilledCost=["1.50", "12,5x", "2", "3", None, "4", "abc", "0.25"],
        ChargePeriodStart=[
            "2024-09-01",
            "not-a-date",
            "2024-09-01",
            "2024-09-01T00:00:00+02:00",
            "2024-09-01",
            "2024-09-01",
            "2024-09-01",
            "2024-09-01 12:00:00",
        ],
        BillingCurrency=["USD", "USD", "XXQ", "EUR", "EUR", "usd", "QQQ", "GBP"],
        ChargeCategory=["Usage", "usage", "Usage", "Bogus", "Usage", "Credit", "Usage", "tax"],
        Tags=['{"a": "b"}', None, None, None, None, "{bad", None, '"k": "v"'],
    )
    frame = _frame(columns, first_row=11)
    split = split_valid(prepare(frame), charge_schema(frame.columns))

    assert _failures(split.failures) == [
        (12, "BilledCost", "is_decimal", "12,5x"),
        (12, "ChargePeriodStart", "is_timestamp", "not-a-date"),
        (13, "BillingCurrency", "is_iso4217_currency", "XXQ"),
        (14, "ChargeCategory", "is_focus_ChargeCategory", "Bogus"),
        (15, "BilledCost", "not_nullable", None),
        (16, "Tags", "is_json_object", "{bad"),
        (17, "BilledCost", "is_decimal", "abc"),
        (17, "BillingCurrency", "is_iso4217_currency", "QQQ"),
    ]
    # a row with two failures is one quarantined row
    assert split.quarantined_rows.get_column(ROW_COLUMN).to_list() == [12, 13, 14, 15, 16, 17]
    assert split.valid.get_column(ROW_COLUMN).to_list() == [11, 18]
    # valid rows are kept as delivered (still text)
    assert split.valid.get_column("BilledCost").to_list() == ["1.50", "0.25"]
    assert split.valid.get_column("ChargeCategory").to_list() == ["Usage", "tax"]
    # nothing is dropped: every input row is valid or quarantined
    assert split.valid.height + split.quarantined_rows.height == frame.height


def test_empty_required_value_is_not_nullable_for_each_required_column() -> None:
    required = ["EffectiveCost", "BillingCurrency", "ChargePeriodStart", "ChargeCategory", "ProviderName"]
    columns = _charges(len(required) + 1)
    for row, name in enumerate(required, start=1):
        columns[name] = list(columns[name])
        columns[name][row] = None
    frame = _frame(columns)
    split = split_valid(prepare(frame), charge_schema(frame.columns))
    assert _failures(split.failures) == sorted(
        (row, name, "not_nullable", None) for row, name in enumerate(required, start=2)
    )
    assert split.valid.get_column(ROW_COLUMN).to_list() == [1]


def test_optional_focus_columns_may_be_null_and_unknown_columns_are_not_checked() -> None:
    columns = _charges(2)
    columns |= {
        "ListCost": [None, "2.5"],
        "PricingCurrency": [None, "EUR"],
        "CommitmentDiscountStatus": [None, "used"],
        "x_Id": ["not a number", None],
    }
    frame = _frame(columns)
    split = split_valid(prepare(frame), charge_schema(frame.columns))
    assert split.failures.height == 0
    assert split.valid.height == 2


def test_optional_focus_columns_are_checked_when_present() -> None:
    columns = _charges(3)
    columns |= {
        "ListCost": ["1", "1..2", "1"],
        "PricingCurrency": ["EUR", "EUR", "EURO"],
        "CommitmentDiscountStatus": ["Used", "Unused", "Partly"],
        "ChargePeriodEnd": ["2024-09-01T01:00:00Z", "2024-09-01T01:00:00Z", "2024-09-31"],
    }
    frame = _frame(columns)
    split = split_valid(prepare(frame), charge_schema(frame.columns))
    assert _failures(split.failures) == [
        (2, "ListCost", "is_decimal", "1..2"),
        (3, "ChargePeriodEnd", "is_timestamp", "2024-09-31"),
        (3, "CommitmentDiscountStatus", "is_focus_CommitmentDiscountStatus", "Partly"),
        (3, "PricingCurrency", "is_iso4217_currency", "EURO"),
    ]
    assert split.valid.get_column(ROW_COLUMN).to_list() == [1]


def test_missing_required_lists_absent_required_columns_in_order() -> None:
    present = ["EffectiveCost", "BillingCurrency", "ChargeCategory", "ProviderName", "BillingAccountId"]
    assert missing_required(present) == ["BilledCost", "ChargePeriodStart"]
    assert missing_required([*present, "BilledCost", "ChargePeriodStart"]) == []


# --- ERP: PO headers ----------------------------------------------------------------------------------------


def _headers(rows: list[dict[str, str | None]]) -> pl.DataFrame:
    base = {
        "po_number": "PO-0",
        "vendor_id": "V-1",
        "vendor_name": "Vendor",
        "currency": "USD",
        "total_amount": "100.00",
        "status": "open",
        "valid_from": "2024-01-01",
        "valid_to": "2024-12-31",
    }
    full = [base | row for row in rows]
    return _frame({name: [r[name] for r in full] for name in base})


def test_po_headers_row_failures() -> None:
    frame = _headers(
        [
            {"po_number": "PO-1"},
            {"po_number": "PO-2", "total_amount": "-0.01"},
            {"po_number": "PO-3", "currency": "XXQ"},
            {"po_number": "PO-4", "status": "Frozen"},
            {"po_number": "PO-5", "total_amount": "1O0"},
            {"po_number": "PO-6", "valid_to": "2024-31-12"},
            {"po_number": "PO-7", "status": "Finally_Closed", "currency": "eur", "valid_from": "20240101"},
            {"po_number": "PO-8", "status": "APPROVED", "total_amount": "0"},
            {"po_number": "PO-9", "vendor_name": None},
        ]
    )
    split = split_valid(frame, erp.po_headers_schema(erp.status_map({})))
    assert _failures(split.failures) == [
        (2, "total_amount", "is_non_negative", "-0.01"),
        (3, "currency", "is_iso4217_currency", "XXQ"),
        (4, "status", "is_known_po_status", "Frozen"),
        (5, "total_amount", "is_decimal", "1O0"),
        (6, "valid_to", "is_date", "2024-31-12"),
        (9, "vendor_name", "not_nullable", None),
    ]
    assert split.valid.get_column("po_number").to_list() == ["PO-1", "PO-7", "PO-8"]


def test_po_headers_status_map_override_makes_a_word_known() -> None:
    frame = _headers([{"po_number": "PO-1", "status": "Frozen"}, {"po_number": "PO-2", "status": "On Hold"}])
    split = split_valid(frame, erp.po_headers_schema(erp.status_map({"frozen": "closed"})))
    assert _failures(split.failures) == [(2, "status", "is_known_po_status", "On Hold")]
    typed = erp.type_po_headers(split.valid, erp.status_map({"frozen": "closed"}))
    assert typed.select("po_number", "status", "erp_status").rows() == [("PO-1", "closed", "Frozen")]


def test_po_headers_valid_from_after_valid_to_is_quarantined() -> None:
    frame = _headers(
        [
            {"po_number": "PO-1"},
            {"po_number": "PO-2", "valid_from": "2024-12-31", "valid_to": "2024-01-01"},
            {"po_number": "PO-3", "valid_from": "2024-06-30", "valid_to": "2024-06-30"},
        ]
    )
    split = split_valid(frame, erp.po_headers_schema(erp.status_map({})))
    assert split.failures.height == 1
    failure = split.failures.row(0, named=True)
    assert failure["row_number"] == 2
    assert failure["check_name"] == "valid_from_not_after_valid_to"
    # the quarantine names a column of the extract (not the schema's name) and carries the offending dates
    assert failure["column_name"] == "valid_from,valid_to"
    assert failure["raw_value"] == "2024-12-31,2024-01-01"
    assert split.valid.get_column("po_number").to_list() == ["PO-1", "PO-3"]


def test_po_headers_duplicate_po_number_quarantines_every_copy() -> None:
    frame = _headers(
        [
            {"po_number": "PO-1", "total_amount": "10"},
            {"po_number": "PO-2"},
            {"po_number": "PO-1", "total_amount": "20"},
        ]
    )
    split = split_valid(frame, erp.po_headers_schema(erp.status_map({})))
    assert _failures(split.failures) == [
        (1, "po_number", "field_uniqueness", "PO-1"),
        (3, "po_number", "field_uniqueness", "PO-1"),
    ]
    assert split.valid.get_column("po_number").to_list() == ["PO-2"]
    assert split.quarantined_rows.get_column(ROW_COLUMN).to_list() == [1, 3]


def test_po_headers_typing_of_valid_rows() -> None:
    frame = _headers(
        [
            {"po_number": "PO-7", "status": "Finally_Closed", "currency": "eur", "valid_from": "20240101"},
            {"po_number": "PO-8", "status": "released", "total_amount": "1234.5"},
        ]
    )
    mapping = erp.status_map({})
    split = split_valid(frame, erp.po_headers_schema(mapping))
    assert split.failures.height == 0
    typed = erp.type_po_headers(split.valid, mapping)
    assert typed.select(
        "po_number", "currency", "total_amount", "status", "valid_from", "po_type"
    ).rows() == [
        ("PO-7", "EUR", 100.0, "closed", date(2024, 1, 1), "standard"),
        ("PO-8", "USD", 1234.5, "open", date(2024, 1, 1), "standard"),
    ]


# --- ERP: FX rates and PO lines -----------------------------------------------------------------------------


def test_fx_rates_non_positive_and_unparseable_rates_are_quarantined() -> None:
    frame = _frame(
        {
            "rate_date": ["2024-09-01", "2024-09-01", "2024-09-02", "20240903", "2024-09-04", "2024-09-05"],
            "from_currency": ["EUR", "GBP", "EUR", "EUR", "EUR", "XXQ"],
            "to_currency": ["USD"] * 6,
            "rate": ["1.1", "0", "-1.05", "1.2", "abc", "1.3"],
        }
    )
    split = split_valid(frame, erp.fx_rates_schema())
    assert _failures(split.failures) == [
        (2, "rate", "is_positive", "0"),
        (3, "rate", "is_positive", "-1.05"),
        (5, "rate", "is_decimal", "abc"),
        (6, "from_currency", "is_iso4217_currency", "XXQ"),
    ]
    assert split.valid.get_column(ROW_COLUMN).to_list() == [1, 4]


def test_po_lines_row_failures() -> None:
    frame = _frame(
        {
            "po_number": ["PO-1", "PO-1", "PO-2", "PO-2", "PO-3"],
            "line_number": ["1", "x", "1", "2", "1"],
            "description": ["a", "b", None, "d", "e"],
            "quantity": ["1", "1", "abc", "2", None],
            "unit_price": ["1", "1", "1", "-2", None],
            "amount": ["1", "1", "1", "-0.01", None],
        }
    )
    split = split_valid(frame, erp.po_lines_schema())
    assert _failures(split.failures) == [
        (2, "line_number", "is_integer", "x"),
        (3, "quantity", "is_decimal", "abc"),
        (4, "amount", "is_non_negative", "-0.01"),
        (4, "unit_price", "is_non_negative", "-2"),
        (5, "amount", "not_nullable", None),
    ]
    assert split.valid.get_column(ROW_COLUMN).to_list() == [1]


def test_po_lines_duplicate_line_quarantines_both_copies() -> None:
    frame = _frame(
        {
            "po_number": ["PO-1", "PO-1", "PO-1"],
            "line_number": ["1", "2", "1"],
            "description": ["a", "b", "c"],
            "quantity": ["1", "1", "1"],
            "unit_price": ["1", "1", "1"],
            "amount": ["1", "1", "1"],
        }
    )
    split = split_valid(frame, erp.po_lines_schema())
    assert sorted(split.failures.get_column("row_number").to_list()) == [1, 3]
    assert set(split.failures.get_column("check_name").to_list()) == {"multiple_fields_uniqueness"}
    assert set(split.failures.get_column("column_name").to_list()) == {"po_number,line_number"}
    assert set(split.failures.get_column("raw_value").to_list()) == {"PO-1,1"}
    assert split.valid.get_column(ROW_COLUMN).to_list() == [2]


@pytest.mark.parametrize("first_row", [1, 100])
def test_row_numbers_come_from_source_rows_not_positions(first_row: int) -> None:
    frame = _frame(_charges(3, BilledCost=["1", "2", "bad"]), first_row=first_row)
    split = split_valid(prepare(frame), charge_schema(frame.columns))
    assert _failures(split.failures) == [(first_row + 2, "BilledCost", "is_decimal", "bad")]


def test_missing_columns_message_names_the_file_and_every_column() -> None:
    from finrecon.models.quarantine import missing_columns_error

    one = missing_columns_error("a.csv", ["BilledCost"])
    assert one.message == "a.csv: required column 'BilledCost' is missing"
    two = missing_columns_error("b.csv", ["BilledCost", "ProviderName"])
    assert two.message == "b.csv: required columns 'BilledCost', 'ProviderName' are missing"
    assert two.record().row(0, named=True) == {
        "row_number": None,
        "column_name": "BilledCost,ProviderName",
        "check_name": "column_present",
        "raw_value": None,
        "source_file": None,
    }
