-- One page of the event log in commit order, as stored: events after ($1 pos, $2 id) and at most
-- ($3 pos, $4 id), of topic $5 (null: every topic), at most $6 of them, with the position through
-- which retention has pruned the log (relay.read_log_page).
select pruned_through, pos, id, ts, topic, event, data, old, changed
  from relay.read_log_page($1::bigint, $2::bigint, $3::bigint, $4::bigint, $5::text, $6::int)
