-- Bodies of events whose notification was too large to carry them ($1: event ids).
select id, data, old, changed
  from relay.events
 where id = any($1::bigint[])
