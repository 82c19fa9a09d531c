-- Up Migration

-- A topic name with a control character (U+0001 to U+001F, U+007F to U+009F) is refused where it
-- is made: by relay.watch and relay.allow (a CHECK on relay.watches and relay.grants) and by
-- relay.publish. Subscribers could never name such a topic: the relay refuses it in `subscribe`
-- with bad_request (src/protocol/client-messages.ts, the same characters), so a grant or a watch
-- of it was accepted without error and then served nobody, and relay.publish logged events that
-- nobody could receive, kept until retention.
--
-- NOT VALID: rows made before this migration are not checked (a migration that failed on them
-- would stop the relay from starting); they keep serving nobody, as before. New rows, and updates
-- of old ones, are checked.

alter table relay.watches
  add constraint watches_topic_without_control_characters check (topic !~ '[\x01-\x1f\x7f-\x9f]') not valid;
alter table relay.grants
  add constraint grants_topic_without_control_characters check (topic !~ '[\x01-\x1f\x7f-\x9f]') not valid;

-- As in the schema's migration, and the topic's characters are checked.
create or replace function relay.publish(topic text, event text, data jsonb) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if topic is null or length(topic) not between 1 and 256 then
    raise exception 'relay.publish: topic must be 1 to 256 characters' using errcode = 'invalid_parameter_value';
  end if;
  if topic ~ '[\x01-\x1f\x7f-\x9f]' then
    raise exception 'relay.publish: topic must not contain control characters' using errcode = 'invalid_parameter_value';
  end if;
  if event is null or length(event) not between 1 and 256 then
    raise exception 'relay.publish: event must be 1 to 256 characters' using errcode = 'invalid_parameter_value';
  end if;
  if jsonb_typeof(data) is distinct from 'object' then
    raise exception 'relay.publish: data must be a JSON object, got %', coalesce(jsonb_typeof(data), 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  perform relay.append_event(topic, event, data, null, null);
end $$;

-- Down Migration

alter table relay.watches drop constraint watches_topic_without_control_characters;
alter table relay.grants drop constraint grants_topic_without_control_characters;

create or replace function relay.publish(topic text, event text, data jsonb) returns void
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if topic is null or length(topic) not between 1 and 256 then
    raise exception 'relay.publish: topic must be 1 to 256 characters' using errcode = 'invalid_parameter_value';
  end if;
  if event is null or length(event) not between 1 and 256 then
    raise exception 'relay.publish: event must be 1 to 256 characters' using errcode = 'invalid_parameter_value';
  end if;
  if jsonb_typeof(data) is distinct from 'object' then
    raise exception 'relay.publish: data must be a JSON object, got %', coalesce(jsonb_typeof(data), 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  perform relay.append_event(topic, event, data, null, null);
end $$;
