"""The bad-input corpus: the committed files under `corpus/` plus the ones built at test time (binary encodings,
gzip and Parquet variants, the 50 MB tag), and an independent reading of each file for the books.

The independent reading uses only the standard library and pyarrow (never the pipeline's reader): rows are the
data records of the CSV as the `csv` module splits it on commas, blank lines not counted; a record with another
field count than the header's has no values (which column a value belongs to is unknown, so its cost is too);
a cost counts when Python's `float` reads it as a finite number.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

CORPUS = Path(__file__).parent / "corpus"
HUGE_TAG_BYTES = 50 * 1024 * 1024


def build_focus_folder(target: Path) -> None:
    """Every FOCUS corpus file in `target`: the committed ones copied, the generated ones written."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted((CORPUS / "focus").iterdir()):
        shutil.copyfile(path, target / path.name)
    good = (CORPUS / "focus" / "good.csv").read_bytes()
    latin_text = (CORPUS / "latin1_source.csv").read_text(encoding="utf-8")
    compressed = gzip.compress(good, mtime=0)
    (target / "truncated.csv.gz").write_bytes(compressed[: len(compressed) // 2])
    (target / "latin1.csv").write_bytes(latin_text.encode("latin-1"))
    (target / "latin1.csv.gz").write_bytes(gzip.compress(latin_text.encode("latin-1"), mtime=0))
    (target / "utf16.csv").write_bytes(good.decode("utf-8").encode("utf-16"))
    (target / "empty.csv.gz").write_bytes(gzip.compress(b"", mtime=0))
    (target / "bom_utf8.csv.gz").write_bytes(
        gzip.compress((CORPUS / "focus" / "bom_utf8.csv").read_bytes(), mtime=0)
    )
    _write_huge_tag(target / "huge_tag.csv")
    _write_parquet_files(target)


def huge_tags_value() -> str:
    """The 50 MB Tags text of huge_tag.csv row 2 (a valid JSON object, just absurdly large)."""
    return '{"po": "PO-1001", "blob": "' + "x" * HUGE_TAG_BYTES + '"}'


def _write_huge_tag(path: Path) -> None:
    header = "BillingAccountId,BillingCurrency,BilledCost,EffectiveCost,ChargeCategory,ChargePeriodStart,"
    header += "ProviderName,ResourceId,Tags\n"
    prefix = "111111111111,USD,{cost},{cost},Usage,2024-09-02T00:00:00Z,AWS,{rid},"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(header)
        handle.write(prefix.format(cost="1.00", rid="huge-1") + "\n")
        quoted = '"' + huge_tags_value().replace('"', '""') + '"'
        handle.write(prefix.format(cost="2.00", rid="huge-2") + quoted + "\n")
        handle.write(prefix.format(cost="4.00", rid="huge-3") + "\n")


def _base_columns(n: int, prefix: str) -> dict[str, pa.Array]:
    return {
        "BillingAccountId": pa.array(["111111111111"] * n),
        "BillingCurrency": pa.array(["USD"] * n),
        "ChargeCategory": pa.array(["Usage"] * n),
        "ProviderName": pa.array(["AWS"] * n),
        "ResourceId": pa.array([f"{prefix}-{i}" for i in range(1, n + 1)]),
    }


def _day(day: int) -> datetime:
    return datetime(2024, 9, day, tzinfo=UTC)


PLUS_TWO = timezone(timedelta(hours=2))


def _write_parquet_files(target: Path) -> None:
    # costs as native doubles: NaN, inf and a huge finite value
    costs = _base_columns(6, "pq-cost")
    costs["BilledCost"] = pa.array([1.5, math.nan, 2.0, 3.0, 4.0, 1e308])
    costs["EffectiveCost"] = pa.array([1.4, 1.0, math.inf, 2.9, 3.9, 1.0])
    costs["ChargePeriodStart"] = pa.array([_day(2)] * 6, pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table(costs), target / "costs_nan_inf.parquet")

    # time zones and a future date, as tz-aware Parquet timestamps
    dates = _base_columns(4, "pq-date")
    dates["BilledCost"] = pa.array([1.0, 2.0, 4.0, 8.0])
    dates["EffectiveCost"] = pa.array([1.0, 2.0, 4.0, 8.0])
    starts = [
        datetime(2024, 9, 5, 0, 0, tzinfo=PLUS_TWO),
        datetime(2099, 1, 1, 0, 0, tzinfo=PLUS_TWO),
        datetime(2024, 9, 5, 23, 0, tzinfo=PLUS_TWO),
        datetime(2024, 9, 5, 1, 30, tzinfo=PLUS_TWO),
    ]
    dates["ChargePeriodStart"] = pa.array(starts, pa.timestamp("us", tz="+02:00"))
    pq.write_table(pa.table(dates), target / "dates_timezone.parquet")

    # Tags as a MAP column, one with a repeated key
    tags = _base_columns(4, "pq-tag")
    tags["BilledCost"] = pa.array([1.0, 2.0, 4.0, 8.0])
    tags["EffectiveCost"] = pa.array([1.0, 2.0, 4.0, 8.0])
    tags["ChargePeriodStart"] = pa.array([_day(3)] * 4, pa.timestamp("us", tz="UTC"))
    tags["Tags"] = pa.array(
        [[("po", "PO-1001")], [("po", "PO-1001"), ("po", "PO-2002")], [], None],
        pa.map_(pa.string(), pa.string()),
    )
    pq.write_table(pa.table(tags), target / "tags_map.parquet")

    # no rows at all; a cut file; a column named twice
    pq.write_table(pa.table(costs).slice(0, 0), target / "empty.parquet")
    whole = (target / "costs_nan_inf.parquet").read_bytes()
    (target / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    twice = _base_columns(2, "pq-dup")
    names = [*twice, "BilledCost", "BilledCost", "EffectiveCost", "ChargePeriodStart"]
    arrays = [
        *twice.values(),
        pa.array([1.0, 2.0]),
        pa.array([3.0, 4.0]),
        pa.array([1.0, 2.0]),
        pa.array([_day(2)] * 2, pa.timestamp("us", tz="UTC")),
    ]
    pq.write_table(pa.Table.from_arrays(arrays, names=names), target / "duplicated_column.parquet")


# --- the independent reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRow:
    number: int  # 1-based data row
    values: dict[str, Any]


MAX_ABS_COST = 1e15  # a cost beyond it is not money (hand-stated here, as the pipeline's validation rule)


def finite(value: Any) -> float | None:
    """A cost as Python reads it, when it is a finite number within ±1e15; else None (it adds nothing)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and abs(number) <= MAX_ABS_COST else None


def raw_rows(path: Path) -> list[RawRow]:
    """Every data row of a corpus file, read without the pipeline (CSV: the first occurrence of a repeated
    column name wins, as in the pipeline's books)."""
    if path.name.endswith(".parquet"):
        table = pq.ParquetFile(path).read()
        names = table.column_names
        rows = zip(*(table.column(i).to_pylist() for i in range(len(names))), strict=True)
        return [RawRow(i, _first_wins(names, list(r))) for i, r in enumerate(rows, start=1)]
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    csv.field_size_limit(sys.maxsize)  # huge_tag.csv's 50 MB field
    records = [r for r in csv.reader(io.StringIO(text, newline="")) if r]  # a blank line is no record
    header, body = records[0], records[1:]
    return [
        RawRow(i, _first_wins(header, r) if len(r) == len(header) else {})
        for i, r in enumerate(body, start=1)
    ]


def _first_wins(names: list[str], values: list[Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, value in zip(names, values, strict=False):
        row.setdefault(name, value)
    return row


def cost_sum(rows: list[RawRow], column: str) -> float:
    return sum(finite(r.values.get(column)) or 0.0 for r in rows)
