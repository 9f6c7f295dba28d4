"""`finrecon alerts` lists open alerts; `--dry-run` evaluates the rules on the publication and records nothing."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from support import charge, make_project, po, query, run_flow
from typer.testing import CliRunner

from finrecon.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")

runner = CliRunner()


def words(text: str) -> str:
    return " ".join(text.split())


def test_alerts_lists_open_alerts_and_dry_run_shows_what_a_changed_rule_would_do(tmp_path: Path) -> None:
    # 60.00 of 100.00 = 60 %: the default thresholds open the 50 % alert
    rows = [charge("2024-09-10", Tags={"po": "PO-1"}, BilledCost="60.00", EffectiveCost="60.00")]
    config = make_project(tmp_path, {"a.csv": rows}, [po("PO-1", vendor_id="V-1")],
                          extra_toml='[alerts]\n[[alerts.rules]]\nkind = "po_burn"\n')  # fmt: skip
    run_flow(config, as_of=date(2024, 9, 30))

    listed = runner.invoke(app, ["alerts", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert "info │ po_burn:PO-1:V-1:0.5#1 │ 2024-09-30 │ 2024-09-30 │ 0.6 │ 0.5" in words(listed.output)

    same = runner.invoke(app, ["alerts", "--dry-run", "--config", str(config)])
    assert same.exit_code == 0, same.output
    assert "0 would fire, 0 would resolve, 1 stay open" in words(same.output)

    # a rule changed to a single 60 % threshold: 60 % ≥ 60 % would fire (to the log), the 50 % alert would resolve
    text = config.read_text().replace('kind = "po_burn"', 'kind = "po_burn"\nthresholds = [0.6]')
    config.write_text(text)
    changed = runner.invoke(app, ["alerts", "--dry-run", "--config", str(config)])
    assert changed.exit_code == 0, changed.output
    out = words(changed.output)
    assert "1 would fire, 1 would resolve, 0 stay open" in out
    assert "info │ po_burn:PO-1:V-1:0.6 │ log │ PO-1 crossed 60% of its committed amount" in out
    assert "info │ po_burn:PO-1:V-1:0.5#1 │ log │ PO-1 crossed 50% of its committed amount" in out
    # nothing was recorded or sent: one open alert and its one notification, as before
    state = tmp_path / "out" / "state.duckdb"
    assert query(state, "select alert_id, status from alerts") == [("po_burn:PO-1:V-1:0.5#1", "open")]
    assert query(state, "select event, status from alert_notifications") == [("fired", "sent")]


def test_dry_run_without_a_publication_exits_2(tmp_path: Path) -> None:
    config = make_project(tmp_path, {"a.csv": [charge()]}, [po("PO-1")])
    result = runner.invoke(app, ["alerts", "--dry-run", "--config", str(config)])
    assert result.exit_code == 2
    assert "no published database" in words(result.output)
