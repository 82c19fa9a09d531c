-- Up Migration

-- The relay's own schema. Nothing here depends on the example application.
create schema if not exists relay;

-- ---------------------------------------------------------------------------------------------
-- The event log.
--
-- Cursors must follow commit order (see README, "How commit order is kept"). Row triggers append
-- events while the transaction runs, when its commit position is not known yet; a deferred
-- trigger, fired as the transaction commits, draws the next position from a sequence and records
-- it in relay.commits. Nothing is held across commits: writers commit side by side (and share
-- WAL flushes) as they would without pg-relay. So a position can become visible after a higher
-- one; the relay delivers a position only once every lower one is visible or known to be gone
-- (its transaction rolled back), which it learns by waiting for the committers that hold a lock
-- named after their backend (relay.wait_for_committers).
-- ---------------------------------------------------------------------------------------------

-- A random name for this log: cursors carry it, so a cursor from another database (or from this
-- one before it was recreated) is recognised instead of pointing into the wrong history.
create table relay.log_identity (
  singleton boolean primary key default true check (singleton),
  epoch text not null default substr(md5(gen_random_uuid()::text), 1, 8),
  -- Retention has deleted every commit up to this position: a cursor below it cannot resume.
  pruned_through bigint not null default 0,
  -- The database this identity was made for. A database cloned from a template or restored from
  -- a dump copies the row; relay.claim_log_identity() then gives the copy a name of its own.
  -- (0 until the first relay claims it).
  database_oid oid not null default 0
);
revoke all on relay.log_identity from public;

-- Called by every relay at start: the log's epoch, made anew when this row was copied from another
-- database (its cursors must not be valid here).
create function relay.claim_log_identity() returns table (epoch text)
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  this_database oid := (select d.oid from pg_database d where d.datname = current_database());
begin
  update relay.log_identity l
     set epoch = substr(md5(gen_random_uuid()::text), 1, 8),
         database_oid = this_database
   where l.database_oid <> this_database;
  return query select l.epoch from relay.log_identity l;
end $$;
revoke execute on function relay.claim_log_identity() from public;
insert into relay.log_identity default values;

-- Every watched write inserts here, so this table carries only what readers need: one index,
-- (xid, id), as every reader goes from a commit to its transaction's events; and no CHECK
-- constraints (PostgreSQL prepares each one anew for every INSERT statement, which cost more than
-- the row): only the relay's own functions write here, and they check topic, event and data
-- first (relay.watch, relay.publish), as the relay checks every row it reads.
create table relay.events (
  id bigint generated always as identity,
  xid xid8 not null default pg_current_xact_id(),
  topic text not null,
  event text not null,
  data jsonb not null,
  old jsonb,
  changed text[],
  -- true on the first event of each transaction (and of each batch after an early constraint
  -- check): only those rows queue the deferred commit trigger.
  opens_commit boolean not null default false,
  primary key (xid, id)
);

-- No cache: relay.read_commits reads last_value as the highest position handed out so far.
create sequence relay.commit_position as bigint cache 1;

-- Whether a relay waits for a notification (1) or is reading anyway (0). A committing writer that
-- finds it at 1 sets it to 0 and notifies, so an idle relay wakes at once, while one busy reading
-- costs writers no NOTIFY (each takes a database-wide lock through the commit). A sequence, as
-- its value is seen by every session at once, outside transactions; unlogged where PostgreSQL
-- has unlogged sequences (15 and newer): it needs no WAL.
do $$
begin
  execute format('create %s sequence relay.wakeup_wanted as smallint minvalue 0 maxvalue 1 start 0 cache 1',
                 case when current_setting('server_version_num')::int >= 150000 then 'unlogged' else '' end);
end $$;

-- Indexed by position only: readers walk positions, and retention deletes the oldest positions
-- (committed_at follows pos nearly: both are taken at the start of the commit). Written by every
-- committing writer, so every index here would cost each commit.
create table relay.commits (
  pos bigint primary key,
  xid xid8 not null,
  committed_at timestamptz not null
);

-- ---------------------------------------------------------------------------------------------
-- Catalog: watched tables and grants. Running relays reload it on a notification.
-- ---------------------------------------------------------------------------------------------

create table relay.watches (
  tbl regclass primary key,
  topic text not null check (length(topic) between 1 and 256),
  columns text[]
);

create table relay.grants (
  id bigint generated always as identity primary key,
  topic text not null check (length(topic) between 1 and 256),
  role text not null check (length(role) between 1 and 256),
  filter jsonb not null default '{}',
  columns text[],
  created_at timestamptz not null default now()
);
create index grants_by_topic_role on relay.grants (topic, role);

-- A watch whose table was dropped leaves its row behind (only a superuser's event trigger could
-- see the drop); its topic is no longer known.
create view relay.topics as
  select w.topic from relay.watches w where exists (select from pg_class c where c.oid = w.tbl)
  union
  select g.topic from relay.grants g;

