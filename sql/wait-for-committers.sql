-- Waits, for at most $1 ms, until every transaction that had drawn a commit position has ended
-- (relay.wait_for_committers); all_ended says whether they all had.
select relay.wait_for_committers($1::int) as all_ended
