-- Whether the event at ($1 pos, $2 id) is in the log: a cursor naming one that is not (and is not
-- below what retention pruned) comes from another log, e.g. a database restored or cloned.
select exists (
  select from relay.commits c join relay.events e on e.xid = c.xid
   where c.pos = $1::bigint and e.id = $2::bigint
) as present
