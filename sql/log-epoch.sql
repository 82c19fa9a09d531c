-- The random name of this event log, carried in every cursor.
select epoch from relay.log_identity
