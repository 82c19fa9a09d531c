-- Up Migration

-- relay.allow warns of a column that no table watched as the grant's topic has: one its columns
-- list names, or one its filter tests. A misspelt column made a grant that silently matched no
-- row change (a filter on "hopsital_id") or gave subscribers nothing of a row (columns
-- array['nope']). It is a warning, not an error: a topic's events from relay.publish may carry
-- any key, and a topic that no table watches (yet) is not checked at all.
-- - Watched columns are those of the watch's column list, or the table's own (virtual generated
--   columns left out: events never carry them, see 1766700000000_virtual-columns-left-out.sql).
-- - check_grant becomes SECURITY DEFINER to read relay.watches and the catalog whoever calls
--   relay.allow; it is a trigger function, which nobody can call directly, and it runs no SQL
--   made from its input.

-- The column names a filter tests, at any depth of and / or / not (the filter is valid: see
-- relay.filter_error).
create function relay.filter_columns(filter jsonb) returns text[]
language sql immutable set search_path = pg_catalog, pg_temp as $$
  with recursive nodes(node) as (
    select filter
    union all
    select child.node
      from nodes n
     cross join lateral jsonb_each(case when jsonb_typeof(n.node) = 'object' then n.node else '{}' end) e(key, value)
     cross join lateral (
       select a.value as node from jsonb_array_elements(e.value) a(value)
        where e.key in ('and', 'or') and jsonb_typeof(e.value) = 'array'
       union all
       select e.value where e.key = 'not'
     ) child
  )
  select coalesce(array_agg(distinct e.key order by e.key), '{}')
    from nodes n
   cross join lateral jsonb_each(case when jsonb_typeof(n.node) = 'object' then n.node else '{}' end) e(key, value)
   where e.key not in ('and', 'or', 'not')
$$;

-- As in 1763800000000_relay-schema.sql, and a warning names the columns that no table watched as
-- the topic has.
create or replace function relay.check_grant() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  problem text := relay.filter_error(NEW.filter);
  watched_columns text[];
  unknown text;
begin
  if problem is not null then
    raise exception 'relay: invalid filter: %', problem using errcode = 'invalid_parameter_value';
  end if;
  if NEW.columns is not null and (cardinality(NEW.columns) = 0 or array_position(NEW.columns, null) is not null) then
    raise exception 'relay: columns must be null or a non-empty list of column names'
      using errcode = 'invalid_parameter_value';
  end if;
  select array_agg(c.name) into watched_columns
    from relay.watches w
    join pg_class t on t.oid = w.tbl
   cross join lateral (
     select a.attname::text as name
       from pg_attribute a
      where a.attrelid = w.tbl and a.attnum > 0 and not a.attisdropped and a.attgenerated <> 'v'
        and (w.columns is null or a.attname = any (w.columns))
   ) c
   where w.topic = NEW.topic;
  if watched_columns is not null then
    select string_agg(format('%I', n.name), ', ' order by n.name) into unknown
      from unnest(relay.filter_columns(NEW.filter) || coalesce(NEW.columns, '{}')) n(name)
     where n.name <> all (watched_columns);
    if unknown is not null then
      raise warning 'relay: no table watched as topic % has the column(s) % that this grant names', quote_literal(NEW.topic), unknown
        using detail = 'A filter on a column that row changes do not carry matches none of them, and a listed column that they do not carry is never sent.',
              hint = 'Check the spelling; a column that only events of relay.publish carry is fine.';
    end if;
  end if;
  return NEW;
end $$;

-- Down Migration

drop function relay.filter_columns(jsonb);

-- As in 1763800000000_relay-schema.sql.
create or replace function relay.check_grant() returns trigger
language plpgsql as $$
declare
  problem text := relay.filter_error(NEW.filter);
begin
  if problem is not null then
    raise exception 'relay: invalid filter: %', problem using errcode = 'invalid_parameter_value';
  end if;
  if NEW.columns is not null and (cardinality(NEW.columns) = 0 or array_position(NEW.columns, null) is not null) then
    raise exception 'relay: columns must be null or a non-empty list of column names'
      using errcode = 'invalid_parameter_value';
  end if;
  return NEW;
end $$;
