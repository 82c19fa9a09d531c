-- The write-path scenario's tables: the same rows three times, one plain, one watched by pg-relay,
-- one with the notify trigger a hand-written gateway installs (bench/peers/socketio/setup.sql's design).
drop table if exists public.bench_plain, public.bench_watched, public.bench_notified;
create table public.bench_plain (id int primary key, tenant text not null, n int not null, note text);
create table public.bench_watched (like public.bench_plain including all);
create table public.bench_notified (like public.bench_plain including all);
insert into public.bench_plain select i, 'H' || (i % 100), 0, 'row ' || i from generate_series(1, 10000) i;
insert into public.bench_watched select * from public.bench_plain;
insert into public.bench_notified select * from public.bench_plain;
select relay.watch('public.bench_watched', 'bench');

create or replace function public.bench_notify_row() returns trigger
language plpgsql as $$
begin
  perform pg_notify('bench_notified', row_to_json(NEW)::text);
  return NEW;
end $$;
create trigger bench_notify_row after insert or update on public.bench_notified
  for each row execute function public.bench_notify_row();
