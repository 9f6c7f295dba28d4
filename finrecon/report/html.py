"""`finrecon report`: one self-contained HTML file (plotly.js inlined, so it opens offline) read from the
published database: coverage trend, untagged top offenders, a burn-down per PO, commitment utilisation and waste,
open alerts, data quality and quarantine.

Every value from the data reaches the page escaped: tables through Jinja's autoescape, chart labels through
`_text` (Plotly draws its own pseudo-HTML, so labels are entity-escaped too), and chart specs as JSON inside
`<script type="application/json">` with `<`, `>` and `&` written as \\u escapes, read by one fixed script.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import plotly.graph_objects as go
import plotly.io as pio
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from finrecon.report.summary import (
    CHECKS_SQL,
    COMMITMENT_SQL,
    COVERAGE_SQL,
    RUN_SQL,
    Row,
    books_line,
    checks_line,
)

# The run the publication belongs to decides which po_burn snapshot (po_burn keeps one per as_of).
AS_OF_SQL = "select coalesce((select as_of from runs order by started_at desc limit 1), (select max(as_of) from po_burn))"

# Daily PO coverage per provider and billing currency: Σ valid-PO EffectiveCost ÷ Σ EffectiveCost.
COVERAGE_TREND_SQL = """
select charge_date, provider_name, billing_currency, sum(total_cost) as total_cost,
       sum(valid_po_cost) as valid_po_cost, sum(valid_po_cost) / nullif(sum(total_cost), 0) as coverage_ratio
from tag_coverage
group by all
order by provider_name, billing_currency, charge_date
"""

UNTAGGED_SQL = """
select rank, provider_name, service_name, resource_id, resource_name, po_status, po_reason, po_tag_value,
       billing_currency, effective_cost, billed_cost, charge_count, first_charge_date, last_charge_date
from untagged_top
order by rank
limit ?
"""

# The POs that burn (or cannot be measured for want of an FX rate), soonest exhaustion first, as in the summary.
BURN_SQL = """
select po_number, vendor_name, po_currency, committed_amount, consumed_amount, remaining_amount, consumed_ratio,
       burn_rate_daily, projected_exhaustion_date, valid_from, valid_to, threshold_state, error
from po_burn
where as_of = ? and (consumed_amount > 0 or threshold_state = 'fx_missing')
order by projected_exhaustion_date nulls last, consumed_ratio desc nulls last, po_number
limit ?
"""

# Consumption per PO and day in the PO currency; NULL for a day with a charge that has no FX rate.
CONSUMPTION_SQL = """
select po_number, charge_date,
       case when bool_or(consumed_amount is null) then null else sum(consumed_amount) end as consumed_amount
from po_consumption_daily
where list_contains(?, po_number)
group by all
order by po_number, charge_date
"""

ALERTS_SQL = """
select *
from alerts
where status = 'open'
order by case severity when 'critical' then 0 when 'warning' then 1 else 2 end, po_number nulls last, title
"""

DATA_QUALITY_SQL = """
select provider_name, billing_period, quality_flag, charge_count, billed_cost, effective_cost
from data_quality
order by billing_period, provider_name, quality_flag
"""

QUARANTINE_SQL = """
select source, file_path, check_name, column_name, count(*) as failures,
       count(distinct row_number) as failing_rows
