-- grain: provider × billing currency × tag key (as delivered), over every charge with tags up to as_of
-- Every tag key seen, with its spend and whether it is read as a PO key (tags.po_keys, compared like PO keys:
-- case, '-', '_', '.', spaces and AWS's `user:` ignored). looks_like_po_key flags near misses ('po num',
-- 'purchase-ord', 'PO_Ref') that are not configured, so an analyst can add them as aliases. Needs no PO resolution:
-- read from the landed charges (stg_focus__charges, the same rows as `charges`).
with by_tags as (
    select
        stg_focus__charges.ProviderName,
        stg_focus__charges.BillingCurrency,
        stg_focus__charges.Tags,
        sum(stg_focus__charges.EffectiveCost) as effective_cost,
        sum(stg_focus__charges.BilledCost) as billed_cost,
        strict_sum(stg_focus__charges.EffectiveCost * reporting_fx_rates.fx_rate) as effective_cost_reporting,
        strict_sum(stg_focus__charges.BilledCost * reporting_fx_rates.fx_rate) as billed_cost_reporting,
        count(*) as charge_count
    from stg_focus__charges
    left join reporting_fx_rates
        on reporting_fx_rates.rate_day = stg_focus__charges.x_charge_date
        and reporting_fx_rates.from_currency = stg_focus__charges.BillingCurrency
    where stg_focus__charges.Tags is not null
        and stg_focus__charges.x_charge_date <= getvariable('as_of')
    group by stg_focus__charges.ProviderName, stg_focus__charges.BillingCurrency, stg_focus__charges.Tags
),

entries as (
    select
        ProviderName,
        BillingCurrency,
        unnest(map_entries(tags_map(Tags))) as entry,
        effective_cost,
        billed_cost,
        effective_cost_reporting,
        billed_cost_reporting,
        charge_count
    from by_tags
),

keyed as (
    select
        entries.*,
        normalize_tag_key(entries.entry.key) as tag_key_norm,
        cfg_po_keys.po_key is not null as is_po_key
    from entries
    left join cfg_po_keys on cfg_po_keys.key_norm = normalize_tag_key(entries.entry.key)
)

select
    ProviderName as provider_name,
    BillingCurrency as billing_currency,
    entry.key as tag_key,
    tag_key_norm,
    is_po_key,
    not is_po_key and regexp_matches(tag_key_norm, '^(po|purchase|requisition|ponum|order)') as looks_like_po_key,
    sum(effective_cost) as effective_cost,
    sum(billed_cost) as billed_cost,
    getvariable('reporting_currency') as reporting_currency,
    strict_sum(effective_cost_reporting) as effective_cost_reporting,
    strict_sum(billed_cost_reporting) as billed_cost_reporting,
    sum(charge_count) as charge_count,
    count(distinct entry.value) as distinct_values,
    list_sort(list(distinct entry.value))[1:5] as sample_values,
    getvariable('as_of') as as_of
from keyed
group by provider_name, billing_currency, tag_key, tag_key_norm, is_po_key
