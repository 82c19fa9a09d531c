-- The PostGraphile peer's side of the database. PostGraphile's documented LISTEN/NOTIFY pattern:
-- a trigger announces the event and the row's id on a topic, and the subscription field fetches
-- the row by id through PostGraphile's own plan (so the client gets the row as the GraphQL type,
-- and the notification stays far below pg_notify's 8000-byte limit whatever the row holds).
-- Two topics per row: the row's hospital, and every row (admins). A channel name is an
-- identifier of at most 63 bytes, and pg_notify raises an error for a longer one, which aborts the
-- writer's transaction: hospital ids must stay within 33 bytes (the bench's are like 'H17').
-- Idempotent: create or replace, drop trigger if exists.
create or replace function public.bench_orders_graphql_notify() returns trigger
language plpgsql as $$
declare
  payload text := json_build_object('event', lower(tg_op), 'id', new.id)::text;
begin
  perform pg_notify('graphql:bench_orders:hospital:' || new.hospital_id, payload);
  perform pg_notify('graphql:bench_orders:all', payload);
  return null; -- an AFTER trigger's result is ignored
end;
$$;

drop trigger if exists bench_orders_graphql_notify on public.bench_orders;
create trigger bench_orders_graphql_notify
  after insert or update on public.bench_orders
  for each row execute function public.bench_orders_graphql_notify();
