-- grain: one distinct Tags value that carries a configured PO key with a non-empty value
-- Parsed once per distinct Tags value, not once per charge. When several keys match, the first in
-- tags.po_keys order wins (then the key's own spelling, for a stable result).
-- publish: table
with distinct_tags as (
    select distinct Tags
    from stg_focus__charges
    where Tags is not null
),

tag_entries as (
    select Tags, unnest(map_entries(tags_map(Tags))) as entry
    from distinct_tags
),

po_entries as (
    select
        tag_entries.Tags,
        tag_entries.entry.key as po_tag_key,
        tag_entries.entry.value as po_tag_value,
        cfg_po_keys.key_position,
        normalize_po_number(tag_entries.entry.value, getvariable('po_default_prefix')) as po_number_norm
    from tag_entries
    inner join cfg_po_keys on normalize_tag_key(tag_entries.entry.key) = cfg_po_keys.key_norm
)

select Tags, po_tag_key, po_tag_value, po_number_norm
from po_entries
where po_number_norm is not null
qualify row_number() over (partition by Tags order by key_position, po_tag_key) = 1
