-- Waits until every transaction that has taken a commit position is visible: relay.stamp_commit
-- holds this lock from taking the position until its commit is visible. Run in its own
-- transaction; the next statement's snapshot then sees all of them.
select pg_advisory_xact_lock(1919250028, 1885430625)
