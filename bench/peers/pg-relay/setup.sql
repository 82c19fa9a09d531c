-- pg-relay's side of the bench workload: watch the table, and grant each role what the workload
-- says (bench/peers/README.md): a hospital its own rows, an admin every row.
select relay.watch('public.bench_orders', 'orders');
select relay.allow('orders', 'hospital', '{"hospital_id": {"claim": "hospital_id"}}');
select relay.allow('orders', 'admin', '{}');
