-- The newest event in the log: its commit position and id (no row when the log is empty).
select c.pos, (select max(e.id) from relay.events e where e.xid = c.xid) as id
  from relay.commits c
 order by c.pos desc
 limit 1
