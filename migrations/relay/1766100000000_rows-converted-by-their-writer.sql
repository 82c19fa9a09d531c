-- Up Migration

-- Watched rows are converted to jsonb with the writer's rights, no longer with the relay owner's.
--
-- The hole: relay.capture_row_change is SECURITY DEFINER, so that writers need no rights on the
-- relay schema, and it converted the row with to_jsonb(NEW). For a value of a type made in the
-- database (an enum, a composite or range type; under a domain or in an array too), to_jsonb calls
-- the type's cast to json if there is one, and the type's owner may create that cast, with a
-- function of its own choosing. That function ran as the relay's owner: the owner of a watched
-- table (who may add a column of a type of its own) could write grants, forge events of any topic,
-- read the log, or do anything else the relay's owner may (often a superuser).
--
-- The fix: the conversion, the one step of a watched write that reaches code which neither the
-- writer nor the relay owns, moves to a trigger of its own that fires first, relay_convert
-- (relay.convert_row_change), which is not SECURITY DEFINER: a cast runs as the writer, as the
-- table's own triggers, defaults, checks and index expressions already do. It leaves the rows'
-- jsonb text in a transaction-local setting, tagged with the table's oid; relay_watch
-- (relay.capture_row_change), still SECURITY DEFINER and fired next (row triggers fire in name
-- order), takes it, clears it and appends the event as before, evaluating nothing of the table's.
-- - Writers still need no privilege on the relay schema: a trigger's function is not checked for
--   EXECUTE or schema USAGE when it fires, and convert_row_change names nothing in relay.
-- - The setting is anyone's to set, but relay_convert sets it for every row, and between the two
--   triggers only triggers of the table itself run: only the table's owner (or a role it gave
--   TRIGGER on it) can put data of its choosing into an event, and then only into that table's
--   topic, which capture_row_change takes from its own trigger's arguments. Without relay_convert
--   (dropped, renamed, or not added below) the table's writes fail instead of publishing a row of
--   another table.
--
-- Other ways weighed:
-- - Refusing, at each row, a table that has a column whose type (through domains, arrays,
--   composites and ranges) has a cast to json that is not built in: a catalog query per row, when
--   a query per row was a third of the trigger's time (1765000000000_whole-old-rows.sql); and the
--   query reads the catalog apart from to_jsonb's own lookup, so a cast created in between by
--   another session escapes it, a race the attacker may retry until it wins. Checking once, in
--   relay.watch, misses a column or cast added later, as in the audit.
-- - Watching only tables whose owner already has the relay owner's rights (pg_has_role), in
--   relay.watch and at each row: the cast belongs to the type's owner and its function to that
--   function's owner, who need not be the table's; a check at each row is a query again; and it
--   would take watching other roles' tables away.
-- - Converting in an invoker trigger and appending through a narrow SECURITY DEFINER function: the
--   writers would need USAGE on relay and EXECUTE on it, and could then call it themselves with a
--   topic and data of their choosing.
-- - Converting in a SECURITY DEFINER function owned by a role with no rights at all: the migration
--   would have to create a role, for the whole cluster (CREATEROLE, more than the database owner),
--   and calling it costs about what the trigger added here does.
-- The other SECURITY DEFINER functions reach no code of anyone else's: relay.publish and
-- relay.append_event take jsonb that their caller made with its own rights, relay.stamp_commit
-- reads only its own row of relay.events, relay.claim_log_identity and relay.prune only the relay's
-- tables and built-in types; each fixes its search_path, which relay.pick, called from
-- capture_row_change, inherits. (The example's public.publish_stock_events converts a row as its
-- owner, who is the table's owner: no one gains a right there.)
-- Cost: one more PL/pgSQL trigger per watched row, and its rows' jsonb written as text and parsed
-- again (see README, "Write-path numbers").
--
-- Applying this migration adds relay_convert to every watched table, which needs the TRIGGER
-- privilege on each (the owner or a superuser has it): as with relay.watch itself.

-- The first trigger of every watched write: converts the row to jsonb with the writer's rights and
-- hands it to relay.capture_row_change, the next trigger on the row, in a transaction-local
-- setting of the table's own (relay.converted_row_<its oid>: a trigger of the application that
-- fires between the two and writes another watched table leaves it alone): the table's oid, the
-- row (the new one; the old one for a DELETE) and, for an UPDATE, the old row, one a line (jsonb's
-- text has no line breaks). It is pushed on what the setting holds, after a record separator
-- (chr(30), which jsonb's text escapes too), and relay_watch takes the last one: a trigger between
-- the two that writes the same table pushes and takes its own. Not SECURITY DEFINER, on purpose (see
-- the top of this file); and every name in it is qualified, so that whatever search_path a writer
-- sets, the row is converted by PostgreSQL's own to_jsonb (a SET search_path clause would do the
-- same, at the cost of setting and restoring it for every row).
create function relay.convert_row_change() returns trigger
language plpgsql as $$
declare
  setting pg_catalog.text := pg_catalog.concat('relay.converted_row_', TG_RELID);
  held pg_catalog.text := pg_catalog.current_setting(setting, true);
  converted pg_catalog.text := pg_catalog.concat_ws(E'\n', TG_RELID, pg_catalog.to_jsonb(NEW), pg_catalog.to_jsonb(OLD));
  unused pg_catalog.text;
