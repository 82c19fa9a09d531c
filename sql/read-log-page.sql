-- One page of the event log in commit order: events after ($1 pos, $2 id) and at most
-- ($3 pos, $4 id), of topic $5 (null: every topic), at most $6 of them; and, read in the same
-- snapshot, the position through which retention has pruned the log (on every row, and on a
-- row of nulls when the page is empty), so a reader knows whether the page is whole.
select l.pruned_through, p.*
  from relay.log_identity l
  left join lateral (
    select c.pos, e.id, extract(epoch from c.committed_at)::float8 as ts, e.topic, e.event, e.data, e.old, e.changed
      from relay.commits c
      join relay.events e on e.xid = c.xid
     where (c.pos, e.id) > ($1::bigint, $2::bigint)
       and (c.pos, e.id) <= ($3::bigint, $4::bigint)
       and ($5::text is null or e.topic = $5::text)
     order by c.pos, e.id
     limit $6
  ) p on true
