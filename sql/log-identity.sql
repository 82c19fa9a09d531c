-- The random name of this event log (carried in every cursor) and the key that signs its notifications.
select epoch, signing_key from relay.log_identity
