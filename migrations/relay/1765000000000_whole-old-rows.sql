-- Up Migration

-- Watched writes cost their writers less: the trigger no longer works out which columns a small
-- row's update changed. It logs the whole previous row, and the relay works the change out as it
-- reads the log (src/db/row-change.ts), once per event, on its own CPU. The comparison was a query
-- per row, a third of the trigger's time: 64 of its µs became 43 (pg_stat_user_functions, single-
-- row UPDATEs, PostgreSQL 15, synchronous_commit = off).
-- - Small rows only: a row whose jsonb takes at most 512 bytes (pg_column_size) costs at most that
--   much more log per update. A larger row is compared in the trigger, as before, so that an
--   update of one column of a wide row does not log the whole row twice.
-- - Relays read the log through relay.read_log_commits and relay.read_log_page, which return the
--   events as stored. relay.read_commits and relay.read_page keep their results: they compare a
--   whole previous row in SQL (relay.update_change), so a relay of an earlier version, still
--   running while this migration is applied, delivers every update as before.
-- - PERFORM runs the executor for its one value; an assignment evaluates it as an expression,
--   about 1.5 µs less each. The functions that run at every watched write and every commit now
--   assign what they would PERFORM to a variable nobody reads.

-- The row trigger of every watched table. Arguments: topic, and the watched columns ('' = all).
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

-- As in 1764000000000_bell-without-a-query.sql, with assignments for PERFORM.
create or replace function relay.stamp_commit() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  unused text;
begin
  -- SET CONSTRAINTS ... IMMEDIATE can fire this before the transaction ends; events appended after
  -- that queue it again, and find the transaction stamped already. Both settings are
  -- transaction-local and roll back with a savepoint, together with the stamp they describe.
  unused := set_config('relay.open_xid', '', true);
  if current_setting('relay.stamped_xid', true) = NEW.xid::text then
    return null;
  end if;
  -- A lock of this backend's own: no two committers ever wait for each other here.
  unused := pg_advisory_xact_lock(1919250029, pg_backend_pid());
  insert into relay.commits (pos, xid, committed_at)
  values (nextval('relay.commit_position'), NEW.xid, clock_timestamp());
  unused := set_config('relay.stamped_xid', NEW.xid::text, true);
  -- After the position is drawn: a relay that arms the bell later reads a last_value that covers
  -- this position, and waits for it (relay.read_log_commits).
  if pg_sequence_last_value('relay.wakeup_wanted') = 1 then
    unused := setval('relay.wakeup_wanted', 0);
    -- The payload says nothing: whatever its sender, a notification only makes a relay read.
    unused := pg_notify('relay_events', '');
  end if;
  return null;
end $$;

-- As in the schema's migration, with an assignment for PERFORM.
create or replace function relay.append_event(topic text, event text, data jsonb, old jsonb, changed text[])
returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  current_xid text := pg_current_xact_id()::text;
  opens boolean := current_setting('relay.open_xid', true) is distinct from current_xid;
  unused text;
begin
  if opens then
    -- Transaction-local: rolled back with a savepoint, forgotten at commit.
    unused := set_config('relay.open_xid', current_xid, true);
  end if;
  insert into relay.events (topic, event, data, old, changed, opens_commit)
  values (append_event.topic, append_event.event, append_event.data, append_event.old,
          append_event.changed, opens);
end $$;

-- An update's previous values and changed columns, from an event as stored: where the trigger
-- logged the whole previous row (`changed` is null), the columns whose value `data` does not hold,
-- and their previous values; any other event as it is. For the reads below, and for anyone who
-- reads relay.events in SQL. The relay does the same in src/db/row-change.ts.
create function relay.update_change(data jsonb, old jsonb, changed text[])
returns table (old jsonb, changed text[])
language sql immutable as $$
  select case when update_change.changed is null then d.old else update_change.old end,
         case when update_change.changed is null then d.changed else update_change.changed end
    from (select jsonb_object_agg(o.key, o.value) as old, array_agg(o.key order by o.key collate "C") as changed
            from jsonb_each(case when update_change.changed is null then update_change.old end) o
           where update_change.data -> o.key is distinct from o.value) d
