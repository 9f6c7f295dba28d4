"""One measurement in a fresh process (so peak RSS is that measurement's own): the flow, or the lower bound.

`python -m finrecon.bench.measure flow CONFIG` / `python -m finrecon.bench.measure lower-bound DATA_DIR FORMAT`
print one JSON line.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import duckdb

PO_KEYS = ["po", "ponumber", "purchaseorder", "poid"]


def lower_bound_sql(data_dir: Path, fmt: str) -> str:
    """One bare DuckDB statement over the generated files computing the same coverage and PO consumption:
    distinct-Tags PO key match, value normalisation with the PO prefix, ERP validity, FX as of the charge day."""
    pattern = (data_dir / "focus" / f"*.{fmt}").as_posix()
    reader = (
        f"read_parquet('{pattern}')"
        if fmt == "parquet"
        else f"read_csv('{pattern}', union_by_name = true, timestampformat = '%Y-%m-%d %H:%M:%S')"
    )
    erp = (data_dir / "erp").as_posix()
    keys = ", ".join(f"'{k}'" for k in PO_KEYS)
    return f"""
    with charges as (
        select ProviderName, BillingAccountId, SubAccountId, ServiceName, BillingCurrency,
               cast(ChargePeriodStart as date) as charge_date, BilledCost, EffectiveCost, Tags
        from {reader}
    ),
    tag_po as (
        select Tags, arg_min(value, position) as po_value
        from (
            select Tags, e.value as value,
                   list_position([{keys}], regexp_replace(lower(e.key), '[-_.\\s]', '', 'g')) as position
            from (select distinct Tags from charges where Tags is not null),
                 unnest(map_entries(json_transform(Tags, '"MAP(VARCHAR, VARCHAR)"'))) as t(e)
        )
        where position is not null
        group by Tags
    ),
    pos as (
        select *, regexp_replace(upper(po_number), '[^A-Z0-9]', '', 'g') as po_norm
        from read_csv('{erp}/po_headers.csv')
    ),
    resolved as (
        select charges.*, pos.po_number, pos.currency as po_currency,
            case
                when tag_po.po_value is null then 'untagged'
                when pos.po_number is not null and lower(pos.status) in ('approved', 'open')
                     and charges.charge_date between pos.valid_from and pos.valid_to then 'valid'
                else 'invalid'
            end as status
        from charges
        left join tag_po using (Tags)
        left join pos on pos.po_norm = case
            when regexp_full_match(regexp_replace(upper(tag_po.po_value), '[^A-Z0-9]', '', 'g'), '[0-9]+')
                then 'PO' || regexp_replace(upper(tag_po.po_value), '[^A-Z0-9]', '', 'g')
            else regexp_replace(upper(tag_po.po_value), '[^A-Z0-9]', '', 'g') end
    ),
    coverage as (
        select charge_date, ProviderName, BillingAccountId, SubAccountId, ServiceName, BillingCurrency,
               sum(EffectiveCost) as total_cost,
               sum(EffectiveCost) filter (where status = 'valid') as valid_cost,
               sum(EffectiveCost) filter (where status = 'invalid') as invalid_cost,
               sum(EffectiveCost) filter (where status = 'untagged') as untagged_cost
        from resolved group by all
    ),
    daily as (
        select po_number, po_currency, BillingCurrency, charge_date, sum(BilledCost) as billed
        from resolved where status = 'valid' group by all
    ),
    rates as (select * from read_csv('{erp}/fx_rates.csv')),
    consumption as (
        select po_number, sum(billed * case when BillingCurrency = po_currency then 1.0
                                            when BillingCurrency = 'USD' then rates.rate else 1.0 / rates.rate end) as consumed
        from daily asof left join rates on daily.charge_date >= rates.rate_date
        group by po_number
    )
    select (select count(*) from coverage), (select sum(total_cost) from coverage),
           (select count(*) from consumption), (select sum(consumed) from consumption)
    """


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure_lower_bound(data_dir: Path, fmt: str) -> dict[str, object]:
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    started = time.perf_counter()
    result = con.execute(lower_bound_sql(data_dir, fmt)).fetchall()[0]
    return {"seconds": time.perf_counter() - started, "peak_rss": peak_rss_bytes(), "result": list(result)}


def measure_flow(config: Path) -> dict[str, object]:
    started = time.perf_counter()
    from finrecon.flows.nightly import configured_nightly
    from finrecon.models.config import load_config

    outcome = configured_nightly(load_config(config))(config_path=str(config))
    total = time.perf_counter() - started
    return {
        "seconds": total,
        "peak_rss": peak_rss_bytes(),
        "unchanged": outcome.unchanged,
        "stages": {name: list(values) for name, values in outcome.stages.items()},
        "landing_seconds": outcome.landing_seconds,
        "rows": outcome.summary.run["published_charge_rows"],
    }


def main(argv: list[str]) -> None:
    result = measure_flow(Path(argv[1])) if argv[0] == "flow" else measure_lower_bound(Path(argv[1]), argv[2])
    print("BENCH " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
