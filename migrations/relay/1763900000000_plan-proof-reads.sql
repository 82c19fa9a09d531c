-- Up Migration

-- The relay's reads of the log cost a few index lookups per event read, however long the log and
-- however large a commit (and retention's deletes as many per event deleted, at the end of this
-- file): each read walks relay.commits in position order from the cursor, and each commit's events
-- in id order by relay.events (xid, id), stopping at the page's size.
-- - Each commit's events are read by a lateral subquery with its own order and limit: joined
--   plainly, PostgreSQL sorted every remaining event of the cursor's commit for each page (a
--   replay of one commit of 100,000 events read pages at 20 to 140 ms each).
-- - Without statistics (a log just filled, not analyzed yet), or with a topic filter it cannot
--   estimate, PostgreSQL may choose to hash-join or bitmap-scan the whole log instead (80 ms a
--   page on a log of 100,000 events). The settings below, local to these functions, leave it only
--   the ordered index scans. Before PostgreSQL 18 a disabled plan node counts as a huge cost,
--   which would make it compile these small queries just in time (300 ms each): hence jit = off.
-- - With the plan's shape fixed, one generic plan serves every call: PostgreSQL would otherwise
--   plan the live read anew at each call (about 140 µs of a 270 µs read).

-- Live delivery's read: arms the wake-up bell if asked, then returns every event of the commits
-- after position after_pos, at most max_events, in commit order; and on every row (on a row of
-- nulls when there is none) the highest position drawn so far. A committer that looked at the
-- bell before it was armed had drawn its position by then, so while the relay has not seen every
-- position up to that one, it reads again instead of waiting for a notification (see
-- src/event-stream.ts). In plpgsql, so that PostgreSQL keeps its plan.
create or replace function relay.read_commits(after_pos bigint, max_events int, arm boolean default true)
returns table (drawn_through bigint, pos bigint, id bigint, ts float8, topic text, event text,
               data jsonb, old jsonb, changed text[])
language plpgsql
set search_path = pg_catalog, pg_temp
set enable_hashjoin = off
set enable_mergejoin = off
set enable_seqscan = off
set enable_bitmapscan = off
set jit = off
set plan_cache_mode = force_generic_plan
as $$
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
         cross join lateral (
           select e.id, e.topic, e.event, e.data, e.old, e.changed
             from relay.events e
            where e.xid = c.xid
            order by e.id
            limit max_events
         ) e
         where c.pos > after_pos
         order by c.pos, e.id
         limit max_events
      ) r on true;
end $$;

-- One page of the log in commit order: events after (after_pos, after_id) and at most
-- (through_pos, through_id), of topic only_topic (null: every topic), at most max_events; and,
-- read in the same snapshot, the position through which retention has pruned the log (on every
-- row, and on a row of nulls when the page is empty), so a reader knows whether the page is whole.
-- Two branches: the rest of the cursor's own commit, then the later commits.
create function relay.read_page(after_pos bigint, after_id bigint, through_pos bigint, through_id bigint,
                                only_topic text, max_events int)
returns table (pruned_through bigint, pos bigint, id bigint, ts float8, topic text, event text,
               data jsonb, old jsonb, changed text[])
language plpgsql stable
set search_path = pg_catalog, pg_temp
set enable_hashjoin = off
set enable_mergejoin = off
set enable_seqscan = off
set enable_bitmapscan = off
set jit = off
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
begin
  return query
    select l.pruned_through, p.*
      from relay.log_identity l
      left join lateral (
        select *
          from (
            (select c.pos, e.id, extract(epoch from c.committed_at)::float8 as ts, e.topic, e.event, e.data, e.old, e.changed
               from relay.commits c
              cross join lateral (
                select e.id, e.topic, e.event, e.data, e.old, e.changed
                  from relay.events e
                 where e.xid = c.xid and e.id > after_id
                   and (c.pos < through_pos or e.id <= through_id)
                   and (only_topic is null or e.topic = only_topic)
                 order by e.id
                 limit max_events
              ) e
              where c.pos = after_pos)
            union all
            (select c.pos, e.id, extract(epoch from c.committed_at)::float8 as ts, e.topic, e.event, e.data, e.old, e.changed
               from relay.commits c
              cross join lateral (
                select e.id, e.topic, e.event, e.data, e.old, e.changed
                  from relay.events e
                 where e.xid = c.xid
                   and (c.pos < through_pos or e.id <= through_id)
                   and (only_topic is null or e.topic = only_topic)
                 order by e.id
                 limit max_events
              ) e
              where c.pos > after_pos and c.pos <= through_pos
              order by c.pos, e.id
              limit max_events)
          ) page
         order by page.pos, page.id
         limit max_events
      ) p on true;
end $$;

-- Retention deletes a batch of the oldest commits and their events. Its join of the batch to
-- relay.events was a hash join over the whole table on a log without statistics: the same
-- settings keep it to index lookups of the batch's events.
alter function relay.prune(interval, int)
  set enable_hashjoin = off
  set enable_mergejoin = off
  set enable_seqscan = off
  set enable_bitmapscan = off
  set jit = off;

-- Down Migration
alter function relay.prune(interval, int)
  reset enable_hashjoin reset enable_mergejoin reset enable_seqscan reset enable_bitmapscan reset jit;
drop function relay.read_page(bigint, bigint, bigint, bigint, text, int);
alter function relay.read_commits(bigint, int, boolean)
  reset enable_hashjoin reset enable_mergejoin reset enable_seqscan reset enable_bitmapscan reset jit
  reset plan_cache_mode;