from quarantine
group by all
order by failures desc, source, file_path, check_name, column_name
"""

UNTAGGED_CHART_ROWS = 10  # bars in the chart; the table lists read_report(top_untagged=...) rows


@dataclass(frozen=True)
class Figure:
    """One chart: the element id it draws into and its Plotly spec as script-safe JSON."""

    element_id: str
    spec_json: Markup


@dataclass(frozen=True)
class BurnDown:
    po: Row
    figure: Figure | None  # None when a charge has no FX rate: nothing honest to draw


@dataclass(frozen=True)
class ReportData:
    path: Path
    run: Row
    as_of: date | None
    thresholds: list[float]
    coverage: list[Row]
    coverage_trend: list[Row]
    untagged: list[Row]
    burning: list[Row]
    consumption: dict[str, list[Row]]
    commitments: list[Row]
    alerts: list[Row] | None  # None: no alerts table in this publication
    data_quality: list[Row]
    quarantine: list[Row]
    checks: Row


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[Row]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute(
        "select count(*) from duckdb_tables() where table_name = ? and not temporary", [name]
    ).fetchall()
    return bool(found[0][0])


ALERT_COLUMNS = ("severity", "title", "message", "rule", "po_number", "vendor_id")


def _alert_rows(con: duckdb.DuckDBPyConnection) -> list[Row] | None:
    """Open alerts with the columns the page shows (None when the publication has no alerts table)."""
    if not _has_table(con, "alerts"):
        return None
    rows = _rows(con, ALERTS_SQL)
    shown = [{name: r.get(name) for name in ALERT_COLUMNS} for r in rows]
    for row, full in zip(shown, rows, strict=True):
        row["since"] = full.get("first_fired_as_of") or full.get("first_fired_at")
    return shown


def read_report(
    published: Path, thresholds: list[float], top_pos: int = 20, top_untagged: int = 25
) -> ReportData:
    """Everything the page shows, from one read-only connection to the published file."""
    con = duckdb.connect(str(published), read_only=True)
    try:
        as_of = con.execute(AS_OF_SQL).fetchall()[0][0]
        burning = _rows(con, BURN_SQL, [as_of, top_pos])
        consumption: dict[str, list[Row]] = {r["po_number"]: [] for r in burning}
        for row in _rows(con, CONSUMPTION_SQL, [list(consumption)]):
            consumption[row["po_number"]].append(row)
        return ReportData(
            path=published,
            run=_rows(con, RUN_SQL)[0],
            as_of=as_of,
            thresholds=sorted(thresholds),
            coverage=_rows(con, COVERAGE_SQL),
            coverage_trend=_rows(con, COVERAGE_TREND_SQL),
            untagged=_rows(con, UNTAGGED_SQL, [top_untagged]),
            burning=burning,
            consumption=consumption,
            commitments=_rows(con, COMMITMENT_SQL),
            alerts=_alert_rows(con),
            data_quality=_rows(con, DATA_QUALITY_SQL),
            quarantine=_rows(con, QUARANTINE_SQL),
            checks=_rows(con, CHECKS_SQL)[0],
        )
    finally:
        con.close()


# --- charts -------------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A data value as Plotly label text: Plotly reads `<b>`, `<a href>`… in labels, so `<`, `>`, `&` go in as
    entities (which it shows as the characters). Quotes stay: Plotly knows no `&quot;`."""
    return html.escape("" if value is None else str(value), quote=False)


def _script_json(figure: go.Figure) -> Markup:
    """The figure as JSON that cannot end its `<script>` element: `<`, `>`, `&` (and the JS line separators)
    occur only inside JSON strings, where their \\u escapes mean the same characters."""
    text = pio.to_json(figure, validate=False, pretty=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(char, escaped)
    return Markup(text)


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "template": "plotly_white", "showlegend": True, "height": 380,
            "margin": {"l": 70, "r": 20, "t": 50, "b": 50}, **extra}  # fmt: skip


def coverage_figure(rows: list[Row]) -> Figure | None:
    """Daily coverage, one line per provider and billing currency (ratios of different currencies never mix)."""
    if not rows:
        return None
    figure = go.Figure()
    series: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        series.setdefault((row["provider_name"], row["billing_currency"]), []).append(row)
    for (provider, currency), points in series.items():
        figure.add_trace(go.Scatter(
            x=[p["charge_date"].isoformat() for p in points], y=[p["coverage_ratio"] for p in points],
            mode="lines+markers", name=_text(f"{provider} ({currency})"),
        ))  # fmt: skip
    figure.update_layout(_layout("PO coverage by day (valid-PO cost ÷ cost)",
                                 yaxis={"tickformat": ".0%", "range": [0, 1.05], "title": {"text": "coverage"}}))  # fmt: skip
    return Figure("chart-coverage", _script_json(figure))


