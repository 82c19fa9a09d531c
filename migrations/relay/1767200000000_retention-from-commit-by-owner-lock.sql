-- Up Migration

-- Retention (relay.prune) counts an event's age from when its commit was visible, and takes its
-- turn with a lock that only the relay schema's owner can hold.
--
-- - An event's age was its commit stamp (relay.commits.committed_at), the time its position was
--   drawn. A transaction that draws early (SET CONSTRAINTS ALL IMMEDIATE, or PREPARE TRANSACTION)
--   and commits more than RELAY_RETENTION later was deleted as it committed, before any relay
--   delivered it, and every relay closed its connections with 1011. Each pass now records a mark:
--   its snapshot, which tells the transactions committed by then. A commit goes only once its
--   stamp is older than the retention and a mark at least that old saw it committed, and only
--   from the start of the log up to the first commit that may not go: a commit visible late keeps
--   the ones after it too, which the relays hold back behind it until it is delivered. Events
--   stay up to one mark interval (an eighth of the retention, at most an hour) longer.
-- - The turn was pg_try_advisory_xact_lock(1919250028, 1885430626). Advisory locks need no
--   privilege: any role that could connect could hold that one (in a session left open, or in a
--   prepared transaction) and every relay skipped every pass, silently, while the log grew. The
--   turn is now a row lock on relay.log_identity, whose UPDATE no other role is granted.

create table relay.prune_marks (
  taken_at timestamptz primary key,
  snapshot pg_snapshot not null
);
revoke all on relay.prune_marks from public;
-- Commits made before this migration are judged by their stamps alone, as before.
insert into relay.prune_marks (taken_at, snapshot) values ('-infinity', pg_current_snapshot());

create or replace function relay.prune(retention interval, batch_size int default 5000) returns int
language plpgsql security definer set search_path = pg_catalog, pg_temp
  -- As migration 1763900000000 set them: a replaced function keeps none of its settings.
  set enable_hashjoin = off set enable_mergejoin = off set enable_seqscan = off set enable_bitmapscan = off
  set jit = off as $$
declare
  pruned int;
  last_pos bigint;
  cutoff timestamptz;
  mark relay.prune_marks;
begin
  -- Several relays on one database: one prunes, the others find the row locked and skip a turn.
  perform from relay.log_identity for update skip locked;
  if not found then
    return 0;
  end if;
  if not exists (
    select from relay.prune_marks m where m.taken_at > clock_timestamp() - least(retention / 8, interval '1 hour')
  ) then
    insert into relay.prune_marks (taken_at, snapshot) values (clock_timestamp(), pg_current_snapshot());
  end if;
  cutoff := clock_timestamp() - retention;
  select * into mark from relay.prune_marks m where m.taken_at <= cutoff order by m.taken_at desc limit 1;
  if not found then
    return 0;
  end if;
  delete from relay.prune_marks m where m.taken_at < mark.taken_at;
  -- The oldest batch_size positions, up to the first that may not go: relay.commits has no index
  -- on committed_at, which follows pos (a clock set back only keeps a few commits a little longer).
  with batch as (
    select c.pos, c.xid, c.committed_at <= cutoff and pg_visible_in_snapshot(c.xid, mark.snapshot) as may_go
      from relay.commits c order by c.pos limit batch_size
  ), doomed as (
    select b.pos, b.xid from batch b
     where b.pos < coalesce((select min(k.pos) from batch k where not k.may_go), 9223372036854775807)
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

-- Down Migration

create or replace function relay.prune(retention interval, batch_size int default 5000) returns int
language plpgsql security definer set search_path = pg_catalog, pg_temp
  -- As migration 1763900000000 set them: a replaced function keeps none of its settings.
  set enable_hashjoin = off set enable_mergejoin = off set enable_seqscan = off set enable_bitmapscan = off
  set jit = off as $$
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
drop table relay.prune_marks;
