-- Up Migration

-- Events leave out virtual generated columns, which PostgreSQL 18 added (and made the default kind
-- of `GENERATED ALWAYS AS (...)` without STORED).
--
-- The hole: PostgreSQL never computes a virtual generated column for a trigger: the row a trigger
-- gets holds null there. relay_convert converts that row, so every event of such a table carried
-- the column as null (`"total": null` where the table reads 42), an update that changed the
-- column's expression inputs did not name it in `changed`, and a grant or filter on it matched as
-- if it were null. Nothing else could tell subscribers otherwise.
-- - The row triggers cannot compute the column (its expression is the table's, and evaluating it
--   again for each row would cost a query), so the events leave it out, as logical replication
--   does: a missing column is missing, not null.
-- - relay.watch, watching every column of a table that has virtual generated columns, gives their
--   names to relay_watch as a third argument; relay.capture_row_change removes them from the
--   rows. Other watches have a trigger of two arguments, as before, and cost one more comparison
--   per row (TG_NARGS).
-- - relay.watch refuses a column list that names one: it could only ever be null. (A watch made
--   earlier with such a list gets the third argument from this migration, after its list.)
-- - A virtual generated column added after relay.watch is published as null until relay.watch is
--   called again (as a renamed column of a watch with a column list, see README).
--
-- Applying this migration re-creates the relay_watch trigger of every watched table that has a
-- virtual generated column (none before PostgreSQL 18), which needs the table's owner.

-- The row trigger of every watched table. Arguments: topic, the watched columns ('' = all), and the
-- virtual generated columns when the table has some. As in 1766300000000_events-a-relay-can-hold.sql,
-- and the virtual generated columns are left out.
create or replace function relay.capture_row_change() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  topic text := TG_ARGV[0];
  watched text[] := nullif(TG_ARGV[1], '')::text[];
  setting text := 'relay.converted_row_' || TG_RELID::text;
  converted text := current_setting(setting, true);
  below text := '';
  new_row jsonb;
  old_row jsonb;
  changed_columns text[];
  current_xid text := pg_current_xact_id()::text;
  opens boolean;
  unused text;
  event_bytes bigint;
begin
  -- The last row pushed is this row's; what is under it belongs to writes this one is nested in.
  if strpos(converted, chr(30)) > 0 then
    below := left(converted, length(converted) - length(split_part(converted, chr(30), -1)) - 1);
    converted := split_part(converted, chr(30), -1);
  end if;
  unused := set_config(setting, below, true);
  if split_part(converted, E'\n', 1) is distinct from TG_RELID::text then
    raise exception 'relay: % has no converted row (its trigger relay_convert is missing or was renamed)', TG_RELID::regclass
      using errcode = 'object_not_in_prerequisite_state',
            hint = format('Call relay.watch(%L, ...) again.', TG_RELID::regclass::text);
  end if;
  new_row := split_part(converted, E'\n', 2)::jsonb;
  if TG_OP = 'UPDATE' then
    old_row := split_part(converted, E'\n', 3)::jsonb;
    if watched is not null then
      new_row := relay.pick(new_row, watched);
      old_row := relay.pick(old_row, watched);
    end if;
    -- Virtual generated columns: null in a trigger's row, whatever the table holds.
    if TG_NARGS > 2 then
      new_row := new_row - TG_ARGV[2]::text[];
      old_row := old_row - TG_ARGV[2]::text[];
    end if;
    if new_row = old_row then
      return null;
    end if;
    -- A small row is logged whole, and the reader compares it (see 1765000000000_whole-old-rows.sql).
    if pg_column_size(old_row) > 512 then
      select array_agg(o.key order by o.key collate "C"), jsonb_object_agg(o.key, o.value)
        into changed_columns, old_row
        from jsonb_each(old_row) o
       where new_row -> o.key is distinct from o.value;
    end if;
  else
    if watched is not null then
      new_row := relay.pick(new_row, watched);
    end if;
    if TG_NARGS > 2 then
      new_row := new_row - TG_ARGV[2]::text[];
    end if;
  end if;
  -- The converted text holds the whole rows, the event at most as much (see 1766300000000_events-a-relay-can-hold.sql).
  if octet_length(converted) > 268435456 then
    event_bytes := octet_length(new_row::text) + coalesce(octet_length(old_row::text), 0);
    if event_bytes > 268435456 then
      raise exception 'relay: the % event of % would be % bytes of JSON text, more than the 268435456 (256 MiB) a relay can deliver',
                      lower(TG_OP), TG_RELID::regclass, event_bytes
        using errcode = 'program_limit_exceeded';
    end if;
  end if;
  opens := current_setting('relay.open_xid', true) is distinct from current_xid;
  if opens then
    unused := set_config('relay.open_xid', current_xid, true);
  end if;
  insert into relay.events (topic, event, data, old, changed, opens_commit)
  values (topic, lower(TG_OP), new_row, old_row, changed_columns, opens);
  return null;
end $$;