-- ---------------------------------------------------------------------------------------------
-- The filter language, checked when a grant is made. The relay parses filters again with the
-- same rules (src/filters/); this copy exists so that a bad grant fails in the caller's SQL.
-- Returns null when the filter is valid, else where and what is wrong.
-- ---------------------------------------------------------------------------------------------

create function relay.filter_value_error(v jsonb, path text, list boolean) returns text
language plpgsql immutable as $$
declare
  element jsonb;
begin
  if jsonb_typeof(v) = 'object' then
    if v ? 'claim' and (select count(*) from jsonb_object_keys(v)) = 1 then
      if jsonb_typeof(v->'claim') <> 'string' then
        return format('%s.claim: expected a dotted claim path string', path);
      end if;
      if v->>'claim' ~ '(^|\.)(\.|$)' then
        return format('%s.claim: empty segment in claim path %s', path, v->'claim');
      end if;
      return null;
    end if;
    return format('%s: expected %s or {"claim": "path"}, got an object', path,
                  case when list then 'an array of values' else 'a value' end);
  end if;
  if list then
    if jsonb_typeof(v) <> 'array' then
      return format('%s: expected an array of values or {"claim": "path"}, got %s', path, jsonb_typeof(v));
    end if;
    for element in select * from jsonb_array_elements(v) loop
      if jsonb_typeof(element) in ('object', 'array') then
        return format('%s: expected only strings, numbers, booleans or null in the list', path);
      end if;
    end loop;
    return null;
  end if;
  if jsonb_typeof(v) = 'array' then
    return format('%s: expected a value, got an array (use {"in": [...]})', path);
  end if;
  return null;
end $$;

create function relay.filter_condition_error(condition jsonb, path text) returns text
language plpgsql immutable as $$
declare
  op text;
  arg jsonb;
  problem text;
begin
  -- A bare value, or a claim reference, means equality.
  if jsonb_typeof(condition) <> 'object' or condition ? 'claim' then
    return relay.filter_value_error(condition, path, false);
  end if;
  if condition = '{}' then
    return format('%s: expected a value or operators, got {}', path);
  end if;
  for op, arg in select * from jsonb_each(condition) loop
    if op = 'in' then
      problem := relay.filter_value_error(arg, path || '.in', true);
    elsif op in ('eq', 'ne', 'lt', 'lte', 'gt', 'gte') then
      problem := relay.filter_value_error(arg, path || '.' || op, false);
    else
      problem := format('%s: unknown operator "%s" (expected eq, ne, lt, lte, gt, gte, in)', path, op);
    end if;
    if problem is not null then
      return problem;
    end if;
  end loop;
  return null;
end $$;

create function relay.filter_error(filter jsonb, path text default 'filter', depth int default 1)
returns text
language plpgsql immutable as $$
declare
  k text;
  v jsonb;
  i int;
  problem text;
begin
  if depth > 16 then
    return format('%s: nested deeper than 16 levels', path);
  end if;
  if jsonb_typeof(filter) is distinct from 'object' then
    return format('%s: expected an object, got %s', path, coalesce(jsonb_typeof(filter), 'null'));
  end if;
  for k, v in select * from jsonb_each(filter) loop
    if k in ('and', 'or') then
      if jsonb_typeof(v) <> 'array' or jsonb_array_length(v) = 0 then
        return format('%s.%s: expected a non-empty array of filters', path, k);
      end if;
      for i in 0 .. jsonb_array_length(v) - 1 loop
        problem := relay.filter_error(v->i, format('%s.%s[%s]', path, k, i), depth + 1);
        if problem is not null then
          return problem;
        end if;
      end loop;
    elsif k = 'not' then
      problem := relay.filter_error(v, path || '.not', depth + 1);
    else
      problem := relay.filter_condition_error(v, path || '.' || k);
    end if;
    if problem is not null then
      return problem;
    end if;
  end loop;
  return null;
end $$;

create function relay.check_grant() returns trigger
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

create trigger check_grant before insert or update on relay.grants
  for each row execute function relay.check_grant();

-- Running relays reload grants and topics when this channel speaks (within a second of a commit).
create function relay.announce_catalog_change() returns trigger
language plpgsql as $$
begin
  perform pg_notify('relay_catalog', TG_TABLE_NAME);
  return null;
end $$;

create trigger announce_grants after insert or update or delete or truncate on relay.grants
  for each statement execute function relay.announce_catalog_change();
create trigger announce_watches after insert or update or delete or truncate on relay.watches
  for each statement execute function relay.announce_catalog_change();

-- ---------------------------------------------------------------------------------------------
-- Appending events and stamping commits.
-- ---------------------------------------------------------------------------------------------

