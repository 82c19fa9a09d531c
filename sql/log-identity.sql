-- The random name of this event log (carried in every cursor), made anew if this database is a
-- clone or a restore of another.
select epoch from relay.claim_log_identity()
