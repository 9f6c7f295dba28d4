"""ERP extracts in the ERP's own column names: `[erp.column_map.<table>]` and `[erp.column_defaults.<table>]`.

SAP (EKKO/EKPO) and Oracle (PO_HEADERS_ALL) style extracts go through the real flow; the config and file-level
errors are checked on their own. Expected values are the extract's values, read by hand.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import pytest
from support import charge, make_project, query, run_flow, write_csv

from finrecon.models import erp as erp_models
from finrecon.models.config import ConfigError, parse_config
from finrecon.warehouse.erp_landing import ColumnMapping, load_extract

SAP_TOML = """
status_map = { "05" = "open" }

[erp.column_map.po_headers]
EBELN = "po_number"
LIFNR = "vendor_id"
NAME1 = "vendor_name"
WAERS = "currency"
RLWRT = "total_amount"
PROCSTAT = "status"
KDATB = "valid_from"
KDATE = "valid_to"

[erp.column_map.po_lines]
ebeln = "po_number"
EBELP = "line_number"
TXZ01 = "description"
MENGE = "quantity"
NETPR = "unit_price"
NETWR = "amount"
"""

ORACLE_TOML = """
status_map = { "CLOSED FOR INVOICE" = "closed" }

[erp.column_map.po_headers]
SEGMENT1 = "po_number"
TYPE_LOOKUP_CODE = "po_type"
VENDOR_ID = "vendor_id"
CURRENCY_CODE = "currency"
BLANKET_TOTAL_AMOUNT = "total_amount"
START_DATE = "valid_from"
END_DATE = "valid_to"
CLOSED_CODE = "status"

