-- Topics a client may name: watched or granted (contract section 2).
select topic from relay.topics
