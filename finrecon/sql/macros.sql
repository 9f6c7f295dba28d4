-- Shared macros: the PO-resolution rules of DESIGN §4, defined once and used by every model.

-- A tag key for comparison: case-insensitive, ignoring '-', '_', '.' and whitespace ("PO-Number" = "po_number"),
-- and AWS's namespace for user-defined tags ("user:po_number" = "po_number").
create or replace temp macro normalize_tag_key(tag_key) as
    regexp_replace(lower(regexp_replace(tag_key, '^user:', '', 'i')), '[-_.\s]', '', 'g');

-- Trim, upper-case, keep only A-Z and 0-9.
create or replace temp macro po_alnum(value) as
    regexp_replace(upper(trim(value)), '[^A-Z0-9]', '', 'g');

-- A PO number for comparison: po_alnum, then the default prefix for an all-digit value; NULL when nothing is left.
-- A value with any non-ASCII character (a Cyrillic 'Р', a full-width digit, a zero-width space) is compared as
-- written, trimmed and upper-cased: stripping that character would turn a look-alike into the real PO number.
create or replace temp macro normalize_po_number(value, default_prefix) as
    case
        when regexp_matches(value, '[^\x00-\x7F]') then upper(trim(value))
        when po_alnum(value) = '' then null
        when default_prefix is not null and regexp_full_match(po_alnum(value), '[0-9]+')
            then po_alnum(default_prefix) || po_alnum(value)
        else po_alnum(value)
    end;

-- Tags (JSON object text) as a map of text values; a key without a value reads as 'true' (FOCUS KeyValueFormat).
create or replace temp macro tags_map(tags) as
    json_transform(tags, '"MAP(VARCHAR, VARCHAR)"');

-- Σ of a converted amount that is NULL when any row lacks its FX rate: a missing rate never counts as 0 or 1.0.
-- For a filtered sum pass `case when <condition> then <amount> else 0 end`.
create or replace temp macro strict_sum(amount) as
    case when count(*) filter (where amount is null) = 0 then sum(amount) end;

-- The data-quality flags of one charge (charges.x_quality_flags): reported, never corrected.
create or replace temp macro quality_flags(charge_category, list_cost, contracted_cost, commitment_discount_id,
                                           effective_cost) as
    list_filter([
        case when charge_category = 'Usage' and list_cost is null then 'missing_list_cost' end,
        case when list_cost < contracted_cost then 'list_below_contracted' end,
        case when charge_category = 'Purchase' and commitment_discount_id is not null and effective_cost > 0
            then 'commitment_purchase_with_effective_cost' end,
        case when charge_category = 'Usage' and list_cost >= 0 and effective_cost > list_cost then 'negative_savings' end
    ], lambda flag: flag is not null);
