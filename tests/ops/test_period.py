"""`finrecon run --period YYYY-MM`: every input of that billing period is landed again, the rest stays as it is,
and the publication that follows has the same figures (nothing changed in the files)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support import charge, make_project, po, query, run_flow
from typer.testing import CliRunner

from finrecon.cli import app
from finrecon.connectors.aws_cur import ManifestRef
from finrecon.connectors.azure_exports import MonthRef
from finrecon.models.config import AwsCurSource, AzureExportSource, FocusFilesSource, GcpBigQuerySource
from finrecon.warehouse.landing import Fingerprint
from finrecon.warehouse.period import check_period, rerun_period
from finrecon.warehouse.run import PlannedFile

AS_OF = date(2024, 9, 30)


def cost(day: str, amount: str, **values: Any) -> dict[str, Any]:
    return charge(day, BilledCost=amount, EffectiveCost=amount, **values)


FILES = {
    "aug.csv": [cost("2024-08-20", "40.00", Tags={"po": "PO-1"}), cost("2024-08-21", "2.50")],
    "sep.csv": [cost("2024-09-10", "10.00", Tags={"po": "PO-1"}), cost("2024-09-11", "7.25")],
}


def _run_files(database: Path, run_id: str) -> list[tuple[Any, ...]]:
    return query(
        database,
        "select file_path, status from run_files where run_id = ? and source <> 'erp' order by file_path",
        [run_id],
    )


def _figures(database: Path) -> list[tuple[Any, ...]]:
    return query(
        database,
        "select x_billing_period, x_po_status, sum(EffectiveCost), count(*) from charges group by all order by all",
    )


@pytest.mark.usefixtures("prefect_harness")
def test_rerun_of_a_period_relands_its_files_and_publishes_the_same_figures(tmp_path: Path) -> None:
    config = make_project(tmp_path, FILES, [po("PO-1")])
    first = run_flow(config, as_of=AS_OF)
    expected = [
        ("2024-08", "untagged", 2.50, 1),
        ("2024-08", "valid", 40.00, 1),
        ("2024-09", "untagged", 7.25, 1),
        ("2024-09", "valid", 10.00, 1),
    ]
    assert _figures(first.published_path) == expected

    from finrecon.flows.nightly import nightly

    rerun = nightly(config_path=str(config), as_of=AS_OF, period="2024-09")
    assert not rerun.unchanged  # a rerun republishes even though no file changed
    assert rerun.run_id != first.run_id
    # sep.csv has its rows in 2024-09: landed again; aug.csv stands
    assert _run_files(rerun.published_path, rerun.run_id) == [("aug.csv", "unchanged"), ("sep.csv", "landed")]
    assert _figures(rerun.published_path) == expected
    # same rows, same costs: nothing recorded as a restatement (in the state file, nor in the published history)
    assert query(tmp_path / "out" / "state.duckdb", "select count(*) from restatements")[0][0] == 0
    assert (
        query(rerun.published_path, "select count(*) from billing_period_history where restated")[0][0] == 0
    )

    # the next ordinary night has nothing new
    assert run_flow(config, as_of=AS_OF).unchanged


def test_period_must_be_year_and_month(tmp_path: Path) -> None:
    assert check_period(" 2026-09 ") == "2026-09"
    for bad in ("2026-9", "2026-13", "202609", "2026-09-01"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            check_period(bad)
    config = make_project(tmp_path, FILES, [po("PO-1")])
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--period", "2026-13"])
    assert result.exit_code == 2
    assert "--period: '2026-13' is not a billing period; write it as YYYY-MM" in result.output


class _NoLake:
    """A state file whose lake has no parts (only FOCUS files are matched through their parts)."""

    def rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        return []


def _planned(source: Any, key: str, **where: Any) -> PlannedFile:
    return PlannedFile(source, Path("."), key, key, Fingerprint(0, 0, "x"), "sig", False, **where)


def test_remote_inputs_are_matched_by_their_own_period() -> None:
    aws = AwsCurSource(kind="aws_cur", export_type="cur2", bucket="bucket", export_name="cur")
    gcp = GcpBigQuerySource(kind="gcp_bigquery", project="p", dataset="d", table="t")
    azure = AzureExportSource.model_construct(kind="azure_export", name="azure")
    focus = FocusFilesSource(kind="focus_files", path=Path("focus"))
    planned = [
        _planned(aws, "aws-2024-09", manifest=ManifestRef("2024-09", "m.json", "e1")),
        _planned(aws, "aws-2024-08", manifest=ManifestRef("2024-08", "m.json", "e2")),
        _planned(aws, "aws-standing"),  # a period no longer listed: nothing to fetch it from
        _planned(gcp, "gcp-202409", invoice_month="202409"),
        _planned(gcp, "gcp-202410", invoice_month="202410"),
        _planned(azure, "azure-2024-09", azure_month=MonthRef("2024-09", ())),
        _planned(focus, "focus-file"),  # no lake part in 2024-09
    ]
    marked, count = rerun_period(_NoLake(), planned, "2024-09")  # type: ignore[arg-type]
    assert count == 3
    assert [p.file_key for p in marked if p.needs_landing] == ["aws-2024-09", "gcp-202409", "azure-2024-09"]
