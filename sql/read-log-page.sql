-- One page of the event log in commit order: events after ($1 pos, $2 id) and at most
-- ($3 pos, $4 id), of topic $5 (null: every topic), at most $6 of them; and, read in the same
-- snapshot, the position through which retention has pruned the log (on every row, and on a
-- row of nulls when the page is empty), so a reader knows whether the page is whole.
-- Two branches, so that each walks an index from the cursor instead of scanning the log: the
-- rest of the cursor's own transaction (by events (xid, id)), then the later transactions (by
-- commits (pos), each transaction's events by (xid, id)).
select l.pruned_through, p.*
  from relay.log_identity l
  left join lateral (
    select *
      from (
        (select c.pos, e.id, extract(epoch from c.committed_at)::float8 as ts, e.topic, e.event, e.data, e.old, e.changed
           from relay.commits c
           join relay.events e on e.xid = c.xid
          where c.pos = $1::bigint and e.id > $2::bigint
            and (c.pos < $3::bigint or e.id <= $4::bigint)
            and ($5::text is null or e.topic = $5::text)
          order by e.id
          limit $6)
        union all
        (select c.pos, e.id, extract(epoch from c.committed_at)::float8 as ts, e.topic, e.event, e.data, e.old, e.changed
           from relay.commits c
           join relay.events e on e.xid = c.xid
          where c.pos > $1::bigint and c.pos <= $3::bigint
            and (c.pos < $3::bigint or e.id <= $4::bigint)
            and ($5::text is null or e.topic = $5::text)
          order by c.pos, e.id
          limit $6)
      ) page
     order by page.pos, page.id
     limit $6
  ) p on true
