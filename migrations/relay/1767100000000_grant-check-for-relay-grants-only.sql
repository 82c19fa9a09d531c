-- Up Migration

-- relay.check_grant runs as the relay's owner (SECURITY DEFINER since
-- 1766900000000_grants-warn-of-unknown-columns.sql, to read relay.watches and the catalog whoever
-- calls relay.allow), and its EXECUTE had been left to PUBLIC, on the belief that nobody can call a
-- trigger function. Nobody can call one directly, but a role with EXECUTE on it and USAGE on the
-- relay schema (what a publisher, or a relay's own role, is given) could attach it to a table of
-- its own: a temporary one needs no schema to create in. The trigger then read that table's row as
-- the relay's owner, and a `filter` column of a type of the attacker's own, with an implicit cast to
-- jsonb that the attacker wrote, ran the attacker's function with the owner's rights: it wrote
-- grants and published events. A fixed search_path does not help: casts are found by type.
-- Now:
-- - EXECUTE on it is revoked from PUBLIC, as on every other SECURITY DEFINER function of the
--   schema. The trigger on relay.grants fires as before: PostgreSQL checks a trigger function's
--   EXECUTE when the trigger is created, not when it fires.
-- - It refuses to run for any table but relay.grants, before it reads the row: were EXECUTE granted
--   again, the row it reads still has relay.grants' own column types.
-- - Its warning of a column that no watched table has no longer says that such a filter matches no
--   row change: a filter reads a missing column as null, so ne, not or a test for null on a
--   misspelt column matches every row change, and the grant shows the whole topic.

revoke execute on function relay.check_grant() from public;

-- As in 1766900000000_grants-warn-of-unknown-columns.sql, and it runs for relay.grants only, and
-- its warning says what a filter on a missing column matches.
create or replace function relay.check_grant() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  problem text;
  watched_columns text[];
  unknown text;
begin
  if TG_RELID <> 'relay.grants'::regclass then
    raise exception 'relay.check_grant checks rows of relay.grants, not of %', TG_RELID::regclass
      using errcode = 'insufficient_privilege';
  end if;
  problem := relay.filter_error(NEW.filter);
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
        using detail = 'Row changes do not carry such a column, and a filter reads it as null: an equality or a comparison on it matches none of them, but ne, not or a test for null matches them all. A listed column that they do not carry is never sent.',
              hint = 'Check the spelling; a column that only events of relay.publish carry is fine.';
    end if;
  end if;
  return NEW;
end $$;

-- Down Migration

-- EXECUTE stays revoked from PUBLIC: nothing needs it, and going back a migration should not open
-- the hole again. The function is as in 1766900000000_grants-warn-of-unknown-columns.sql.
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