$$;

-- The reads return the events as stored from now on, under new names; relays of this version
-- read those (sql/read-log-commits.sql, sql/read-log-page.sql).
alter function relay.read_commits(bigint, int, boolean) rename to read_log_commits;
alter function relay.read_page(bigint, bigint, bigint, bigint, text, int) rename to read_log_page;

-- The old names keep their results, for relays of an earlier version: the statements they
-- prepared find these by name.
create function relay.read_commits(after_pos bigint, max_events int, arm boolean default true)
returns table (drawn_through bigint, pos bigint, id bigint, ts float8, topic text, event text,
               data jsonb, old jsonb, changed text[])
language sql set search_path = pg_catalog, pg_temp as $$
  select r.drawn_through, r.pos, r.id, r.ts, r.topic, r.event, r.data, u.old, u.changed
    from relay.read_log_commits(after_pos, max_events, arm) r
    left join lateral relay.update_change(r.data, r.old, r.changed) u on true
$$;

create function relay.read_page(after_pos bigint, after_id bigint, through_pos bigint, through_id bigint,
                                only_topic text, max_events int)
returns table (pruned_through bigint, pos bigint, id bigint, ts float8, topic text, event text,
               data jsonb, old jsonb, changed text[])
language sql stable set search_path = pg_catalog, pg_temp as $$
  select r.pruned_through, r.pos, r.id, r.ts, r.topic, r.event, r.data, u.old, u.changed
    from relay.read_log_page(after_pos, after_id, through_pos, through_id, only_topic, max_events) r
    left join lateral relay.update_change(r.data, r.old, r.changed) u on true
$$;

-- Down Migration

-- Events logged with a whole previous row get their change, as relays of an earlier version read
-- them; then the reads and the row trigger are as they were.
update relay.events e
   set (old, changed) = (select u.old, u.changed from relay.update_change(e.data, e.old, e.changed) u)
 where e.changed is null and e.old is not null;
drop function relay.read_commits(bigint, int, boolean);
drop function relay.read_page(bigint, bigint, bigint, bigint, text, int);
alter function relay.read_log_commits(bigint, int, boolean) rename to read_commits;
alter function relay.read_log_page(bigint, bigint, bigint, bigint, text, int) rename to read_page;
drop function relay.update_change(jsonb, jsonb, text[]);
-- The schema's own trigger. (stamp_commit and append_event stay: they do what they did.)
create or replace function relay.capture_row_change() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  topic text := TG_ARGV[0];
  watched text[] := nullif(TG_ARGV[1], '')::text[];
  new_row jsonb;
  old_row jsonb;
  old_values jsonb;
  changed_columns text[];
  current_xid text := pg_current_xact_id()::text;
  opens boolean;
begin
  if TG_OP = 'UPDATE' then
    new_row := to_jsonb(NEW);
    old_row := to_jsonb(OLD);
    if new_row = old_row then
      return null;
    end if;
    if watched is not null then
      new_row := relay.pick(new_row, watched);
      old_row := relay.pick(old_row, watched);
    end if;
    -- Both rows have the same keys.
    select array_agg(o.key order by o.key), jsonb_object_agg(o.key, o.value)
      into changed_columns, old_values
      from jsonb_each(old_row) o
     where new_row -> o.key is distinct from o.value;
    if changed_columns is null then
      return null;
    end if;
  else
    new_row := case when TG_OP = 'DELETE' then to_jsonb(OLD) else to_jsonb(NEW) end;
    if watched is not null then
      new_row := relay.pick(new_row, watched);
    end if;
  end if;
  opens := current_setting('relay.open_xid', true) is distinct from current_xid;
  if opens then
    perform set_config('relay.open_xid', current_xid, true);
  end if;
  insert into relay.events (topic, event, data, old, changed, opens_commit)
  values (topic, lower(TG_OP), new_row, old_values, changed_columns, opens);
  return null;
end $$;