def untagged_figure(rows: list[Row]) -> Figure | None:
    """The largest resources without a valid PO, one bar each, one colour per billing currency."""
    top = rows[:UNTAGGED_CHART_ROWS]
    if not top:
        return None
    labels = {r["rank"]: _text(f"#{r['rank']} {r['provider_name']} · {_tail(r['resource_id'])}") for r in top}
    figure = go.Figure()
    for currency in sorted({r["billing_currency"] or "" for r in top}):
        bars = [r for r in top if (r["billing_currency"] or "") == currency]
        figure.add_trace(go.Bar(
            x=[r["effective_cost"] for r in bars], y=[labels[r["rank"]] for r in bars], orientation="h",
            name=_text(currency or "no currency"),
            text=[_text(f"{r['resource_id']} ({r['po_status']}: {r['po_reason']})") for r in bars],
            textposition="none",
        ))  # fmt: skip
    figure.update_layout(_layout(
        "Untagged and invalid-PO spend: top offenders (Σ EffectiveCost)",
        height=max(300, 60 + 32 * len(top)), margin={"l": 280, "r": 20, "t": 50, "b": 50},
        yaxis={"categoryorder": "array", "categoryarray": [labels[r["rank"]] for r in reversed(top)]},
    ))  # fmt: skip
    return Figure("chart-untagged", _script_json(figure))


def _tail(value: str, keep: int = 48) -> str:
    """The end of a long resource id (ARNs and Azure ids differ at the end); the full id is in the hover."""
    return value if len(value) <= keep else "…" + value[-(keep - 1) :]


def burn_down_series(po: Row, days: list[Row], as_of: date) -> tuple[list[date], list[float]] | None:
    """Remaining PO amount after each charge day, from the committed amount the day before the first charge,
    held flat to as_of (where the projection starts); None when a day has no FX rate."""
    if any(d["consumed_amount"] is None for d in days) or not days:
        return None
    remaining = float(po["committed_amount"])
    xs, ys = [days[0]["charge_date"] - timedelta(1)], [remaining]
    for day in days:
        remaining -= day["consumed_amount"]
        xs.append(day["charge_date"])
        ys.append(remaining)
    if xs[-1] < as_of:
        xs.append(as_of)
        ys.append(remaining)
    return xs, ys


def projection(po: Row, as_of: date) -> tuple[list[date], list[float]]:
    """The straight line the burn rate draws from as_of: to the projected exhaustion date, else to valid_to
    (flat when nothing burns), else over the next 30 days."""
    remaining, rate = float(po["remaining_amount"]), float(po["burn_rate_daily"] or 0)
    exhaustion, valid_to = po["projected_exhaustion_date"], po["valid_to"]
    if exhaustion is not None and exhaustion > as_of:
        end = exhaustion
    elif valid_to is not None and valid_to > as_of:
        end = valid_to
    else:
        end = as_of + timedelta(30)
    return [as_of, end], [remaining, remaining - rate * (end - as_of).days]


