"""docs/data-dictionary.md is generated: it must equal what `finrecon docs` writes from the bundled publication,
every published column must have a meaning, and the published file carries the same text as COMMENT ON."""

from __future__ import annotations

from pathlib import Path

from support import query

from finrecon.warehouse.dictionary import OUTPUT, REGENERATE, generate


def test_committed_dictionary_is_the_generated_one(published: Path) -> None:
    text, problems = generate(published)
    assert problems == [], "fix finrecon/sql/dictionary/tables.toml:\n" + "\n".join(problems)
    committed = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
    assert committed == text, f"docs/data-dictionary.md is out of date: regenerate it with `{REGENERATE}`"


def test_every_table_and_column_of_the_dictionary_is_in_the_markdown(published: Path) -> None:
    text = OUTPUT.read_text(encoding="utf-8")
    for table, column in query(
        published, "select table_name, column_name from duckdb_columns() where database_name = 'finops'"
    ):
        assert f"\n## {table}\n" in text
        assert f"`{column}`" in text.split(f"\n## {table}\n", 1)[1].split("\n## ", 1)[0] or (
            table.endswith("_latest") or table in ("lake_charges", "int_purchase_orders")
        ), f"{table}.{column}"


def test_tables_views_and_columns_carry_comments(published: Path) -> None:
    tables = dict(
        query(published, "select table_name, comment from duckdb_tables() where database_name = 'finops'")
    )
    views = dict(
        query(published, "select view_name, comment from duckdb_views() where database_name = 'finops'")
    )
    # the grain sentence of finrecon/sql/marts/po_burn.sql, then the dictionary's description
    assert tables["po_burn"].startswith("Grain: one row per ERP purchase order for this run's as_of")
    assert "History" in tables["po_burn"]
    assert tables["runs"].startswith("Grain: one pipeline run")  # a state table: grain from tables.toml
    assert views["charges"].startswith("Grain: one charge row as landed")
    assert views["po_burn_latest"].startswith("Grain: one row per ERP PO")
    uncommented = query(
        published,
        "select table_name, column_name from duckdb_columns() where database_name = 'finops' and comment is null",
    )
    assert uncommented == []
    columns = dict(
        query(published, "select column_name, comment from duckdb_columns() where table_name = 'po_burn'")
    )
    # meaning from tables.toml, unit derived from the type (DOUBLE money of po_burn: the PO currency)
    assert (
        columns["remaining_amount"] == "committed_amount − consumed_amount [money, PO currency (po_currency)]"
    )
    assert columns["consumed_ratio"].endswith("[ratio, 1 = 100 %]")
    assert columns["committed_amount_reporting"].endswith("[money, reporting currency (reporting_currency)]")
    charges = dict(
        query(published, "select column_name, comment from duckdb_columns() where table_name = 'charges'")
    )
    assert charges["BilledCost"].startswith("FOCUS 1.2 column BilledCost")
    assert charges["x_po_status"] == "valid, invalid or untagged"


def test_latest_views_give_the_newest_version(published: Path) -> None:
    # two runs: as_of 2024-09-15 and 2024-09-30; 10 POs in erp/po_headers.csv (8 + 2 releases)
    assert query(published, "select as_of::varchar, count(*) from po_burn group by 1 order by 1") == [
        ("2024-09-15", 10),
        ("2024-09-30", 10),
    ]
    assert query(published, "select distinct as_of::varchar, count(*) over () from po_burn_latest") == [
        ("2024-09-30", 10)
    ]
    # billing_period_totals is not cut at as_of: the second run moved no figure, so every key has version 1
    # (AWS, Microsoft and Oracle 2024-09, Oracle 2024-10: the row charged 2024-09-30 billed in period 2024-10)
    latest = query(
        published,
        "select billing_period, provider_name, version from billing_period_history_latest order by 1, 2",
    )
    assert latest == [
        ("2024-09", "AWS", 1),
        ("2024-09", "Microsoft", 1),
        ("2024-09", "Oracle", 1),
        ("2024-10", "Oracle", 1),
    ]


def test_docs_command_writes_the_dictionary(published: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from finrecon.cli import app

    target = tmp_path / "data-dictionary.md"
    result = CliRunner().invoke(app, ["docs", "--database", str(published), "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == OUTPUT.read_text(encoding="utf-8")
