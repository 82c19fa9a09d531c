-- Up Migration

-- A transaction's commit position is drawn after its last event.
-- - The commit stamp fires when the transaction's first event's deferred trigger does: at commit,
--   or earlier under SET CONSTRAINTS ... IMMEDIATE. Events appended after it (by statements run
--   after SET CONSTRAINTS, or by an application's deferred trigger that fires after the stamp at
--   commit) queue it again, and it used to find the transaction stamped and keep the position it
--   had drawn. But the writes behind those events may have waited for another transaction's row
--   lock, or read its commit, after that one drew a higher position: the same row's changes then
--   reached subscribers in the wrong order, and they ended on a value the table no longer held.
-- - Now the stamp, queued again, moves the transaction's row of relay.commits to a new position.
--   The position it leaves is never committed: the relay passes it as it passes a rolled-back one,
--   once the transaction has ended (relay.wait_for_committers).

create or replace function relay.stamp_commit() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  stamped text;
  drawn bigint;
  unused text;
begin
  -- Events appended from here on queue this trigger again.
  unused := set_config('relay.open_xid', '', true);
  -- A lock of this backend's own: no two committers ever wait for each other here.
  unused := pg_advisory_xact_lock(1919250029, pg_backend_pid());
  -- The position this transaction drew, if it drew one: transaction-local, so rolled back with a
  -- savepoint together with the row it names, and '' in the next transaction. The row must also
  -- carry this transaction's xid: a session-level setting cannot make it move another's row.
  stamped := current_setting('relay.stamped_pos', true);
  if stamped <> '' then
    update relay.commits c
       set pos = nextval('relay.commit_position'), committed_at = clock_timestamp()
     where c.pos = stamped::bigint and c.xid = NEW.xid
    returning c.pos into drawn;
  end if;
  if drawn is null then
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

-- As in 1765000000000_whole-old-rows.sql.
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