def burn_figure(index: int, po: Row, days: list[Row], thresholds: list[float], as_of: date) -> Figure | None:
    """Burn-down of one PO: remaining amount by day, its projection, one horizontal line per burn threshold
    (remaining = committed × (1 − threshold)) and valid_to."""
    actual = burn_down_series(po, days, as_of)
    if actual is None:
        return None
    currency = _text(po["po_currency"])
    committed = float(po["committed_amount"])
    proj_x, proj_y = projection(po, as_of)
    span = [min(actual[0]), max([*proj_x, *actual[0], *([po["valid_to"]] if po["valid_to"] else [])])]
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=_iso(actual[0]), y=actual[1], mode="lines+markers", name="remaining",
                                line={"color": "#1f77b4"}))  # fmt: skip
    figure.add_trace(go.Scatter(x=_iso(proj_x), y=proj_y, mode="lines", name="projection",
                                line={"color": "#1f77b4", "dash": "dash"}))  # fmt: skip
    for threshold in thresholds:
        level = committed * (1 - threshold)
        figure.add_trace(go.Scatter(x=_iso(span), y=[level, level], mode="lines", name=f"{threshold:.0%} consumed",
                                    line={"color": "#d62728", "dash": "dot", "width": 1}))  # fmt: skip
    if po["valid_to"] is not None:
        low = min(0.0, *actual[1], *proj_y)
        figure.add_trace(go.Scatter(x=_iso([po["valid_to"]] * 2), y=[low, committed], mode="lines",
                                    name="valid to", line={"color": "#7f7f7f", "dash": "dashdot", "width": 1}))  # fmt: skip
    title = _text(f"{po['po_number']} · {po['vendor_name'] or ''}")
    figure.update_layout(_layout(title, yaxis={"title": {"text": f"remaining ({currency})"}}))
    return Figure(f"chart-burn-{index}", _script_json(figure))


def _iso(days: list[date]) -> list[str]:
    return [d.isoformat() for d in days]


def commitment_figure(rows: list[Row]) -> Figure | None:
    """Used and unused (waste) cost per commitment and month, stacked, one bar each (ids end-trimmed)."""
    if not rows:
        return None
    labels = [_text(f"{_tail(r['commitment_discount_id'])} · {r['billing_month']}") for r in rows]
    ids = [_text(r["commitment_discount_id"]) for r in rows]
    figure = go.Figure()
    for name, column, colour in (
        ("used", "used_cost", "#2ca02c"),
        ("unused (waste)", "unused_cost", "#d62728"),
    ):
        figure.add_trace(go.Bar(x=[r[column] for r in rows], y=labels, orientation="h", name=name, text=ids,
                                textposition="none", marker={"color": colour}))  # fmt: skip
    figure.update_layout(_layout(
        "Commitment utilisation by month (Σ EffectiveCost, billing currency)", barmode="stack",
        height=max(300, 100 + 32 * len(rows)), margin={"l": 280, "r": 20, "t": 50, "b": 50},
        yaxis={"categoryorder": "array", "categoryarray": list(reversed(labels))},
    ))  # fmt: skip
    return Figure("chart-commitments", _script_json(figure))


# --- page ---------------------------------------------------------------------------------------------------


def _money(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.6f}" if abs(value) < 1 else f"{value:,.2f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _show(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("finrecon.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=_money, pct=_pct, show=_show)
    return env


def render_html(data: ReportData, generated_at: datetime | None = None) -> str:
    burn_downs = [
        BurnDown(po, burn_figure(i, po, data.consumption.get(po["po_number"], []), data.thresholds, data.as_of))
        for i, po in enumerate(data.burning)
    ] if data.as_of is not None else []  # fmt: skip
    figures = [f for f in (coverage_figure(data.coverage_trend), untagged_figure(data.untagged),
                           commitment_figure(data.commitments)) if f is not None]  # fmt: skip
    figures += [b.figure for b in burn_downs if b.figure is not None]
    plotly_js = get_plotlyjs()
    if "</script" in plotly_js.lower():  # never true for the shipped bundle; it would end the element
        raise ValueError("plotly.js bundle cannot be inlined")
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            data=data,
            burn_downs=burn_downs,
            figures=figures,
            figure_ids={f.element_id for f in figures},
            plotly_js=Markup(plotly_js),
            books=books_line(data.run),
            checks=checks_line(data.checks),
            generated_at=(generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        )
    )


def write_report(published: Path, out: Path, thresholds: list[float]) -> Path:
    """Read the publication, write the page (atomically: a half-written report never replaces the last one)."""
    page = render_html(read_report(published, thresholds))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(out)
    return out
