-- The position through which retention has deleted the log: a live stream still below it has lost
-- events it never delivered.
select pruned_through from relay.log_identity