[erp.column_defaults.po_headers]
vendor_name = "Oracle supplier (see vendor_id)"
valid_from = "2000-01-01"
"""


@pytest.mark.usefixtures("prefect_harness")
def test_sap_ekko_ekpo_extract_loads_through_the_column_map(tmp_path: Path) -> None:
    ekko = [
        {"EBELN": "4500000001", "BSART": "NB", "LIFNR": "0000100001", "NAME1": "Cloud Reseller GmbH",
         "WAERS": "EUR", "RLWRT": "1000.00", "PROCSTAT": "05", "KDATB": "20240101", "KDATE": "20241231"},
    ]  # fmt: skip
    charges = [charge("2024-06-01", BilledCost="100.00", BillingCurrency="EUR", Tags={"po": "4500000001"})]
    config = make_project(tmp_path, {"a.csv": charges}, ekko, erp_toml=SAP_TOML)
    ekpo = [
        {"EBELN": "4500000001", "EBELP": "00010", "TXZ01": "Cloud compute", "MENGE": "7", "NETPR": "100.00",
         "NETWR": "700.00"},
        {"EBELN": "4500000001", "EBELP": "00020", "TXZ01": "Support", "MENGE": "1", "NETPR": "300.00",
         "NETWR": "300.00"},
    ]  # fmt: skip
    write_csv(tmp_path / "erp" / "po_lines.csv", ekpo)
    published = run_flow(config, as_of=date(2024, 6, 30)).published_path

    headers = query(
        published,
        "select po_number, vendor_id, vendor_name, currency, total_amount, status, erp_status, valid_from, "
        "valid_to, po_type from po_headers",
    )
    # SAP's compact dates read as dates, PROCSTAT 05 through erp.status_map, the type defaults to standard
    assert headers == [
        ("4500000001", "0000100001", "Cloud Reseller GmbH", "EUR", 1000.0, "open", "05", date(2024, 1, 1),
         date(2024, 12, 31), "standard"),
    ]  # fmt: skip
    lines = query(published, "select po_number, line_number, description, amount from po_lines order by 2")
    assert lines == [("4500000001", 10, "Cloud compute", 700.0), ("4500000001", 20, "Support", 300.0)]
    # the all-digit tag and EBELN both normalise to PO4500000001: 100 EUR of 1000 EUR consumed
    burn = query(published, "select po_number, consumed_amount, consumed_ratio from po_burn")
    assert burn == [("4500000001", 100.0, 0.1)]
    assert query(published, "select count(*) from quarantine") == [(0,)]


@pytest.mark.usefixtures("prefect_harness")
def test_oracle_po_headers_all_extract_with_defaults(tmp_path: Path) -> None:
    headers_all = [
        {"PO_HEADER_ID": "1", "SEGMENT1": "10023", "TYPE_LOOKUP_CODE": "BLANKET", "VENDOR_ID": "5001",
         "CURRENCY_CODE": "USD", "BLANKET_TOTAL_AMOUNT": "500.00", "START_DATE": "2024-01-01 00:00:00",
         "END_DATE": "2024-12-31 00:00:00", "CLOSED_CODE": "OPEN"},
        {"PO_HEADER_ID": "2", "SEGMENT1": "10024", "TYPE_LOOKUP_CODE": "STANDARD", "VENDOR_ID": "5002",
         "CURRENCY_CODE": "USD", "BLANKET_TOTAL_AMOUNT": "200.00", "START_DATE": None,
         "END_DATE": "2025-12-31 00:00:00", "CLOSED_CODE": "CLOSED FOR INVOICE"},
    ]  # fmt: skip
    charges = [charge("2024-06-01", BilledCost="50.00", Tags={"po": "10023"})]
    config = make_project(tmp_path, {"a.csv": charges}, headers_all, erp_toml=ORACLE_TOML)
    published = run_flow(config, as_of=date(2024, 6, 30)).published_path

    headers = query(
        published,
        "select po_number, po_type, vendor_id, vendor_name, total_amount, status, erp_status, valid_from, "
        "valid_to from po_headers order by po_number",
    )
    # vendor_name is not in PO_HEADERS_ALL: the configured constant; the empty START_DATE takes its default
    assert headers == [
        ("10023", "blanket", "5001", "Oracle supplier (see vendor_id)", 500.0, "open", "OPEN", date(2024, 1, 1),
         date(2024, 12, 31)),
        ("10024", "standard", "5002", "Oracle supplier (see vendor_id)", 200.0, "closed", "CLOSED FOR INVOICE",
         date(2000, 1, 1), date(2025, 12, 31)),
    ]  # fmt: skip
    # 50 of the blanket's 500 ceiling: 0.1
    blanket = query(published, "select po_number, ceiling_amount, total_consumed_amount, consumed_ratio "
                               "from blanket_po_releases")  # fmt: skip
    assert blanket == [("10023", 500.0, 50.0, 0.1)]


def _config(tmp_path: Path, erp_lines: str) -> dict:
    write_csv(tmp_path / "po.csv", [{"EBELN": "1"}])
    return tomllib.loads(
        f'[[sources]]\nkind = "focus_files"\npath = "."\n\n[erp]\npo_headers = "po.csv"\n{erp_lines}'
    )


def test_a_mapped_column_must_be_canonical(tmp_path: Path) -> None:
    raw = _config(tmp_path, '[erp.column_map.po_headers]\nEBELN = "po_numbr"\n')
    with pytest.raises(
        ConfigError, match=r"erp\.column_map\.po_headers: 'po_numbr' is not a column of po_headers"
    ):
        parse_config(raw, tmp_path, "t.toml")
    raw = _config(tmp_path, '[erp.column_defaults.po_lines]\nvendor_name = "x"\n')
    with pytest.raises(ConfigError, match=r"erp\.column_defaults\.po_lines: 'vendor_name' is not a column"):
        parse_config(raw, tmp_path, "t.toml")


def test_a_column_map_names_known_tables_and_one_source_per_column(tmp_path: Path) -> None:
    raw = _config(tmp_path, '[erp.column_map.po_header]\nEBELN = "po_number"\n')
    with pytest.raises(ConfigError, match="unknown ERP table 'po_header'"):
        parse_config(raw, tmp_path, "t.toml")
    raw = _config(tmp_path, '[erp.column_map.po_headers]\nEBELN = "po_number"\nBELNR = "po_number"\n')
    with pytest.raises(ConfigError, match="several source columns map to 'po_number'"):
        parse_config(raw, tmp_path, "t.toml")
    config = parse_config(
        _config(tmp_path, '[erp.column_map.po_headers]\n" EBELN " = "po_number"\n'), tmp_path, "t"
    )
    assert config.erp.column_map == {"po_headers": {"ebeln": "po_number"}}  # as headers are read


def _load(path: Path, mapping: ColumnMapping) -> tuple[str, str | None]:
    schema = erp_models.po_lines_schema()
    extract = load_extract("po_lines", path, "lines.csv", schema, erp_models.type_po_lines, columns=mapping)
    return extract.landing.status, extract.landing.error


def test_a_file_that_lacks_the_mapped_column_or_delivers_both_fails_naming_it(tmp_path: Path) -> None:
    mapping = ColumnMapping({"ebeln": "po_number", "ebelp": "line_number", "netwr": "amount"})
    rest = {"description": None, "quantity": None, "unit_price": None}  # canonical names mix with mapped ones
    lacking = write_csv(tmp_path / "lacking.csv", [{"EBELP": "10", "NETWR": "1.00", **rest}])
    # the file must carry EBELN (mapped to po_number): the message names the column the file lacks
    assert _load(lacking, mapping) == ("failed", "lines.csv: required column 'ebeln' is missing")
    both = write_csv(
        tmp_path / "both.csv", [{"EBELN": "1", "po_number": "2", "EBELP": "10", "NETWR": "1.00", **rest}]
    )
    assert _load(both, mapping) == (
        "failed",
        "lines.csv: column 'po_number' is delivered and also mapped from 'ebeln'",
    )
