-- The newest event in the log (its commit position and id; 0, 0 when empty), and the position
-- through which retention has pruned it.
select coalesce(h.pos, 0) as pos, coalesce(h.id, 0) as id, l.pruned_through
  from relay.log_identity l
  left join lateral (
    select c.pos, (select max(e.id) from relay.events e where e.xid = c.xid) as id
      from relay.commits c
     order by c.pos desc
     limit 1
  ) h on true