-- Takes the transaction's commit position as it commits, and wakes the relays that wait for one.
-- The position is visible when the commit is; until then the committer holds the advisory lock
-- (1919250029, its backend pid), which it takes before drawing the position, so that
-- relay.wait_for_committers can wait for every position drawn so far (see the top of this file).
-- (Replaced by 1764000000000_bell-without-a-query.sql, which looks at the bell without a query.)
create function relay.stamp_commit() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  -- SET CONSTRAINTS ... IMMEDIATE can fire this before the transaction ends; events appended after
  -- that queue it again, and find the transaction stamped already. Both settings are
  -- transaction-local and roll back with a savepoint, together with the stamp they describe.
  perform set_config('relay.open_xid', '', true);
  if current_setting('relay.stamped_xid', true) = NEW.xid::text then
    return null;
  end if;
  -- A lock of this backend's own: no two committers ever wait for each other here.
  perform pg_advisory_xact_lock(1919250029, pg_backend_pid());
  insert into relay.commits (pos, xid, committed_at)
  values (nextval('relay.commit_position'), NEW.xid, clock_timestamp());
  perform set_config('relay.stamped_xid', NEW.xid::text, true);
  -- After the position is drawn: a relay that arms the bell later reads a last_value that covers
  -- this position, and waits for it (relay.read_commits).
  if (select w.last_value from relay.wakeup_wanted w) = 1 then
    perform setval('relay.wakeup_wanted', 0);
    -- The payload says nothing: whatever its sender, a notification only makes a relay read.
    perform pg_notify('relay_events', '');
  end if;
  return null;
end $$;

create constraint trigger stamp_commit after insert on relay.events
  deferrable initially deferred
  for each row when (NEW.opens_commit)
  execute function relay.stamp_commit();

-- The relay's read of live events: arms the wake-up bell (relay.wakeup_wanted) if asked, then
-- returns every event of the commits after position after_pos, at most max_events, in commit
-- order; and on every row (on a row of nulls when there is none) the highest position drawn so
-- far. A committer that looked at the bell before it was armed had drawn its position by then, so
-- while the relay has not seen every position up to that one, it reads again instead of waiting
-- for a notification (see src/event-stream.ts). A function, so that PostgreSQL keeps its plan.
-- (Replaced by 1763900000000_plan-proof-reads.sql, which keeps its reads to about a page.)
create function relay.read_commits(after_pos bigint, max_events int, arm boolean default true)
returns table (drawn_through bigint, pos bigint, id bigint, ts float8, topic text, event text,
               data jsonb, old jsonb, changed text[])
language plpgsql set search_path = pg_catalog, pg_temp as $$
#variable_conflict use_column
begin
  if arm then
    perform setval('relay.wakeup_wanted', 1);
  end if;
  return query
    select d.drawn, r.*
      from (select case when s.is_called then s.last_value else 0 end as drawn
              from relay.commit_position s) d
      left join lateral (
        select c.pos, e.id, extract(epoch from c.committed_at)::float8, e.topic, e.event, e.data, e.old, e.changed
          from relay.commits c
          join relay.events e on e.xid = c.xid
         where c.pos > after_pos
         order by c.pos, e.id
         limit max_events
      ) r on true;
end $$;

-- Returns once every transaction that had drawn a commit position when it was called has ended:
-- each holds the lock (1919250029, its pid) from before it draws until its commit is visible.
-- A position drawn by then and still not visible afterwards was rolled back: it never will be.
create function relay.wait_for_committers() returns void
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  holder int;
begin
  for holder in
    select l.objid::bigint::int
      from pg_locks l
     where l.locktype = 'advisory' and l.classid = 1919250029 and l.objsubid = 2
       -- A prepared transaction's locks have no pid: it is waited for too.
       and l.granted and l.pid is distinct from pg_backend_pid()
  loop
    -- Taken and given back at once: held until the statement ends, it would keep this holder's
    -- next commit waiting while the loop waits for the others.
    perform pg_advisory_lock_shared(1919250029, holder);
    perform pg_advisory_unlock_shared(1919250029, holder);
  end loop;
exception when others or query_canceled then
  -- A session lock outlives an error: never leave one on a pooled connection.
  perform pg_advisory_unlock_all();
  raise;
end $$;

-- relay.capture_row_change does the same inline (a function call per watched row costs).
create function relay.append_event(topic text, event text, data jsonb, old jsonb, changed text[])
returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  current_xid text := pg_current_xact_id()::text;
  opens boolean := current_setting('relay.open_xid', true) is distinct from current_xid;
begin
  if opens then
    -- Transaction-local: rolled back with a savepoint, forgotten at commit.
    perform set_config('relay.open_xid', current_xid, true);
  end if;
  insert into relay.events (topic, event, data, old, changed, opens_commit)
  values (append_event.topic, append_event.event, append_event.data, append_event.old,
          append_event.changed, opens);
