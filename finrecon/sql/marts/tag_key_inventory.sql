-- grain: provider × billing currency × tag key (as delivered), over every charge with tags up to as_of
-- Every tag key seen, with its spend and whether it is read as a PO key (tags.po_keys, compared like PO keys:
-- case, '-', '_', '.', spaces and AWS's `user:` ignored). looks_like_po_key flags near misses ('po num',
-- 'purchase-ord', 'PO_Ref') that are not configured, so an analyst can add them as aliases.
with by_tags as (
    select
        ProviderName,
        BillingCurrency,
        Tags,
        sum(EffectiveCost) as effective_cost,
        sum(BilledCost) as billed_cost,
        count(*) as charge_count
    from charges
    where Tags is not null
        and x_charge_date <= getvariable('as_of')
    group by all
),

entries as (
    select
        ProviderName,
        BillingCurrency,
        unnest(map_entries(tags_map(Tags))) as entry,
        effective_cost,
        billed_cost,
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
    sum(charge_count) as charge_count,
    count(distinct entry.value) as distinct_values,
    list_sort(list(distinct entry.value))[1:5] as sample_values,
    getvariable('as_of') as as_of
from keyed
group by provider_name, billing_currency, tag_key, tag_key_norm, is_po_key
