-- A replay's first page: as read-log-page.sql, and on every row whether the cursor's own event
-- ($1 pos, $2 id) is in the log: a cursor naming none (and not below what retention pruned) comes
-- from another log, e.g. a database restored or cloned. One round trip where a resume took two.
select p.pruned_through, p.pos, p.id, p.ts, p.topic, p.event, p.data, p.old, p.changed, cursor_event.present as cursor_present
  from relay.read_log_page($1::bigint, $2::bigint, $3::bigint, $4::bigint, $5::text, $6::int) p
 cross join (
   select exists (
     select from relay.commits c join relay.events e on e.xid = c.xid
      where c.pos = $1::bigint and e.id = $2::bigint
   ) as present
 ) cursor_event
