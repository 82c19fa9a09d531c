-- Deletes one batch of events older than the retention ($1: interval, $2: batch size); returns how many commits went.
select relay.prune($1::interval, $2::int) as pruned
