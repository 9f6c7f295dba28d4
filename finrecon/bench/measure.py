"""One measurement in a fresh process (so peak RSS is that measurement's own): the flow, or the lower bound.

`python -m finrecon.bench.measure flow CONFIG` / `python -m finrecon.bench.measure lower-bound DATA_DIR FORMAT`
print one JSON line.
"""

from __future__ import annotations

import io
import json
import resource
import sys
import time
from pathlib import Path

import duckdb

from finrecon.core.sql_text import identifier, literal

PO_KEYS = ["po", "ponumber", "purchaseorder", "poid"]


def lower_bound_sql(data_dir: Path, fmt: str) -> str:
    """One bare DuckDB statement over the generated files computing the three mission marts' figures: coverage
    (tag_coverage's grain), PO consumption (po_burn: distinct-Tags PO key match, value normalisation with the PO
    prefix, ERP validity, FX as of the charge day) and commitment utilisation (commitment_utilization's grain:
    used and unused EffectiveCost of Usage rows and Purchase BilledCost per commitment and billing month)."""
    pattern = (data_dir / "focus" / f"*.{fmt}").as_posix()
    reader = (
        f"read_parquet({literal(pattern)})"
        if fmt == "parquet"
        else f"read_csv({literal(pattern)}, union_by_name = true, timestampformat = '%Y-%m-%d %H:%M:%S', "
        "types = {'BillingAccountId': 'VARCHAR', 'SubAccountId': 'VARCHAR'})"  # a file of several providers
    )
    erp = (data_dir / "erp").as_posix()
    keys = ", ".join(literal(k) for k in PO_KEYS)
    return f"""
    with charges as (
        select ProviderName, BillingAccountId, SubAccountId, ServiceName, BillingCurrency,
               cast(ChargePeriodStart as date) as charge_date, BilledCost, EffectiveCost, Tags,
               ChargeCategory, CommitmentDiscountId, CommitmentDiscountStatus,
               cast(BillingPeriodStart as date) as billing_month
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
        from read_csv({literal(f"{erp}/po_headers.csv")})
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
    rates as (select * from read_csv({literal(f"{erp}/fx_rates.csv")})),
    consumption as (
        select po_number, sum(billed * case when BillingCurrency = po_currency then 1.0
                                            when BillingCurrency = 'USD' then rates.rate else 1.0 / rates.rate end) as consumed
        from daily asof left join rates on daily.charge_date >= rates.rate_date
        group by po_number
    ),
    utilization as (
        select ProviderName, BillingAccountId, CommitmentDiscountId, billing_month,
               coalesce(sum(EffectiveCost) filter (
                   where ChargeCategory = 'Usage' and CommitmentDiscountStatus = 'Used'), 0) as used_cost,
               coalesce(sum(EffectiveCost) filter (
                   where ChargeCategory = 'Usage' and CommitmentDiscountStatus = 'Unused'), 0) as unused_cost,
               coalesce(sum(BilledCost) filter (where ChargeCategory = 'Purchase'), 0) as purchase_billed_cost
        from charges where CommitmentDiscountId is not null
        group by all
    )
    select (select count(*) from coverage), (select sum(total_cost) from coverage),
           (select count(*) from consumption), (select sum(consumed) from consumption),
           (select count(*) from utilization),
           (select sum(used_cost / nullif(used_cost + unused_cost, 0)) from utilization)
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
    """What `finrecon run -c CONFIG` does (state-file check, the flow with Prefect's start-up, the summary),
    with the stage figures kept; the caller's wall time of this process is the whole run's."""
    started = time.perf_counter()
    from rich.console import Console

    from finrecon.flows.nightly import configured_nightly
    from finrecon.models.config import load_config
    from finrecon.report.summary import render
    from finrecon.warehouse.state import State

    loaded = load_config(config)
    State.open(loaded.resolve(loaded.warehouse.state_path)).close()  # the CLI's check that no run holds it
    outcome = configured_nightly(loaded)(config_path=str(config))
    render(outcome.summary, Console(file=io.StringIO(), width=160))
    total = time.perf_counter() - started
    return {
        "seconds": total,
        "peak_rss": peak_rss_bytes(),
        "unchanged": outcome.unchanged,
        "stages": {name: list(values) for name, values in outcome.stages.items()},
        "landing_seconds": outcome.landing_seconds,
        "rows": outcome.summary.run["published_charge_rows"],
        "failed_files": len(outcome.failed_files),
    }


def cur_reference_sql(parts_glob: str, export_type: str, out: str) -> str:
    """A bare DuckDB read-map-write of CUR parts to FOCUS Parquet: the main FOCUS columns, amortised cost, tags;
    no validation, quarantine, books or lake. A yardstick for the CUR landing, not a lower bound of it."""
    from finrecon.models.aws_cur import legacy_column

    def c(name: str) -> str:
        return identifier(name if export_type == "cur_legacy" else legacy_column(name))

    from finrecon.bench.cur import TAG_KEYS

    if export_type == "cur_legacy":
        reader = f"read_csv({literal(parts_glob)}, header = true, all_varchar = true)"
        entries = ", ".join(
            f"struct_pack(key := {literal(f'user:{key}')}, value := {identifier(f'resourceTags/user:{key}')})"
            for key in TAG_KEYS
        )
        tags = f"to_json(map_from_entries(list_filter([{entries}], lambda e: e.value is not null)))"
    else:
        reader = f"read_parquet({literal(parts_glob)})"
        tags = "to_json(resource_tags)"
    return f"""
    copy (
        select
            'AWS' as ProviderName,
            {c("bill/PayerAccountId")} as BillingAccountId,
            {c("lineItem/UsageAccountId")} as SubAccountId,
            {c("lineItem/CurrencyCode")} as BillingCurrency,
            cast({c("bill/BillingPeriodStartDate")} as timestamp) as BillingPeriodStart,
            cast({c("bill/BillingPeriodEndDate")} as timestamp) as BillingPeriodEnd,
            cast({c("lineItem/UsageStartDate")} as timestamp) as ChargePeriodStart,
            cast({c("lineItem/UsageEndDate")} as timestamp) as ChargePeriodEnd,
            cast({c("lineItem/UnblendedCost")} as double) as BilledCost,
            case {c("lineItem/LineItemType")}
                when 'DiscountedUsage' then cast({c("reservation/EffectiveCost")} as double)
                when 'RIFee' then coalesce(cast({c("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod")} as double), 0)
                    + coalesce(cast({c("reservation/UnusedRecurringFee")} as double), 0)
                when 'Fee' then 0.0
                else cast({c("lineItem/UnblendedCost")} as double)
            end as EffectiveCost,
            cast({c("pricing/publicOnDemandCost")} as double) as ListCost,
            case when {c("lineItem/LineItemType")} = 'Fee' then 'Purchase' else 'Usage' end as ChargeCategory,
            nullif({c("reservation/ReservationARN")}, '') as CommitmentDiscountId,
            case {c("lineItem/LineItemType")} when 'DiscountedUsage' then 'Used' when 'RIFee' then 'Unused' end
                as CommitmentDiscountStatus,
            {c("product/ProductName")} as ServiceName,
            {c("product/sku")} as SkuId,
            {c("product/regionCode")} as RegionId,
            {c("lineItem/ResourceId")} as ResourceId,
            {tags} as Tags
        from {reader}
    ) to {literal(out)} (format parquet, compression zstd)
    """


def measure_cur_reference(parts_glob: str, export_type: str, out: str) -> dict[str, object]:
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    started = time.perf_counter()
    con.execute(cur_reference_sql(parts_glob, export_type, out))
    seconds = time.perf_counter() - started
    rows = con.execute("select count(*) from read_parquet(?)", [out]).fetchall()[0][0]
    return {"seconds": seconds, "peak_rss": peak_rss_bytes(), "rows": rows}


def main(argv: list[str]) -> None:
    if argv[0] == "flow":
        result = measure_flow(Path(argv[1]))
    elif argv[0] == "cur-reference":
        result = measure_cur_reference(argv[1], argv[2], argv[3])
    else:
        result = measure_lower_bound(Path(argv[1]), argv[2])
    print("BENCH " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
