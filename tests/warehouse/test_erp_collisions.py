"""Two ERP PO numbers that normalise alike are both quarantined: a charge tagged with either is not guessed."""

from __future__ import annotations

from pathlib import Path

from support import make_project, po

from finrecon.models.config import load_config
from finrecon.warehouse.erp_landing import load_erp


def test_po_numbers_that_normalise_alike_are_quarantined(tmp_path: Path) -> None:
    # with the default prefix "PO": "PO-1" = "po 1" = "1" → PO1; "PO-2" stands alone
    pos = [po("PO-1"), po("PO-2"), po("po 1"), po("1"), po("PO-3")]
    # 3 of 5 quarantined would hold the extract back (validation.max_failure_ratio): not what is tested here
    lenient = "[validation]\nmax_failure_ratio = 1.0"
    config = load_config(make_project(tmp_path, {"none.csv": []}, pos, extra_toml=lenient))
    erp = load_erp(config)
    assert sorted(erp.frames["po_headers"].get_column("po_number").to_list()) == ["PO-2", "PO-3"]
    headers = next(landing for landing in erp.landings if landing.file_path.endswith("po_headers.csv"))
    assert headers.failures.drop("source_file").rows() == [
        (1, "po_number", "po_number_unique_after_normalisation", "PO-1"),
        (3, "po_number", "po_number_unique_after_normalisation", "po 1"),
        (4, "po_number", "po_number_unique_after_normalisation", "1"),
    ]
    books = headers.books
    assert (books.rows_read, books.rows_loaded, books.rows_quarantined) == (5, 2, 3)


def test_without_a_prefix_digits_stay_distinct(tmp_path: Path) -> None:
    config = load_config(
        make_project(tmp_path, {"none.csv": []}, [po("PO-1"), po("1")], po_default_prefix=None)
    )
    erp = load_erp(config)
    assert sorted(erp.frames["po_headers"].get_column("po_number").to_list()) == ["1", "PO-1"]
