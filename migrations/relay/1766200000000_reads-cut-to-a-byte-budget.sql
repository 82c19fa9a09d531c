-- Up Migration

-- The relay's reads of the log are cut to a number of bytes of JSON text as well as to a number of
-- events. Live delivery read up to 1,000 events a query whatever their size, so a burst of 1 MB
-- rows reached the relay as a gigabyte at once; a replay learned that a page was too large only
-- after reading it whole.
-- - New forms of relay.read_log_commits and relay.read_log_page take max_bytes. They keep events,
--   in order, while the JSON text of data and old together stays within it, and always the first
--   event, however large. `more` says on each event whether another one followed it before the
--   cut, so the relay knows it cut. data and old come as text: cast once here, to measure them,
--   and not once more to send them.
-- - The running sum is a window over rows already in order (the ORDER BY of the limit, or of the
--   page's two branches): no sort of its own. Done around the functions, in the relay's SQL, it
--   needed one, and cost PostgreSQL about twice as much.
-- - The earlier forms stay, unchanged, for relays of an earlier version.

create function relay.read_log_commits(after_pos bigint, max_events int, arm boolean, max_bytes bigint)
returns table (drawn_through bigint, pos bigint, id bigint, ts float8, topic text, event text,
               data text, old text, changed text[], more boolean)
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
    select d.drawn, r.pos, r.id, r.ts, r.topic, r.event, r.data, r.old, r.changed, r.more
      from (select case when s.is_called then s.last_value else 0 end as drawn
              from relay.commit_position s) d
      left join lateral (
        select sized.pos, sized.id, sized.ts, sized.topic, sized.event, sized.data, sized.old, sized.changed, sized.more
          from (
            select page.*,
                   sum(octet_length(page.data) + coalesce(octet_length(page.old), 0)) over in_order as bytes_through,
                   row_number() over in_order as nth,
                   lead(page.id) over in_order is not null as more
              from (
                select c.pos, e.id, extract(epoch from c.committed_at)::float8 as ts, e.topic, e.event,
                       e.data::text as data, e.old::text as old, e.changed
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
              ) page
            window in_order as (order by page.pos, page.id rows unbounded preceding)
          ) sized
         where sized.nth = 1 or sized.bytes_through <= max_bytes
      ) r on true;
end $$;

create function relay.read_log_page(after_pos bigint, after_id bigint, through_pos bigint, through_id bigint,
                                    only_topic text, max_events int, max_bytes bigint)
returns table (pruned_through bigint, pos bigint, id bigint, ts float8, topic text, event text,
               data text, old text, changed text[], more boolean)
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
    select l.pruned_through, p.pos, p.id, p.ts, p.topic, p.event, p.data, p.old, p.changed, p.more
      from relay.log_identity l
      left join lateral (
        select sized.pos, sized.id, sized.ts, sized.topic, sized.event, sized.data, sized.old, sized.changed, sized.more
          from (
            select page.*,
                   sum(octet_length(page.data) + coalesce(octet_length(page.old), 0)) over in_order as bytes_through,
                   row_number() over in_order as nth,
                   lead(page.id) over in_order is not null as more
              from (
                (select c.pos, e.id, extract(epoch from c.committed_at)::float8 as ts, e.topic, e.event,
                        e.data::text as data, e.old::text as old, e.changed
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
                (select c.pos, e.id, extract(epoch from c.committed_at)::float8 as ts, e.topic, e.event,
                        e.data::text as data, e.old::text as old, e.changed
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
            window in_order as (order by page.pos, page.id rows unbounded preceding)
            order by page.pos, page.id
            limit max_events
          ) sized
         where sized.nth = 1 or sized.bytes_through <= max_bytes
      ) p on true;
end $$;

-- Down Migration
drop function relay.read_log_page(bigint, bigint, bigint, bigint, text, int, bigint);
drop function relay.read_log_commits(bigint, int, boolean, bigint);
