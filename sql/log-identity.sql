-- The random name of this event log (carried in every cursor) and the key that signs its
-- notifications, made anew if this database is a clone or a restore of another.
select epoch, signing_key from relay.claim_log_identity()
