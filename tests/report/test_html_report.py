"""`finrecon report`: the HTML page read from a real publication, escaped, and drawn by a real headless Chromium.

One small project, hand-worked (as_of 2024-09-10, report.trailing_days = 10, burn thresholds 50/80/100 %):

  day     resource                        tag           EffectiveCost = BilledCost
  09-01   i-po                            po=PO-1       10
  09-01   i-big                           —             12
  09-02   i-po                            po=PO-1       20
  09-03   i-po                            po=PO-1       10
  09-03   <script>…</script> (XSS)        —              7
  09-04   ri-1 commitment cd-1 Used       —              3
  09-04   ri-1 commitment cd-1 Unused     —              1
  09-04   a row with BilledCost "abc"                    (quarantined: is_decimal)
  09-05   i-eur                           po=PO-2        5   (PO-2 is in EUR and there is no USD→EUR rate)

PO-1 (USD, committed 100, valid to 2024-12-31, vendor name an <img onerror> payload): consumed 10 + 20 + 10 = 40,
remaining 60; burn rate = 40 ÷ 10 = 4/day (all three days lie in 09-01 … 09-10); exhaustion 60 ÷ 4 = 15 days
after as_of = 2024-09-25. PO-2 cannot be measured (no FX rate): listed, with no chart.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from report.chromium import chromium_binary, open_file
from support import charge, make_project, po, query, run_flow
from typer.testing import CliRunner

from finrecon.cli import app

pytestmark = pytest.mark.usefixtures("prefect_harness")

XSS_RESOURCE = "<script>document.body.dataset.pwned='script'</script>"
XSS_VENDOR = "<img src=x onerror=\"document.body.dataset.pwned='img'\">"


def _project(tmp_path: Path) -> Path:
    rows = [
        charge("2024-09-01", ResourceId="i-po", BilledCost="10", EffectiveCost="10", Tags={"po": "PO-1"}),
        charge("2024-09-01", ResourceId="i-big", BilledCost="12", EffectiveCost="12"),
        charge("2024-09-02", ResourceId="i-po", BilledCost="20", EffectiveCost="20", Tags={"po": "PO-1"}),
        charge("2024-09-03", ResourceId="i-po", BilledCost="10", EffectiveCost="10", Tags={"po": "PO-1"}),
        charge("2024-09-03", ResourceId=XSS_RESOURCE, BilledCost="7", EffectiveCost="7"),
        charge("2024-09-04", ResourceId="ri-1", BilledCost="3", EffectiveCost="3", CommitmentDiscountId="cd-1",
               CommitmentDiscountStatus="Used", CommitmentDiscountType="Reserved Instance"),
        charge("2024-09-04", ResourceId="ri-1", BilledCost="1", EffectiveCost="1", CommitmentDiscountId="cd-1",
               CommitmentDiscountStatus="Unused", CommitmentDiscountType="Reserved Instance"),
        charge("2024-09-04", ResourceId="i-bad", BilledCost="abc", EffectiveCost="1"),
        charge("2024-09-05", ResourceId="i-eur", BilledCost="5", EffectiveCost="5", Tags={"po": "PO-2"}),
    ]  # fmt: skip
    pos = [
        po("PO-1", vendor_name=XSS_VENDOR, total_amount="100.00", valid_to="2024-12-31"),
        po("PO-2", currency="EUR", total_amount="50.00"),
    ]
    return make_project(tmp_path, {"a.csv": rows}, pos, extra_toml="[report]\ntrailing_days = 10\n")


@pytest.fixture(scope="module")
def published_report(
    tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> tuple[Path, Path, str]:
    """Run the flow once, write the report through the CLI; (published db, report path, CLI output)."""
    root = tmp_path_factory.mktemp("report")
    config = _project(root)
    outcome = run_flow(config, as_of=date(2024, 9, 10))
    out = root / "site" / "report.html"
    result = CliRunner().invoke(app, ["report", "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return outcome.published_path, out, result.output


def test_cli_writes_one_self_contained_file(published_report: tuple[Path, Path, str]) -> None:
    _, out, output = published_report
    assert output.strip() == str(out)
    page = out.read_text(encoding="utf-8")
    # plotly.js inlined, nothing loaded from elsewhere
    assert "Plotly.newPlot" in page and "<script src" not in page and "<link" not in page
    assert "cdn." not in page.split("</head>")[1]


def test_default_out_is_beside_the_published_database(tmp_path: Path) -> None:
    config = _project(tmp_path)
    run_flow(config, as_of=date(2024, 9, 10))
    result = CliRunner().invoke(app, ["report", "--config", str(config)])
    assert result.exit_code == 0, result.output
    # warehouse.published_path = "out/finops.duckdb" (relative to the config's folder) → out/report.html
    assert result.output.strip() == str(tmp_path / "out" / "report.html")
    # written whole: no .report.html.partial left beside it
    assert sorted(p.name for p in (tmp_path / "out").glob("*.html*")) == ["report.html"]


def test_no_published_database_is_a_config_error(tmp_path: Path) -> None:
    config = _project(tmp_path)
    result = CliRunner().invoke(app, ["report", "--config", str(config)])
    assert result.exit_code == 2
    assert "run `finrecon run` first" in result.output


def test_figures_and_escaping_in_the_html(published_report: tuple[Path, Path, str]) -> None:
    _, out, _ = published_report
    page = out.read_text(encoding="utf-8")
    # burn table row of PO-1: committed 100, consumed 40, remaining 60, used 40 ÷ 100, 4/day, exhausted 09-25
    assert (
        '<td class="num">100.00</td><td class="num">40.00</td>\n      <td class="num">60.00</td>'
        '<td class="num">40.0%</td>\n      <td class="num">4.00</td><td>2024-09-25</td>'
    ) in page
    # coverage: AWS effective 10+12+20+10+7+3+1+5 = 68, valid PO 40+5 = 45, untagged 23 → 45 ÷ 68 = 66.2 %
    assert '<td class="num">68.00</td>\n      <td class="num">45.00</td>' in page
    assert '<td class="num">23.00</td><td class="num">66.2%</td>' in page
    # PO-2: consumption unknown without a rate, so no figures and no chart, and why
    assert '<tr class="burn-row"><td>PO-2</td>' in page
    assert "PO-2: no burn-down (no FX rate USD-&gt;EUR on or before 2024-09-05)." in page
    # the payloads appear only as text: escaped in the tables; in the chart JSON entity-escaped for Plotly's labels,
    # with the entity's & written \u0026
    assert "&lt;script&gt;document.body.dataset.pwned=&#39;script&#39;&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;document.body.dataset.pwned=&#39;img&#39;&#34;&gt;" in page
    assert "<script>document.body" not in page and "<img src=x" not in page
    assert "\\u0026lt;script\\u0026gt;document.body" in page
    # commitment cd-1: used 3, unused 1 → 3 ÷ 4 = 75 %
    assert '<td class="num">3.00</td><td class="num">1.00</td>\n      <td class="num">75.0%</td>' in page
    # quarantine: the one bad BilledCost
    assert '<td>a.csv</td><td>is_decimal</td>\n      <td>BilledCost</td><td class="num">1</td>' in page


def test_alerts_section(published_report: tuple[Path, Path, str]) -> None:
    published, out, _ = published_report
    page = out.read_text(encoding="utf-8")
    has_alerts = query(published, "select count(*) from duckdb_tables() where table_name = 'alerts'")[0][0]
    if not has_alerts:
        assert "alerts not configured" in page
        return
    # PO-1 is 40 % consumed, under the lowest threshold (50 %): whatever the rules, the page lists what is open
    open_alerts = query(published, "select count(*) from alerts where status = 'open'")[0][0]
    assert page.count('<tr class="alert-row">') == open_alerts


def _need_chromium() -> None:
    if chromium_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium (.ci/run installs Debian's chromium package)")
        pytest.skip("no chromium on PATH (apt-get install chromium); CI installs it")


# What a chart drew: its traces as Plotly holds them, and the SVG marks it made.
CHART_JS = """
(function (id) {
  var gd = document.getElementById(id);
  return {
    traces: gd.data.map(function (t) { return {name: t.name, x: t.x, y: t.y, type: t.type}; }),
    scatter_traces: gd.querySelectorAll('.scatterlayer .trace').length,
    points: Array.from(gd.querySelectorAll('.scatterlayer .trace')).map(function (t) {
      return t.querySelectorAll('path.point').length; }),
    bars: Array.from(gd.querySelectorAll('.barlayer .trace')).map(function (t) {
      return t.querySelectorAll('.point').length; }),
    legend: Array.from(gd.querySelectorAll('.legendtext')).map(function (t) { return t.textContent; }),
    yticks: Array.from(gd.querySelectorAll('.ytick text')).map(function (t) { return t.textContent; }),
    title: (gd.querySelector('.gtitle') || {}).textContent
  };
})
"""


def _chart(page: Any, element_id: str) -> dict[str, Any]:
    return dict(page.evaluate(f"{CHART_JS}({element_id!r})"))


def test_page_renders_in_headless_chromium(published_report: tuple[Path, Path, str]) -> None:
    _need_chromium()
    _, out, _ = published_report
    with open_file(out) as page:
        drawn = page.evaluate("window.finreconCharts", await_promise=True)
        coverage = _chart(page, "chart-coverage")
        untagged = _chart(page, "chart-untagged")
        burn = _chart(page, "chart-burn-0")
        commitments = _chart(page, "chart-commitments")
        pwned = page.evaluate("document.body.dataset.pwned || null")
        images = page.evaluate("document.images.length")
        table_text = page.evaluate(
            "document.querySelector('#untagged tr.untagged-row:nth-child(2) td.id').textContent"
        )
        errors = page.log.errors()
        dialogs = page.log.dialogs
    assert errors == [] and dialogs == []
    assert pwned is None and images == 0
    # coverage, untagged, commitments and one burn-down (PO-1; PO-2 has none)
    assert drawn == 4

    # coverage by day, one AWS (USD) line: 09-01 10 ÷ 22, 09-02 20 ÷ 20, 09-03 10 ÷ 17, 09-04 0 ÷ 4, 09-05 5 ÷ 5
    assert coverage["legend"] == ["AWS (USD)"] and coverage["points"] == [5]
    (line,) = coverage["traces"]
    assert line["x"] == ["2024-09-01", "2024-09-02", "2024-09-03", "2024-09-04", "2024-09-05"]
    assert line["y"] == pytest.approx([10 / 22, 1.0, 10 / 17, 0.0, 1.0])

    # untagged top: i-big 12, the XSS resource 7, ri-1 3 + 1 = 4 (the quarantined row is not a charge)
    assert untagged["bars"] == [3]
    assert untagged["traces"][0]["x"] == [12, 7, 4]
    # shown as text in the axis (categories bottom-up: rank 3 first; the 53-character payload cut to "…" and its
    # last 47 characters) and whole in the table
    assert len(XSS_RESOURCE) == 53  # 8 + 36 + 9
    assert untagged["yticks"] == ["#3 AWS · ri-1", f"#2 AWS · …{XSS_RESOURCE[-47:]}", "#1 AWS · i-big"]
    assert table_text == XSS_RESOURCE

    # burn-down of PO-1: remaining line, projection, one line per threshold, valid_to
    assert burn["legend"] == [
        "remaining",
        "projection",
        "50% consumed",
        "80% consumed",
        "100% consumed",
        "valid to",
    ]
    assert burn["scatter_traces"] == 6
    assert burn["title"] == f"PO-1 · {XSS_VENDOR}"
    remaining, projection, t50, t80, t100, valid_to = burn["traces"]
    # 100 the day before the first charge; −10, −20, −10; then flat to as_of
    assert remaining["x"] == ["2024-08-31", "2024-09-01", "2024-09-02", "2024-09-03", "2024-09-10"]
    assert remaining["y"] == pytest.approx([100, 90, 70, 60, 60])
    assert burn["points"][0] == 5
    # from as_of at 60, 4/day for 15 days → 0 on 2024-09-25
    assert projection["x"] == ["2024-09-10", "2024-09-25"] and projection["y"] == pytest.approx([60, 0])
    # thresholds as remaining amounts: 100 × (1 − 0.5) = 50, × (1 − 0.8) = 20, × (1 − 1) = 0, from 08-31 to valid_to
    assert [t["y"] for t in (t50, t80, t100)] == [pytest.approx([50, 50]), pytest.approx([20, 20]), [0, 0]]
    assert t50["x"] == ["2024-08-31", "2024-12-31"]
    assert valid_to["x"] == ["2024-12-31", "2024-12-31"]

    # commitment cd-1, 2024-09: used 3 and unused 1, stacked
    assert [t["name"] for t in commitments["traces"]] == ["used", "unused (waste)"]
    assert sorted(commitments["legend"]) == ["unused (waste)", "used"] and commitments["bars"] == [1, 1]
    assert [t["x"] for t in commitments["traces"]] == [[3], [1]]
    assert commitments["yticks"] == ["cd-1 · 2024-09"]