end $$;

-- Retention: deletes the oldest commits (and their events) committed before now() - retention,
-- at most batch_size per call, so that no call holds locks for long; relays call it in a loop
-- while it returns batch_size, one relay at a time. Returns how many commits were deleted.
create function relay.prune(retention interval, batch_size int default 5000) returns int
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  pruned int;
  last_pos bigint;
begin
  -- Several relays on one database: one prunes, the others find the lock taken and skip a turn.
  if not pg_try_advisory_xact_lock(1919250028, 1885430626) then
    return 0;
  end if;
  -- The oldest batch_size positions, of which those old enough: relay.commits has no index on
  -- committed_at, which follows pos (a clock set back only keeps a few commits a little longer).
  with doomed as (
    select c.pos, c.xid
      from (select c.pos, c.xid, c.committed_at from relay.commits c order by c.pos limit batch_size) c
     where c.committed_at < clock_timestamp() - retention
  ), gone_events as (
    delete from relay.events e using doomed d where e.xid = d.xid
  ), gone as (
    delete from relay.commits c using doomed d where c.pos = d.pos returning c.pos
  )
  select count(*), max(g.pos) into pruned, last_pos from gone g;
  if last_pos is not null then
    update relay.log_identity set pruned_through = greatest(pruned_through, last_pos);
  end if;
  return pruned;
end $$;
revoke execute on function relay.prune(interval, int) from public;

-- ---------------------------------------------------------------------------------------------
-- The public functions of contract section 2.
-- ---------------------------------------------------------------------------------------------

create function relay.publish(topic text, event text, data jsonb) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if topic is null or length(topic) not between 1 and 256 then
    raise exception 'relay.publish: topic must be 1 to 256 characters' using errcode = 'invalid_parameter_value';
  end if;
  if event is null or length(event) not between 1 and 256 then
    raise exception 'relay.publish: event must be 1 to 256 characters' using errcode = 'invalid_parameter_value';
  end if;
  if jsonb_typeof(data) is distinct from 'object' then
    raise exception 'relay.publish: data must be a JSON object, got %', coalesce(jsonb_typeof(data), 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  perform relay.append_event(topic, event, data, null, null);
end $$;

-- Keeps only the named keys of a row.
create function relay.pick(obj jsonb, keys text[]) returns jsonb
language sql immutable as $$
  select coalesce(jsonb_object_agg(key, value), '{}') from jsonb_each(obj) where key = any(keys)
$$;

-- The row trigger of every watched table. Arguments: topic, and the watched columns ('' = all).
-- Every watched write runs it: it appends the event itself (as relay.append_event does) and
-- compares old and new in one pass.
create function relay.capture_row_change() returns trigger
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

create function relay.watch(tbl regclass, topic text, columns text[] default null) returns void
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

create function relay.unwatch(tbl regclass) returns void
language plpgsql as $$
begin
  if exists (select from pg_trigger t where t.tgrelid = tbl and t.tgname = 'relay_watch') then
    execute format('drop trigger relay_watch on %s', tbl);
  end if;
  delete from relay.watches w where w.tbl = unwatch.tbl;
end $$;

create function relay.allow(topic text, role text, filter jsonb default '{}', columns text[] default null)
returns void
language plpgsql as $$
begin
  if allow.filter is null then
    -- A filter that came out NULL by accident must not grant every row; '{}' says so on purpose.
    raise exception 'relay.allow: filter must not be null (pass ''{}'' to grant every event)'
      using errcode = 'invalid_parameter_value';
  end if;
  insert into relay.grants as g (topic, role, filter, columns)
  select allow.topic, allow.role, allow.filter, allow.columns
   where not exists (
     select 1 from relay.grants g
      where g.topic = allow.topic and g.role = allow.role
        and g.filter = allow.filter and g.columns is not distinct from allow.columns);
end $$;

create function relay.revoke(topic text, role text) returns void
language plpgsql as $$
begin
  delete from relay.grants g where g.topic = revoke.topic and g.role = revoke.role;
end $$;

-- Publishing and the admin functions are for the roles the owner chooses (see README). The
-- trigger functions run as the owner: anyone who could attach them to a table of their own could
-- forge events of any topic, or re-send a committed transaction's events.
revoke execute on function relay.capture_row_change() from public;
revoke execute on function relay.stamp_commit() from public;
revoke execute on function relay.publish(text, text, jsonb) from public;
revoke execute on function relay.append_event(text, text, jsonb, jsonb, text[]) from public;
revoke execute on function relay.watch(regclass, text, text[]) from public;
revoke execute on function relay.unwatch(regclass) from public;
revoke execute on function relay.allow(text, text, jsonb, text[]) from public;
revoke execute on function relay.revoke(text, text) from public;

-- Down Migration
drop schema relay cascade;
