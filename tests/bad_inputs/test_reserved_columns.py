"""A delivered FOCUS column may not take the name of a column the pipeline derives (it would shadow it in the
charges view, or spoof lineage): the reserved list must cover every `x_` column the models derive."""

from __future__ import annotations

import re
from pathlib import Path

import finrecon
from finrecon.models.focus import RESERVED_COLUMNS

SQL = Path(finrecon.__file__).parent / "sql"


def test_every_x_column_the_models_derive_is_reserved() -> None:
    # provider staging (AWS, Azure, GCP) maps its export *into* landed extension columns, which a FOCUS file may
    # carry too; everything else that derives an `x_` column does so on top of the landed charges
    models = [
        *SQL.glob("intermediate/*.sql"),
        *SQL.glob("marts/*.sql"),
        SQL / "staging" / "stg_focus__charges.sql",
    ]
    derived = {
        name.lower()
        for path in models
        for name in re.findall(r"\bas\s+(x_\w+)", path.read_text(encoding="utf-8"), flags=re.IGNORECASE)
    }
    assert "x_po_number" in derived  # the scan itself works
    assert derived <= RESERVED_COLUMNS, sorted(derived - RESERVED_COLUMNS)
    lineage = {"x_source", "x_source_file", "x_source_row", "x_run_id"}
    assert lineage <= RESERVED_COLUMNS