begin
  unused := pg_catalog.set_config(setting, pg_catalog.concat_ws(pg_catalog.chr(30), nullif(held, ''), converted), true);
  return null;
end $$;
revoke execute on function relay.convert_row_change() from public;

-- The row trigger of every watched table. Arguments: topic, and the watched columns ('' = all).
-- As in 1765000000000_whole-old-rows.sql, except that it takes the row as relay.convert_row_change
-- left it and never converts a value of the table itself: it only reads text and jsonb, with
-- PostgreSQL's own functions. It takes its row off the setting, which is empty again once the
-- outermost write is done, so that no later statement of the writer reads a row it wrote whole
-- (with columns it may not be allowed to select).
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
  elsif watched is not null then
    new_row := relay.pick(new_row, watched);
  end if;
  opens := current_setting('relay.open_xid', true) is distinct from current_xid;
  if opens then
    unused := set_config('relay.open_xid', current_xid, true);
  end if;
  insert into relay.events (topic, event, data, old, changed, opens_commit)
  values (topic, lower(TG_OP), new_row, old_row, changed_columns, opens);
  return null;
end $$;

-- As in the schema's migration, and the trigger relay_convert comes and goes with relay_watch.
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

-- Tables watched already get their relay_convert trigger (on a partitioned table, its partitions
-- get theirs from it, as they got relay_watch).
do $$
declare
  tbl regclass;
begin
  for tbl in
    select t.tgrelid::regclass
      from pg_trigger t
     where t.tgname = 'relay_watch' and t.tgparentid = 0
       and t.tgfoid = 'relay.capture_row_change()'::regprocedure
       and not exists (select from pg_trigger c where c.tgrelid = t.tgrelid and c.tgname = 'relay_convert')
  loop
    begin
      execute format(
        'create trigger relay_convert after insert or update or delete on %s '
        'for each row execute function relay.convert_row_change()', tbl);
    exception when insufficient_privilege then
      raise exception 'relay: cannot add the trigger relay_convert to the watched table %', tbl
        using errcode = 'insufficient_privilege',
              detail = sqlerrm,
              hint = 'Apply this migration as a role with the TRIGGER privilege on every watched table '
                     '(or call relay.unwatch on the table first, and relay.watch again after).';
    end;
  end loop;
end $$;

-- Down Migration

-- Back to the hole this migration closes, for a step back to the release before it. Dropping the
-- relay_convert triggers needs the tables' owner (or a superuser); then the functions are as
-- 1765000000000_whole-old-rows.sql and the schema's migration left them.
do $$
declare
  tbl regclass;
begin
  for tbl in
    select t.tgrelid::regclass
      from pg_trigger t
     where t.tgname = 'relay_convert' and t.tgparentid = 0
       and t.tgfoid = 'relay.convert_row_change()'::regprocedure
  loop
    execute format('drop trigger relay_convert on %s', tbl);
  end loop;
end $$;
drop function relay.convert_row_change();
create or replace function relay.capture_row_change() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  topic text := TG_ARGV[0];
  watched text[] := nullif(TG_ARGV[1], '')::text[];
  new_row jsonb;
  old_row jsonb;
  changed_columns text[];
  current_xid text := pg_current_xact_id()::text;
  opens boolean;
  unused text;
begin
  if TG_OP = 'UPDATE' then
    new_row := to_jsonb(NEW);
    old_row := to_jsonb(OLD);
    if watched is not null then
      new_row := relay.pick(new_row, watched);
      old_row := relay.pick(old_row, watched);
    end if;
    if new_row = old_row then
      return null;
    end if;
    -- A small row is logged whole, and the reader compares it (see the top of this file). Both
    -- rows have the same keys. Changed columns in byte order, as the reader sorts them, whatever
    -- the database's collation.
    if pg_column_size(old_row) > 512 then
      select array_agg(o.key order by o.key collate "C"), jsonb_object_agg(o.key, o.value)
        into changed_columns, old_row
        from jsonb_each(old_row) o
       where new_row -> o.key is distinct from o.value;
    end if;
  else
    new_row := case when TG_OP = 'DELETE' then to_jsonb(OLD) else to_jsonb(NEW) end;
    if watched is not null then
      new_row := relay.pick(new_row, watched);
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
  delete from relay.watches w where w.tbl = unwatch.tbl;
end $$;
