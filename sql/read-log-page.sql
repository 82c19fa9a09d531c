-- One page of the event log in commit order, as stored: events after ($1 pos, $2 id) and at most
-- ($3 pos, $4 id), of topic $5 (null: every topic), at most $6 of them and only as many as fit in
-- $7 bytes of JSON text (always the first, however large), with the position through which
-- retention has pruned the log and whether another event followed before the cut
-- (relay.read_log_page). cursor_present: whether the event ($1 pos, $2 id) is in the log, for a
-- replay's first page: a cursor naming none (and not below what retention pruned) comes from
-- another log, e.g. a database restored or cloned.
select p.pruned_through, p.pos, p.id, p.ts, p.topic, p.event, p.data, p.old, p.changed, p.more,
       cursor_event.present as cursor_present
  from relay.read_log_page($1::bigint, $2::bigint, $3::bigint, $4::bigint, $5::text, $6::int, $7::bigint) p
 cross join (
   select exists (
     select from relay.commits c join relay.events e on e.xid = c.xid
      where c.pos = $1::bigint and e.id = $2::bigint
   ) as present
 ) cursor_event
