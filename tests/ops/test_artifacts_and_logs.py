"""Each published run leaves Prefect artifacts (untagged top list, open alerts) and logs that carry its run id.

Read back from the Prefect test harness's server through the Prefect client, as the engineer on call would see
them in the UI; the JSON log lines are the ones `FINRECON_LOG_FORMAT=json` writes to stderr.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from support import charge, make_project, po

from finrecon.core import logs

pytestmark = pytest.mark.usefixtures("prefect_harness")

AS_OF = date(2024, 9, 30)


def cost(day: str, amount: str, **values: Any) -> dict[str, Any]:
    return charge(day, BilledCost=amount, EffectiveCost=amount, **values)


FILES = {
    "sep.csv": [
        cost("2024-09-10", "80.00", ResourceId="i-0001", Tags={"po": "PO-A"}),  # 80 / 100 = 80 % of PO-A
        cost("2024-09-11", "20.00", ResourceId="i-0002"),  # untagged
        cost("2024-09-12", "10.00", ResourceId="i-0002"),  # untagged: i-0002 has 20.00 + 10.00 = 30.00
        cost("2024-09-12", "5.00", ResourceId="i-0003", Tags={"po": "PO-404"}),  # a PO the ERP does not know
    ]
}
RULES = '[alerts]\n[[alerts.rules]]\nkind = "po_burn"\n'  # only the burn rule: 50 % info, 80 % warning


def _artifacts(flow_run_id: UUID) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a.data for a in found}


def _table(data: Any) -> list[dict[str, Any]]:
    return json.loads(data) if isinstance(data, str) else data


def test_run_artifacts_and_json_logs_carry_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from finrecon.flows.nightly import nightly

    config = make_project(
        tmp_path, FILES, [po("PO-A", vendor_id="V-1", total_amount="100.00")], extra_toml=RULES
    )
    monkeypatch.setenv(logs.LOG_FORMAT_ENV, "json")
    try:
        state = nightly(config_path=str(config), as_of=AS_OF, return_state=True)
        outcome = state.result()
    finally:
        logs.uninstall_json()
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None

    artifacts = _artifacts(flow_run_id)
    assert {"finrecon-nightly-summary", "finrecon-untagged-top", "finrecon-open-alerts"} <= set(artifacts)
    untagged = _table(artifacts["finrecon-untagged-top"])
    assert [(r["rank"], r["resource_id"], r["po_status"], r["po_reason"], r["po_tag_value"], r["effective_cost"])
            for r in untagged] == [
        (1, "i-0002", "untagged", "no_po_tag", None, 30.0),  # 20.00 + 10.00
        (2, "i-0003", "invalid", "unknown_po", "PO-404", 5.0),
    ]  # fmt: skip
    alerts = _table(artifacts["finrecon-open-alerts"])
    # PO-A at 80.00 / 100.00 = 0.8 crosses 0.5 and 0.8: one open alert, at 0.8 (warning); 0.5 is superseded
    assert [(r["severity"], r["alert_id"], r["po_number"]) for r in alerts] == [
        ("warning", "po_burn:PO-A:V-1:0.8#1", "PO-A"),
    ]

    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert lines, "no JSON log lines on stderr"
    started = [line for line in lines if line["message"] == f"run {outcome.run_id} starting"]
    assert len(started) == 1
    assert started[0]["run_id"] == outcome.run_id
    assert started[0]["flow_run_id"] == str(flow_run_id)
    assert {"ts", "level", "logger"} <= set(started[0])
    # a task's log, from a worker thread, carries the run id too
    landed = [line for line in lines if line.get("task_run_name", "").startswith("land-file")]
    assert landed and all(line["run_id"] == outcome.run_id for line in landed)
    assert all(
        line["run_id"] == outcome.run_id for line in lines if line.get("flow_run_id") == str(flow_run_id)
    )


def test_json_line_of_a_record_outside_any_run() -> None:
    import contextvars
    import logging

    def format_fresh() -> dict[str, Any]:
        record = logging.LogRecord("finrecon.test", logging.INFO, __file__, 1, "hello %s", ("there",), None)
        assert logs.RunIdFilter().filter(record)
        return dict(json.loads(logs.JsonLinesFormatter().format(record)))

    line = contextvars.Context().run(format_fresh)  # a context no run was bound in
    assert line["message"] == "hello there"
    assert line["logger"] == "finrecon.test"
    assert line["level"] == "INFO"
    assert line["run_id"] is None
