-- The highest commit position drawn (0 before the first), read first, then waits for at most $1 ms
-- until every transaction that had drawn a position has ended (relay.wait_for_committers);
-- all_ended says whether they all had. Read in the same statement as the wait, on the same server:
-- after a crash the sequence hands out again the positions whose WAL was not flushed, so a
-- position drawn before the crash says nothing about what is settled after it.
select d.drawn, relay.wait_for_committers($1::int) as all_ended
  from (select case when is_called then last_value else 0 end as drawn from relay.commit_position) d
