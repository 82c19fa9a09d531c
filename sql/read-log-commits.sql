-- Live delivery's read: every event of the commits after position $1 through $2, in commit order,
-- at most $3 of them. The relay's usual read: it starts where a whole commit ended, so it needs
-- neither the cursor's own transaction nor the pruned position that read-log-page.sql handles
-- (and plans in a quarter of its time: it runs for every batch of notifications).
select c.pos, e.id, extract(epoch from c.committed_at)::float8 as ts, e.topic, e.event, e.data, e.old, e.changed
  from relay.commits c
  join relay.events e on e.xid = c.xid
 where c.pos > $1::bigint and c.pos <= $2::bigint
 order by c.pos, e.id
 limit $3;
