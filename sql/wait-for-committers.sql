-- Waits until every transaction that had drawn a commit position has ended (see
-- relay.wait_for_committers). Its own statement: it holds no lock, but waits as long as they run.
select relay.wait_for_committers()
