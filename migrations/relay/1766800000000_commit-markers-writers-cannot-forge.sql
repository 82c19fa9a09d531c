-- Up Migration

-- The triggers' markers of a transaction's commit stamp can no longer be forged. They are settings
-- (relay.open_xid, relay.stamped_pos), which any role may set, and every role that may write a
-- watched table could use them to break the log:
-- - relay.open_xid set to its own transaction id before its first write: no event queued the
--   commit stamp, so its events got no commit position. No relay delivered them, and retention
--   never deleted them. Restored after a savepoint that rolled back the event that had queued the
--   stamp, or after the stamp had fired (SET CONSTRAINTS ALL IMMEDIATE), it did the same, or left
--   its later events at the position drawn before they were written.
-- - relay.stamped_pos set to '' after the stamp had fired: the stamp, queued again, recorded a
--   second commit of the same transaction, and every subscriber received its events twice. Set to
--   the last position drawn (which cursors show), the stamp took it for its own and recorded none.
--
-- Now:
-- - An event that queues the stamp records who inserted it (the transaction, or the savepoint
--   it was written in) in relay.commit_stamp_queued_by, a sequence that only the relay's owner may
--   use: setval there sets the session's currval, which no other role can read or change. The
--   setting relay.open_xid names it too. A later event of the transaction skips the stamp only if
--   the setting names this transaction, currval names the same inserter, and that inserter is
--   still in progress: one whose savepoint rolled back (taking the queued stamp with it) has
--   aborted. The stamp sets currval to 0 when it fires, so the events after it queue it again.
--   None of this costs a query: about 2 µs for each event that does not queue the stamp, and
--   about 6 µs a transaction for the one that does and for the stamp (two setval calls; the
--   sequence is unlogged from PostgreSQL 15, so setval writes no WAL there).
-- - relay.commits holds at most one row per transaction (a unique constraint): a stamp told that
--   its transaction has none tries to insert a second, and the commit fails.
-- - The stamp keeps the position named by relay.stamped_pos only if relay.commits holds it for
--   this transaction (one probe, only for a stamp queued again).
-- A forged setting now makes the writer's own statement or commit fail at worst (a currval or a
-- cast error, or the unique violation); nothing is lost and nothing delivered twice. DISCARD
-- SEQUENCES run inside a transaction between two of its watched writes fails the second the same
-- way: it forgets currval.
--
-- A log that already holds two rows of relay.commits for one transaction keeps the first. Adding
-- the constraint locks relay.commits while its index is built: commits with events, and the relays'
-- reads, wait for as long as it takes to index the commits that retention keeps.

do $$
begin
  if current_setting('server_version_num')::int >= 150000 then
    execute 'create unlogged sequence relay.commit_stamp_queued_by minvalue 0';
  else
    execute 'create sequence relay.commit_stamp_queued_by minvalue 0';
  end if;
end $$;
revoke all on sequence relay.commit_stamp_queued_by from public;

delete from relay.commits c
 where exists (select from relay.commits d where d.xid = c.xid and d.pos < c.pos);
alter table relay.commits add constraint commits_one_per_transaction unique (xid);

-- As in 1766700000000_virtual-columns-left-out.sql, and the commit stamp is queued as described above.
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
  marker text;
  queued_by bigint;
  inserted_by bigint;
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
  -- An event of this transaction queued the commit stamp, which has not fired since (see the top
  -- of this migration): this one need not queue it again.
  marker := current_setting('relay.open_xid', true);
  if split_part(marker, '.', 1) = current_xid then
    queued_by := nullif(split_part(marker, '.', 2), '')::bigint;
    if queued_by >= current_xid::bigint then
      if currval('relay.commit_stamp_queued_by') = queued_by
         and pg_xact_status(queued_by::text::xid8) = 'in progress' then
        insert into relay.events (topic, event, data, old, changed, opens_commit)
        values (topic, lower(TG_OP), new_row, old_row, changed_columns, false);
        return null;
      end if;
    end if;
  end if;
  insert into relay.events as e (topic, event, data, old, changed, opens_commit)
  values (topic, lower(TG_OP), new_row, old_row, changed_columns, true)
  returning e.xmin::text::bigint into inserted_by;
  -- Who inserted it (this transaction or one of its savepoints), as a full transaction id: it
  -- was assigned after this transaction's own, within 2^31 of it.
  queued_by := current_xid::bigint + (inserted_by - current_xid::bigint % 4294967296 + 4294967296) % 4294967296;
  unused := setval('relay.commit_stamp_queued_by', queued_by);
  -- Transaction-local: rolled back with a savepoint, forgotten at commit.
  unused := set_config('relay.open_xid', current_xid || '.' || queued_by, true);
  return null;
end $$;

-- As in 1766300000000_events-a-relay-can-hold.sql, and the commit stamp is queued as above.
create or replace function relay.append_event(topic text, event text, data jsonb, old jsonb, changed text[])
returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  current_xid text := pg_current_xact_id()::text;
  marker text;
  queued_by bigint;
  inserted_by bigint;
  unused text;
  event_bytes bigint := octet_length(append_event.data::text) + coalesce(octet_length(append_event.old::text), 0);
