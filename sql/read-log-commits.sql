-- Live delivery's read: arms the wake-up bell if $3, and returns the events of the commits after
-- position $1 in commit order, as stored, with the highest position drawn so far
-- (relay.read_log_commits). At most $2 events, and only as many as fit in $4 bytes of JSON text
-- (always the first, however large): a burst of large rows is read a few at a time, not a
-- thousand at once. more: whether another event followed this one before that cut.
-- One window, over the function's own order (ordinality): about 0.5 µs of PostgreSQL's CPU per
-- event read. Counting the events with count(*) over (), a second window, cost twice as much.
select drawn_through, pos, id, ts, topic, event, data, old, changed, more
  from (
    select page.*,
           sum(octet_length(page.data) + coalesce(octet_length(page.old), 0)) over in_order as bytes_through,
           row_number() over in_order as nth,
           lead(page.pos) over in_order is not null as more
      -- OFFSET 0 keeps the casts in this subquery: once per row, not once more for each use above.
      from (select r.drawn_through, r.pos, r.id, r.ts, r.topic, r.event, r.data::text as data, r.old::text as old,
                   r.changed, r.ordinality
              from relay.read_log_commits($1::bigint, $2::int, $3::boolean) with ordinality r
            offset 0) page
    window in_order as (order by page.ordinality rows unbounded preceding)
  ) sized
 where nth = 1 or bytes_through <= $4::bigint
 order by ordinality
