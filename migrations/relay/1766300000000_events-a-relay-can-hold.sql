-- Up Migration

-- An event is refused when its JSON text (data and old together) would be more than 256 MiB: the
-- watched write, relay.publish or relay.append_event fails with program_limit_exceeded, and
-- nothing is logged.
--
-- The hole: relay.events stores jsonb, and the relay reads data and old as JSON text, each made
-- into one JavaScript string by node-postgres. V8 makes no string longer than 2^29 - 24 UTF-16
-- units (about 512 MiB), and the failure is thrown in node-postgres's socket handler, where nothing
-- catches it: the relay process died ("Cannot create a string longer than 0x1fffffe8
-- characters"). jsonb's own limit (256 MB stored) does not bound its text: a number keeps all its
-- digits (1e131071 is stored in about 10 bytes and written as 131,072 characters) and a control
-- character is written as 6. Any role that may write a watched table with a jsonb or numeric[]
-- column could log, in one row stored in 1,369 bytes, an event of 550 million characters
-- (jsonb_agg(1e131071::numeric) of 4,200 rows): every relay died at its next read of the log, and
-- after a restart at every replay that passed it (each client resuming with its last cursor), for
-- as long as retention kept it.
--
-- 256 MiB: half what V8 can hold, so that a frame that carries data and old together is a string
-- V8 can make too; far beyond any event a subscriber can receive under RELAY_MAX_BACKPRESSURE.
-- - The row trigger measures what it already holds: the converted row's text bounds the event's
--   (the event keeps some columns of it, never more), so a row of ordinary size costs one
--   comparison; only a row over the limit has its event measured exactly.
-- - relay.publish and relay.append_event measure the text of what they are given.
-- Events logged before this migration are not checked.

-- As in 1766100000000_rows-converted-by-their-writer.sql, and the event's size is checked.
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
  -- The converted text holds the whole rows, the event at most as much (see the top of this file).
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

-- As in 1766000000000_positions-after-last-write.sql, and the event's size is checked (for
-- relay.publish, which calls it).
create or replace function relay.append_event(topic text, event text, data jsonb, old jsonb, changed text[])
returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  current_xid text := pg_current_xact_id()::text;
  opens boolean := current_setting('relay.open_xid', true) is distinct from current_xid;
  unused text;
  event_bytes bigint := octet_length(append_event.data::text) + coalesce(octet_length(append_event.old::text), 0);
begin
  if event_bytes > 268435456 then
    raise exception 'relay: the event % of topic % would be % bytes of JSON text, more than the 268435456 (256 MiB) a relay can deliver',
                    append_event.event, append_event.topic, event_bytes
      using errcode = 'program_limit_exceeded';
  end if;
  if opens then
    -- Transaction-local: rolled back with a savepoint, forgotten at commit.
    unused := set_config('relay.open_xid', current_xid, true);
  end if;
  insert into relay.events (topic, event, data, old, changed, opens_commit)
  values (append_event.topic, append_event.event, append_event.data, append_event.old,
          append_event.changed, opens);
end $$;

-- Down Migration

-- As 1766100000000_rows-converted-by-their-writer.sql and 1766000000000_positions-after-last-write.sql left them.
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
  opens := current_setting('relay.open_xid', true) is distinct from current_xid;
  if opens then
    unused := set_config('relay.open_xid', current_xid, true);
  end if;
  insert into relay.events (topic, event, data, old, changed, opens_commit)
  values (topic, lower(TG_OP), new_row, old_row, changed_columns, opens);
  return null;
end $$;

create or replace function relay.append_event(topic text, event text, data jsonb, old jsonb, changed text[])
returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  current_xid text := pg_current_xact_id()::text;
  opens boolean := current_setting('relay.open_xid', true) is distinct from current_xid;
  unused text;
begin
  if opens then
    unused := set_config('relay.open_xid', current_xid, true);
  end if;
  insert into relay.events (topic, event, data, old, changed, opens_commit)
  values (append_event.topic, append_event.event, append_event.data, append_event.old,
          append_event.changed, opens);
end $$;
