-- Up Migration

-- relay.watch and relay.unwatch refuse, with errors that name the tables, the calls that would
-- watch one table of a partition tree twice. Before, PostgreSQL refused them in its own words,
-- from inside the functions:
-- - relay.watch of a partitioned table with a partition watched on its own (at any depth):
--   `trigger "relay_convert" for relation "<partition>" already exists`, which names neither the
--   watch that stands in the way nor what to do about it.
-- - relay.watch or relay.unwatch of a partition of a watched table (at any depth): `cannot drop
--   trigger relay_watch on table <partition> because trigger relay_watch on table <parent> requires
--   it`, with PostgreSQL's hint to drop the parent's trigger: doing so leaves its relay_convert
--   behind and its row in relay.watches.
-- Both now fail with object_not_in_prerequisite_state, naming the partition, the watched table and
-- its topic, before anything is dropped.
--
-- A partitioned table watched while a partition of it is watched on its own is refused, not made
-- to take that partition over, even with the same topic and columns (one rule; the way out is one
-- call). The partition's watch is someone's choice of topic and columns, with grants and
-- subscribers of its own: replacing it would move its rows to another topic (or publish columns its
-- own list left out) with no one told, from a call that never named that table, as a deploy script
-- that watches the parent would. relay.watch replaces the watch only of the table it is given.
-- Refused, the call names each such partition and the relay.unwatch calls to make, and both in one
-- transaction lose nothing: relay.unwatch takes the partition's ACCESS EXCLUSIVE lock (DROP
-- TRIGGER), so its writes wait for the commit and are then published with the parent's topic. It
-- is also what PostgreSQL does to ATTACH PARTITION of a table watched on its own to a watched table
-- (the trigger names clash), and the mirror of the refusal the other way round (a partition cannot
-- be watched on its own while a table above it is).
--
-- A partition of a watched table is refused by relay.unwatch too, not passed over as an unwatched
-- table is: it would go on publishing after a call that seemed to stop it. The error says what
-- does stop it (relay.unwatch of the watched table, or detaching the partition).
--
-- What these functions cannot see, being no part of the DDL (an event trigger would, but only a
-- superuser may create one, and the migrations need only the database's owner):
-- - ATTACH PARTITION of a table watched on its own, to a watched table: PostgreSQL's error,
--   `trigger "relay_convert" for relation "<table>" already exists`; README says to unwatch it
--   first.
-- - DETACH PARTITION: PostgreSQL drops the triggers the partition got from its parent, so the
--   detached table publishes nothing (it is no longer the watched table's); relay.watch it to
--   publish it on its own.
-- - A watch or an ATTACH PARTITION that another session commits between the checks below and
--   CREATE TRIGGER: the call still fails, as before, with PostgreSQL's own error, and changes
--   nothing. Locking the tree first would close that, but LOCK TABLE in a mode that keeps ATTACH
--   out needs UPDATE, DELETE or TRUNCATE (or MAINTAIN) on the table, which relay.watch has never
--   asked of its caller (on the table, TRIGGER is enough).
--
-- The checks are two catalog queries in relay.watch and one in relay.unwatch; the row triggers are
-- unchanged. A relay_watch or relay_convert trigger that a table has of its own (tgparentid = 0)
-- is a watch of that table; one that it got from its parent (tgparentid <> 0) is its parent's.

-- The nearest table above tbl in its partition tree that is watched (pg_partition_ancestors lists
-- tbl itself first, then its parent, and so on up): tbl's rows are published with its topic. Also
-- tbl's parent, and the path from it up to that table for messages ("p2, a partition of p"),
-- named as the caller's search_path names them. No row when none is.
create function relay.watched_ancestor(tbl regclass, out ancestor regclass, out topic text, out parent regclass,
                                       out path text)
language sql stable as $$
  select a.relid, w.topic,
         (select p.relid from pg_partition_ancestors(watched_ancestor.tbl) with ordinality p(relid, level) where p.level = 2),
         (select string_agg(p.relid::text, ', a partition of ' order by p.level)
            from pg_partition_ancestors(watched_ancestor.tbl) with ordinality p(relid, level)
           where p.level between 2 and a.level)
    from pg_partition_ancestors(watched_ancestor.tbl) with ordinality a(relid, level)
    left join relay.watches w on w.tbl = a.relid
   where a.level > 1
     and exists (select from pg_trigger t
                  where t.tgrelid = a.relid and t.tgname in ('relay_watch', 'relay_convert') and t.tgparentid = 0)
   order by a.level
   limit 1
$$;
revoke execute on function relay.watched_ancestor(regclass) from public;

-- As in 1766100000000_rows-converted-by-their-writer.sql, and a table of a partition tree that has
-- a watch above or below it is refused.
create or replace function relay.watch(tbl regclass, topic text, columns text[] default null) returns void
language plpgsql as $$
declare
  missing text;
  above record;
  watched_below text;
  unwatch_calls text;
  below_count int;
begin
  if topic is null or length(topic) not between 1 and 256 then
    raise exception 'relay.watch: topic must be 1 to 256 characters' using errcode = 'invalid_parameter_value';
  end if;
  if columns is not null then
    select string_agg(format('%I', c), ', ') into missing
      from unnest(columns) c
     where c is null or not exists (
       select 1 from pg_attribute a
        where a.attrelid = tbl and a.attname = c and a.attnum > 0 and not a.attisdropped);
    if missing is not null or cardinality(columns) = 0 then
      raise exception 'relay.watch: % has no column %', tbl, coalesce(missing, '(empty list)')
        using errcode = 'undefined_column';
    end if;
  end if;
  select * into above from relay.watched_ancestor(tbl);
  if above.ancestor is not null then
    raise exception 'relay.watch: cannot watch % on its own: it is a partition of %, which is watched (topic %)',
        tbl, above.path, coalesce(quote_literal(above.topic), 'unknown')
      using errcode = 'object_not_in_prerequisite_state',
            detail = format('Every row of %s is published with the topic and columns of %s.', tbl, above.ancestor),
            hint = format('To watch %s on its own, detach it first (alter table %s detach partition %s); or call '
                          'relay.watch(%L, ...) to change what every partition of %s publishes.',
                          tbl, above.parent, tbl, above.ancestor::text, above.ancestor);
  end if;
  -- Tables below this one (partitions, at any depth) watched on their own.
  select string_agg(format('%s (topic %s)', d.relid, coalesce(quote_literal(w.topic), 'unknown')), ', '
                    order by d.level, d.relid::text),
         string_agg(format('relay.unwatch(%L)', d.relid::text), ', ' order by d.level, d.relid::text),
         count(*)
    into watched_below, unwatch_calls, below_count
    from pg_partition_tree(watch.tbl) d
    left join relay.watches w on w.tbl = d.relid
   where d.relid <> watch.tbl
     and exists (select from pg_trigger t
                  where t.tgrelid = d.relid and t.tgname in ('relay_watch', 'relay_convert') and t.tgparentid = 0);
  if watched_below is not null then
    raise exception 'relay.watch: cannot watch %: its %', tbl,
        case when below_count = 1 then format('partition %s is watched on its own', watched_below)
             else format('partitions %s are watched on their own', watched_below) end
      using errcode = 'object_not_in_prerequisite_state',
            detail = format('Watching %s publishes every partition of it with its topic and columns; a partition '
                            'is watched either on its own or through %s, not both.', tbl, tbl),
            hint = format('Call %s first, in the same transaction as relay.watch(%L, ...), so that no write goes '
                          'unpublished in between.', unwatch_calls, tbl::text);
  end if;
  if exists (select from pg_trigger t where t.tgrelid = tbl and t.tgname = 'relay_watch') then
    execute format('drop trigger relay_watch on %s', tbl);
  end if;
  -- Row triggers fire in the order of their names: relay_convert, then relay_watch.
  if not exists (select from pg_trigger t where t.tgrelid = tbl and t.tgname = 'relay_convert') then
    execute format(
      'create trigger relay_convert after insert or update or delete on %s '
      'for each row execute function relay.convert_row_change()', tbl);
  end if;
  execute format(
    'create trigger relay_watch after insert or update or delete on %s '
    'for each row execute function relay.capture_row_change(%L, %L)',
    tbl, topic, coalesce(columns::text, ''));
  insert into relay.watches as w (tbl, topic, columns) values (watch.tbl, watch.topic, watch.columns)
    on conflict on constraint watches_pkey do update set topic = excluded.topic, columns = excluded.columns;
end $$;

-- As in 1766100000000_rows-converted-by-their-writer.sql, and a partition of a watched table is
-- refused: it goes on publishing while that table is watched.
create or replace function relay.unwatch(tbl regclass) returns void
language plpgsql as $$
declare
  above record;
begin
  select * into above from relay.watched_ancestor(tbl);
  if above.ancestor is not null then
    raise exception 'relay.unwatch: cannot unwatch % on its own: it is a partition of %, which is watched (topic %)',
        tbl, above.path, coalesce(quote_literal(above.topic), 'unknown')
      using errcode = 'object_not_in_prerequisite_state',
            detail = format('Every row of %s is published with the topic and columns of %s, as long as it is a '
                            'partition of it.', tbl, above.ancestor),
            hint = format('relay.unwatch(%L) stops every partition of %s; detaching %s (alter table %s detach '
                          'partition %s) stops it alone.', above.ancestor::text, above.ancestor, tbl, above.parent, tbl);
  end if;
  if exists (select from pg_trigger t where t.tgrelid = tbl and t.tgname = 'relay_watch') then
    execute format('drop trigger relay_watch on %s', tbl);
  end if;
  if exists (select from pg_trigger t where t.tgrelid = tbl and t.tgname = 'relay_convert') then
    execute format('drop trigger relay_convert on %s', tbl);
  end if;
  delete from relay.watches w where w.tbl = unwatch.tbl;
end $$;

-- Down Migration

-- As 1766100000000_rows-converted-by-their-writer.sql left them, without relay.watched_ancestor.
create or replace function relay.watch(tbl regclass, topic text, columns text[] default null) returns void
language plpgsql as $$
declare
  missing text;
begin
  if topic is null or length(topic) not between 1 and 256 then
    raise exception 'relay.watch: topic must be 1 to 256 characters' using errcode = 'invalid_parameter_value';
  end if;
  if columns is not null then
    select string_agg(format('%I', c), ', ') into missing
      from unnest(columns) c
     where c is null or not exists (
       select 1 from pg_attribute a
        where a.attrelid = tbl and a.attname = c and a.attnum > 0 and not a.attisdropped);
    if missing is not null or cardinality(columns) = 0 then
      raise exception 'relay.watch: % has no column %', tbl, coalesce(missing, '(empty list)')
        using errcode = 'undefined_column';
    end if;
  end if;
  if exists (select from pg_trigger t where t.tgrelid = tbl and t.tgname = 'relay_watch') then
    execute format('drop trigger relay_watch on %s', tbl);
  end if;
  -- Row triggers fire in the order of their names: relay_convert, then relay_watch.
  if not exists (select from pg_trigger t where t.tgrelid = tbl and t.tgname = 'relay_convert') then
    execute format(
      'create trigger relay_convert after insert or update or delete on %s '
      'for each row execute function relay.convert_row_change()', tbl);
  end if;
  execute format(
    'create trigger relay_watch after insert or update or delete on %s '
    'for each row execute function relay.capture_row_change(%L, %L)',
    tbl, topic, coalesce(columns::text, ''));
  insert into relay.watches as w (tbl, topic, columns) values (watch.tbl, watch.topic, watch.columns)
    on conflict on constraint watches_pkey do update set topic = excluded.topic, columns = excluded.columns;
end $$;

create or replace function relay.unwatch(tbl regclass) returns void
language plpgsql as $$
begin
  if exists (select from pg_trigger t where t.tgrelid = tbl and t.tgname = 'relay_watch') then
    execute format('drop trigger relay_watch on %s', tbl);
  end if;
  if exists (select from pg_trigger t where t.tgrelid = tbl and t.tgname = 'relay_convert') then
    execute format('drop trigger relay_convert on %s', tbl);
  end if;
  delete from relay.watches w where w.tbl = unwatch.tbl;
end $$;

drop function relay.watched_ancestor(regclass);
