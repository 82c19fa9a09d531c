-- The socket.io peer's side of the database: every inserted or updated order is sent whole, as
-- its row in JSON, on channel bench_orders (row_to_json writes the bigint id and sent_at as JSON
-- numbers). This is the notify trigger our users write today. pg_notify refuses a payload of
-- 8000 bytes or more, and its error aborts the writer's transaction: keep the bench's note short.
create or replace function public.bench_orders_notify() returns trigger
language plpgsql as $$
begin
  perform pg_notify('bench_orders', row_to_json(new)::text);
  return null; -- an AFTER trigger's result is ignored
end;
$$;

drop trigger if exists bench_orders_notify on public.bench_orders;
create trigger bench_orders_notify
  after insert or update on public.bench_orders
  for each row execute function public.bench_orders_notify();
