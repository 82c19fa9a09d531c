-- Up Migration

-- A transaction's commit position is drawn after its last event.
-- - The commit stamp fires when the transaction's first event's deferred trigger does: at commit,
--   or earlier under SET CONSTRAINTS ... IMMEDIATE. Events appended after it (by statements run
--   after SET CONSTRAINTS, or by an application's deferred trigger that fires after the stamp at
--   commit) queue it again, and it used to find the transaction stamped and keep the position it
--   had drawn. But the writes behind those events may have waited for another transaction's row
--   lock, or read its commit, after that one drew a higher position: the same row's changes then
--   reached subscribers in the wrong order, and they ended on a value the table no longer held.
-- - Now the stamp, queued again, moves the transaction's row of relay.commits to a new position,
--   unless no position was drawn since its own. The position it leaves is never committed: the
--   relay passes it as it passes a rolled-back one, once the transaction has ended
--   (relay.wait_for_committers), which holds back the positions after it for a few reads.
--
-- Committers are waited for without advisory locks.
-- - The stamp took pg_advisory_xact_lock(1919250029, its backend's pid), and
--   relay.wait_for_committers waited for every holder of a lock of that class. Advisory locks
--   need no privilege: any role that could connect could hold one and freeze a writer's commits
--   (pg_advisory_lock_shared(1919250029, its pid)) or every relay. And a prepared transaction
--   keeps its locks: the next commit with events of the session that prepared it waited for
--   COMMIT PREPARED, for ever, as statement_timeout does not apply at commit.
-- - A committer holds ROW EXCLUSIVE on relay.commits from the moment its INSERT is planned (or,
--   from plpgsql's cached plan, locked before it runs), so before nextval is evaluated, until its
--   transaction ends, after its commit is visible. Committers never wait for each other on it.
--   relay.wait_for_committers now waits for the transactions that hold it, which takes a role that
--   may write relay.commits (LOCK TABLE, INSERT, UPDATE and DELETE check that first), or one with
--   USAGE on schema relay (a publisher, the relay's own) that PREPAREs an INSERT into it in an
--   open transaction: its privileges are checked only when it runs. A role with no rights on
--   schema relay cannot name the table at all.

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

-- Returns once every transaction that had drawn a commit position when it was called has ended:
-- each holds ROW EXCLUSIVE on relay.commits from before it draws until its commit is visible. A
-- position drawn by then and still not visible afterwards was rolled back, or left behind by a
-- transaction that drew again (see stamp_commit): it never will be.
-- - pg_locks is readable by every role, so a relay that is not a superuser sees every holder.
-- - A prepared transaction keeps its locks (pg_locks shows them with no pid): its position may
--   still commit, so it is waited for until COMMIT PREPARED or ROLLBACK PREPARED.
-- - Holders are told apart by virtual transaction, which names one transaction (a prepared one's
--   is -1/its xid): a backend that ends one and starts another is not waited for twice.
-- - Nothing here can be waited on, so the holders' ends are polled: every millisecond at first,
--   then less often, up to every 10 ms (each look at pg_locks takes every lock partition's lock
--   briefly). Retention's deletes hold the lock too, and are waited for: they are short.
-- - At most max_ms milliseconds (null: no limit); returns whether every such transaction ended.
--   A relay waits in turns of a second, so that stopping it does not wait for a transaction left
--   open after drawing its position early (SET CONSTRAINTS ALL IMMEDIATE, then idle). A new turn
--   waits for the transactions holding the lock then: those of the first still running are among
--   them.
create function relay.wait_for_committers(max_ms int) returns boolean
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  this_database oid := (select d.oid from pg_database d where d.datname = current_database());
  committers text[];
  pause_s float8 := 0.001;
  deadline timestamptz := clock_timestamp() + make_interval(secs => coalesce(max_ms, 0) / 1000.0);
begin
  select array_agg(l.virtualtransaction) into committers
    from pg_locks l
   where l.locktype = 'relation' and l.database = this_database and l.relation = 'relay.commits'::regclass
     and l.mode = 'RowExclusiveLock' and l.granted and l.pid is distinct from pg_backend_pid();
  while committers is not null loop
    if max_ms is not null and clock_timestamp() >= deadline then
      return false;
    end if;
    perform pg_sleep(pause_s);
    pause_s := least(pause_s * 2, 0.01);
    select array_agg(l.virtualtransaction) into committers
      from pg_locks l
     where l.locktype = 'relation' and l.database = this_database and l.relation = 'relay.commits'::regclass
       and l.mode = 'RowExclusiveLock' and l.granted and l.virtualtransaction = any(committers);
  end loop;
  return true;
end $$;

-- Without a limit, for relays of an earlier version (their statement names this one).
create or replace function relay.wait_for_committers() returns void
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  unused boolean;
begin
  unused := relay.wait_for_committers(null);
end $$;

-- Down Migration

drop function relay.wait_for_committers(int);

-- As in 1763800000000_relay-schema.sql.
create or replace function relay.wait_for_committers() returns void
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
