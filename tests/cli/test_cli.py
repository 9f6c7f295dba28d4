"""The `finrecon` command: clear config errors with exit code 2, validate publishes nothing, run and sql."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import charge, make_project, po, write_csv
from typer.testing import CliRunner

from finrecon.cli import app

runner = CliRunner()


def project(tmp_path: Path, extra_toml: str = "") -> Path:
    rows = [charge(Tags={"po": "PO-1"}, BilledCost="6.00"), charge(BilledCost="2.00")]
    return make_project(tmp_path, {"a.csv": rows}, [po("PO-1", total_amount="10.00")], extra_toml=extra_toml)


def without_billed_cost() -> dict[str, object]:
    row = charge()
    del row["BilledCost"]
    return row


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda text: text + "\n[report]\ncolour = 'blue'\n", "report.colour: unknown key"),
        (lambda text: text.replace("[tags]", "[tags]\npo_keys = 'po'"), "tags.po_keys"),
        (
            lambda text: text.replace('path = "focus"', 'path = "nowhere"'),
            "sources[0].path: path does not exist",
        ),
        (
            lambda text: text.replace("erp/po_headers.csv", "erp/missing.csv"),
            "erp.po_headers: path does not exist",
        ),
        (lambda text: text + "\n[alerts]\nburn_thresholds = 'high'\n", "alerts.burn_thresholds"),
        (lambda text: text + "\n[[", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_message_and_exit_code_2(tmp_path: Path, mutation, expected: str) -> None:  # type: ignore[no-untyped-def]
    config = project(tmp_path)
    config.write_text(mutation(config.read_text()))
    for command in (["run"], ["validate"], ["sql", "select 1"]):
        result = runner.invoke(app, [*command, "--config", str(config)])
        assert result.exit_code == 2, result.output
        assert expected in " ".join(result.output.split())


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "absent.toml")])
    assert result.exit_code == 2
    assert "config file not found" in result.output


def test_validate_reports_problems_and_publishes_nothing(tmp_path: Path) -> None:
    config = project(tmp_path)
    write_csv(tmp_path / "focus" / "b.csv", [charge(BilledCost="oops"), charge(), charge(), charge()])
    write_csv(tmp_path / "focus" / "c.csv", [without_billed_cost()])
    result = runner.invoke(app, ["validate", "--config", str(config)])
    output = " ".join(result.output.split())
    assert result.exit_code == 1
    assert "required column 'BilledCost' is missing" in output
    assert "b.csv │ 4 │ 3 │ 1" in output  # rows, valid, quarantined
    assert not (tmp_path / "out" / "finops.duckdb").exists()
    assert not (tmp_path / "out" / "lake").exists()


@pytest.mark.usefixtures("prefect_harness")
def test_run_prints_the_summary_then_sql_queries_the_publication(tmp_path: Path) -> None:
    config = project(tmp_path)
    result = runner.invoke(app, ["run", "--config", str(config), "--as-of", "2024-09-01"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "PO coverage by provider" in output and "POs burning fastest" in output
    assert "rows read 2 = loaded 2 + quarantined 0" in output
    # PO-1 consumed 6.00 of 10.00 = 60.0 %, past the 50 % threshold
    assert "PO-1" in output and "60.0%" in output

    result = runner.invoke(
        app, ["sql", "--config", str(config), "select po_number, threshold_state, as_of from po_burn"]
    )
    assert result.exit_code == 0
    assert "PO-1 │ 50 │ 2024-09-01" in " ".join(result.output.split())


def test_bad_as_of_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--config", str(project(tmp_path)), "--as-of", "30/09/2024"])
    assert result.exit_code == 2
    assert "not a date" in result.output


@pytest.mark.usefixtures("prefect_harness")
def test_run_with_a_failed_file_publishes_the_rest_and_exits_1(tmp_path: Path) -> None:
    config = project(tmp_path)
    write_csv(tmp_path / "focus" / "c.csv", [without_billed_cost()])
    result = runner.invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 1
    assert "required column 'BilledCost' is missing" in " ".join(result.output.split())
    assert (tmp_path / "out" / "finops.duckdb").exists()
