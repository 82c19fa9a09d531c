-- Live delivery's read: arms the wake-up bell if $3, and returns the events of the commits after
-- position $1, at most $2, in commit order, as stored, with the highest position drawn so far
-- (relay.read_log_commits).
select drawn_through, pos, id, ts, topic, event, data, old, changed
  from relay.read_log_commits($1::bigint, $2::int, $3::boolean)
