-- The bench's workload table, the same for every system under test: an order of a hospital,
-- stamped by its writer with the writer's clock (µs of CLOCK_MONOTONIC, shared by every process
-- of this machine) so a subscriber can compute commit-to-client latency.
create table if not exists public.bench_orders (
  id bigint generated always as identity primary key,
  hospital_id text not null,
  status text not null,
  sent_at bigint not null,
  note text not null
);
