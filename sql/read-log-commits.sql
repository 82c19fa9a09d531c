-- Live delivery's read: arms the wake-up bell if $3, and returns the events of the commits after
-- position $1 in commit order, as stored, with the highest position drawn so far: at most $2
-- events, and only as many as fit in $4 bytes of JSON text (always the first, however large); more
-- says whether another event followed before that cut (relay.read_log_commits).
select drawn_through, pos, id, ts, topic, event, data, old, changed, more
  from relay.read_log_commits($1::bigint, $2::int, $3::boolean, $4::bigint)