begin
  if event_bytes > 268435456 then
    raise exception 'relay: the event % of topic % would be % bytes of JSON text, more than the 268435456 (256 MiB) a relay can deliver',
                    append_event.event, append_event.topic, event_bytes
      using errcode = 'program_limit_exceeded';
  end if;
  -- An event of this transaction queued the commit stamp, which has not fired since (see the top
  -- of this migration): this one need not queue it again.
  marker := current_setting('relay.open_xid', true);
  if split_part(marker, '.', 1) = current_xid then
    queued_by := nullif(split_part(marker, '.', 2), '')::bigint;
    if queued_by >= current_xid::bigint then
      if currval('relay.commit_stamp_queued_by') = queued_by
         and pg_xact_status(queued_by::text::xid8) = 'in progress' then
        insert into relay.events (topic, event, data, old, changed, opens_commit)
        values (append_event.topic, append_event.event, append_event.data, append_event.old,
                append_event.changed, false);
        return;
      end if;
    end if;
  end if;
  insert into relay.events as e (topic, event, data, old, changed, opens_commit)
  values (append_event.topic, append_event.event, append_event.data, append_event.old,
          append_event.changed, true)
  returning e.xmin::text::bigint into inserted_by;
  -- Who inserted it (this transaction or one of its savepoints), as a full transaction id: it
  -- was assigned after this transaction's own, within 2^31 of it.
  queued_by := current_xid::bigint + (inserted_by - current_xid::bigint % 4294967296 + 4294967296) % 4294967296;
  unused := setval('relay.commit_stamp_queued_by', queued_by);
  -- Transaction-local: rolled back with a savepoint, forgotten at commit.
  unused := set_config('relay.open_xid', current_xid || '.' || queued_by, true);
end $$;

-- As in 1766000000000_positions-after-last-write.sql, and it believes neither marker.
create or replace function relay.stamp_commit() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  stamped text;
  drawn bigint;
  unused text;
begin
  -- Events appended from here on queue this trigger again: the queue marker they find is no longer
  -- valid.
  unused := setval('relay.commit_stamp_queued_by', 0);
  -- The position this transaction drew, if it drew one: transaction-local, so rolled back with a
  -- savepoint together with the row it names, and '' in the next transaction. The row must also
  -- carry this transaction's xid: a session-level setting cannot make it move another's row.
  stamped := current_setting('relay.stamped_pos', true);
  if stamped <> '' then
    -- Nobody has drawn since: every transaction that ended before these events were written drew
    -- before it ended, so below this position, which is still the latest. Kept, it leaves no gap
    -- for the relay to wait out.
    -- The setting is anyone's: the position is this transaction's only if relay.commits says so.
    if pg_sequence_last_value('relay.commit_position') = stamped::bigint
       and exists (select from relay.commits c where c.pos = stamped::bigint and c.xid = NEW.xid) then
      return null;
    end if;
    update relay.commits c
       set pos = nextval('relay.commit_position'), committed_at = clock_timestamp()
     where c.pos = stamped::bigint and c.xid = NEW.xid
    returning c.pos into drawn;
  end if;
  if drawn is null then
    -- Planning (or locking the cached plan of) this INSERT takes ROW EXCLUSIVE on relay.commits
    -- before nextval runs: relay.wait_for_committers waits for its holders.
    insert into relay.commits (pos, xid, committed_at)
    values (nextval('relay.commit_position'), NEW.xid, clock_timestamp())
    returning pos into drawn;
  end if;
  unused := set_config('relay.stamped_pos', drawn::text, true);
  -- After the position is drawn: a relay that arms the bell later reads a last_value that covers
  -- this position, and waits for it (relay.read_log_commits).
  if pg_sequence_last_value('relay.wakeup_wanted') = 1 then
    unused := setval('relay.wakeup_wanted', 0);
    -- The payload says nothing: whatever its sender, a notification only makes a relay read.
    unused := pg_notify('relay_events', '');
  end if;
  return null;
end $$;

-- Down Migration

-- The functions as 1766700000000_virtual-columns-left-out.sql, 1766300000000_events-a-relay-can-hold.sql
-- and 1766000000000_positions-after-last-write.sql left them; then the constraint and the sequence go.
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

-- As in 1766300000000_events-a-relay-can-hold.sql.
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

-- As in 1766000000000_positions-after-last-write.sql.
create or replace function relay.stamp_commit() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  stamped text;
  drawn bigint;
  unused text;
begin
  -- Events appended from here on queue this trigger again.
  unused := set_config('relay.open_xid', '', true);
  -- The position this transaction drew, if it drew one: transaction-local, so rolled back with a
  -- savepoint together with the row it names, and '' in the next transaction. The row must also
  -- carry this transaction's xid: a session-level setting cannot make it move another's row.
  stamped := current_setting('relay.stamped_pos', true);
  if stamped <> '' then
    -- Nobody has drawn since: every transaction that ended before these events were written drew
    -- before it ended, so below this position, which is still the latest. Kept, it leaves no gap
    -- for the relay to wait out.
    if pg_sequence_last_value('relay.commit_position') = stamped::bigint then
      return null;
    end if;
    update relay.commits c
       set pos = nextval('relay.commit_position'), committed_at = clock_timestamp()
     where c.pos = stamped::bigint and c.xid = NEW.xid
    returning c.pos into drawn;
  end if;
  if drawn is null then
    -- Planning (or locking the cached plan of) this INSERT takes ROW EXCLUSIVE on relay.commits
    -- before nextval runs: relay.wait_for_committers waits for its holders.
    insert into relay.commits (pos, xid, committed_at)
    values (nextval('relay.commit_position'), NEW.xid, clock_timestamp())
    returning pos into drawn;
  end if;
  unused := set_config('relay.stamped_pos', drawn::text, true);
  -- After the position is drawn: a relay that arms the bell later reads a last_value that covers
  -- this position, and waits for it (relay.read_log_commits).
  if pg_sequence_last_value('relay.wakeup_wanted') = 1 then
    unused := setval('relay.wakeup_wanted', 0);
    -- The payload says nothing: whatever its sender, a notification only makes a relay read.
    unused := pg_notify('relay_events', '');
  end if;
  return null;
end $$;

alter table relay.commits drop constraint commits_one_per_transaction;
drop sequence relay.commit_stamp_queued_by;
