-- The newest event at or below position $1 (the highest position drawn before every committer was
-- waited for): its commit position and id; no row when there is none.
select c.pos, (select max(e.id) from relay.events e where e.xid = c.xid) as id
  from relay.commits c
 where c.pos <= $1::bigint
 order by c.pos desc
 limit 1