-- As in 1766600000000_partitioned-watches.sql, and the table's virtual generated columns are
-- refused in the column list and given to relay_watch, which leaves them out.
create or replace function relay.watch(tbl regclass, topic text, columns text[] default null) returns void
language plpgsql as $$
declare
  missing text;
  above record;
  watched_below text;
  unwatch_calls text;
  below_count int;
  virtual_columns text[];
  named_virtual text;
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
  -- attgenerated 'v' (PostgreSQL 18 and later): a virtual generated column.
  select array_agg(a.attname::text order by a.attnum) into virtual_columns
    from pg_attribute a
   where a.attrelid = tbl and a.attnum > 0 and not a.attisdropped and a.attgenerated = 'v';
  select string_agg(format('%I', c), ', ') into named_virtual
    from unnest(columns) c
   where c = any(virtual_columns);
  if named_virtual is not null then
    raise exception 'relay.watch: % is a virtual generated column of %, which PostgreSQL does not compute for triggers', named_virtual, tbl
      using errcode = 'feature_not_supported',
            hint = 'Leave it out of the column list, or make it a STORED generated column.';
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
  -- A watch of every column gets the virtual generated columns, when there are any, as a third
  -- argument: left out of its events. (A column list names none of them.)
  execute format(
    'create trigger relay_watch after insert or update or delete on %s '
    'for each row execute function relay.capture_row_change(%L, %L%s)',
    tbl, topic, coalesce(columns::text, ''),
    case when columns is null and virtual_columns is not null then format(', %L', virtual_columns::text) else '' end);
  insert into relay.watches as w (tbl, topic, columns) values (watch.tbl, watch.topic, watch.columns)
    on conflict on constraint watches_pkey do update set topic = excluded.topic, columns = excluded.columns;
end $$;

-- Tables watched already that have virtual generated columns get a relay_watch that leaves them
-- out (with their column lists as they are: a list that names one loses it).
do $$
declare
  w record;
  virtual_columns text[];
begin
  for w in
    select r.tbl, r.topic, r.columns
      from relay.watches r
     where exists (select from pg_trigger t where t.tgrelid = r.tbl and t.tgname = 'relay_watch')
  loop
    select array_agg(a.attname::text order by a.attnum) into virtual_columns
      from pg_attribute a
     where a.attrelid = w.tbl and a.attnum > 0 and not a.attisdropped and a.attgenerated = 'v';
    continue when virtual_columns is null;
    begin
      execute format('drop trigger relay_watch on %s', w.tbl);
      execute format(
        'create trigger relay_watch after insert or update or delete on %s '
        'for each row execute function relay.capture_row_change(%L, %L, %L)',
        w.tbl, w.topic, coalesce(w.columns::text, ''), virtual_columns::text);
    exception when insufficient_privilege then
      raise exception 'relay: cannot re-create the trigger relay_watch of the watched table %, which has virtual generated columns', w.tbl
        using errcode = 'insufficient_privilege',
              detail = sqlerrm,
              hint = 'Apply this migration as the owner of the table (or a superuser).';
    end;
  end loop;
end $$;

-- Down Migration

-- Watches of tables with virtual generated columns get back a relay_watch of two arguments (the
-- column published as null again); then the functions are as 1766300000000_events-a-relay-can-hold.sql
-- and 1766600000000_partitioned-watches.sql left them.
do $$
declare
  w record;
begin
  for w in
    select r.tbl, r.topic, r.columns
      from relay.watches r
     where exists (select from pg_trigger t where t.tgrelid = r.tbl and t.tgname = 'relay_watch' and t.tgnargs > 2)
  loop
    execute format('drop trigger relay_watch on %s', w.tbl);
    execute format(
      'create trigger relay_watch after insert or update or delete on %s '
      'for each row execute function relay.capture_row_change(%L, %L)',
      w.tbl, w.topic, coalesce(w.columns::text, ''));
  end loop;
end $$;

create or replace function relay.capture_row_change() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  topic text := TG_ARGV[0];
  watched text[] := nullif(TG_ARGV[1], '')::text[];
  setting text := 'relay.converted_row_' || TG_RELID::text;
  converted text := current_setting(setting, true);
  below text := '';
  new_row jsonb;
  old_row jsonb;
  changed_columns text[];
  current_xid text := pg_current_xact_id()::text;
  opens boolean;
  unused text;
  event_bytes bigint;
begin
  if strpos(converted, chr(30)) > 0 then
    below := left(converted, length(converted) - length(split_part(converted, chr(30), -1)) - 1);
    converted := split_part(converted, chr(30), -1);
  end if;
  unused := set_config(setting, below, true);
  if split_part(converted, E'\n', 1) is distinct from TG_RELID::text then
    raise exception 'relay: % has no converted row (its trigger relay_convert is missing or was renamed)', TG_RELID::regclass
      using errcode = 'object_not_in_prerequisite_state',
            hint = format('Call relay.watch(%L, ...) again.', TG_RELID::regclass::text);
  end if;
  new_row := split_part(converted, E'\n', 2)::jsonb;
  if TG_OP = 'UPDATE' then
    old_row := split_part(converted, E'\n', 3)::jsonb;
    if watched is not null then
      new_row := relay.pick(new_row, watched);
      old_row := relay.pick(old_row, watched);
    end if;
    if new_row = old_row then
      return null;
    end if;
    if pg_column_size(old_row) > 512 then
      select array_agg(o.key order by o.key collate "C"), jsonb_object_agg(o.key, o.value)
        into changed_columns, old_row
        from jsonb_each(old_row) o
       where new_row -> o.key is distinct from o.value;
    end if;
  elsif watched is not null then
    new_row := relay.pick(new_row, watched);
  end if;
  if octet_length(converted) > 268435456 then
    event_bytes := octet_length(new_row::text) + coalesce(octet_length(old_row::text), 0);
    if event_bytes > 268435456 then
      raise exception 'relay: the % event of % would be % bytes of JSON text, more than the 268435456 (256 MiB) a relay can deliver',
                      lower(TG_OP), TG_RELID::regclass, event_bytes
        using errcode = 'program_limit_exceeded';
    end if;
  end if;
  opens := current_setting('relay.open_xid', true) is distinct from current_xid;
  if opens then
    unused := set_config('relay.open_xid', current_xid, true);
  end if;
  insert into relay.events (topic, event, data, old, changed, opens_commit)
  values (topic, lower(TG_OP), new_row, old_row, changed_columns, opens);
  return null;
end $$;

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
