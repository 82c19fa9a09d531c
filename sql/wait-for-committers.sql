-- Waits until every transaction that had drawn a commit position has ended (see
-- relay.wait_for_committers). Its own statement: the locks it takes to wait go with it.
select relay.wait_for_committers()
