-- Up Migration

-- The example application of contract section 2: a delivery service's orders, its drivers'
-- positions and its merchants' stock. It lives in `public`, apart from the relay, and only calls
-- relay.* functions: the relay works without it (migrations/relay never mentions these tables).

-- Keeps updated_at current when a row really changes and the writer did not set updated_at
-- itself. An UPDATE that changes nothing leaves updated_at alone, so it publishes nothing.
create function public.touch_updated_at() returns trigger
language plpgsql as $$
begin
  if NEW is distinct from OLD and NEW.updated_at is not distinct from OLD.updated_at then
    NEW.updated_at := now();
  end if;
  return NEW;
end $$;

create table public.orders (
  id text primary key,
  hospital_id text,
  customer_id text,
  merchant_id text,
  driver_id text,
  status text default 'placed',
  rider jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz default now(),
  delivered_at timestamptz
);
-- One index per column that a grant filters on: the application's own "orders of hospital H"
-- screens, and the queries an operator runs to see what a role can see.
create index orders_by_hospital on public.orders (hospital_id);
create index orders_by_customer on public.orders (customer_id);
create index orders_by_merchant on public.orders (merchant_id);
create index orders_by_driver on public.orders (driver_id);
create trigger touch_updated_at before update on public.orders
  for each row execute function public.touch_updated_at();

create table public.driver_locations (
  driver_id text primary key,
  order_id text,
  customer_id text,
  lat double precision,
  lng double precision,
  heading double precision,
  speed double precision,
  updated_at timestamptz default now()
);
create index driver_locations_by_customer on public.driver_locations (customer_id);
create index driver_locations_by_order on public.driver_locations (order_id);
create trigger touch_updated_at before update on public.driver_locations
  for each row execute function public.touch_updated_at();

create table public.inventory (
  id text primary key,
  merchant_id text,
  product text,
  quantity int not null check (quantity >= 0),
  low_stock_threshold int not null check (low_stock_threshold >= 0),
  updated_at timestamptz default now()
);
create index inventory_by_merchant on public.inventory (merchant_id);
create trigger touch_updated_at before update on public.inventory
  for each row execute function public.touch_updated_at();

-- Stock events, published besides the plain `update`. Each side is judged against its own row's
-- threshold, so raising the threshold above the quantity is a `low_stock` too. Only UPDATE: the
-- contract speaks of a quantity that goes from one side to the other, and an INSERT comes from
-- nowhere (its `insert` event already carries the quantity).
-- SECURITY DEFINER: whoever may update inventory need not be allowed to call relay.publish.
create function public.publish_stock_events() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  was_low boolean := OLD.quantity <= OLD.low_stock_threshold;
  is_low boolean := NEW.quantity <= NEW.low_stock_threshold;
  stock_event text;
begin
  if OLD.quantity > 0 and NEW.quantity = 0 then
    stock_event := 'out_of_stock';
  elsif not was_low and is_low and NEW.quantity > 0 then
    stock_event := 'low_stock';
  elsif was_low and not is_low then
    stock_event := 'restocked';
  end if;
  if stock_event is not null then
    perform relay.publish('inventory', stock_event, to_jsonb(NEW));
  end if;
  return null;
end $$;
revoke execute on function public.publish_stock_events() from public;

-- Named after relay_watch on purpose: row triggers fire in name order, so a subscriber sees the
-- `update` first and the stock event after it.
create trigger stock_events after update of quantity, low_stock_threshold on public.inventory
  for each row
  when (OLD.quantity is distinct from NEW.quantity or OLD.low_stock_threshold is distinct from NEW.low_stock_threshold)
  execute function public.publish_stock_events();

select relay.watch('public.orders', 'orders');
select relay.watch('public.driver_locations', 'driver_locations');
select relay.watch('public.inventory', 'inventory');

select relay.allow('orders', 'admin');
select relay.allow('driver_locations', 'admin');
select relay.allow('inventory', 'admin');
select relay.allow('orders', 'hospital', '{"hospital_id": {"claim": "hospital_id"}}');
select relay.allow('orders', 'customer', '{"customer_id": {"claim": "sub"}}');
select relay.allow('driver_locations', 'customer', '{"customer_id": {"claim": "sub"}}');
select relay.allow('orders', 'driver', '{"driver_id": {"claim": "sub"}}');
select relay.allow('driver_locations', 'driver', '{"driver_id": {"claim": "sub"}}');
select relay.allow('orders', 'merchant', '{"merchant_id": {"claim": "merchant_id"}}');
select relay.allow('inventory', 'merchant', '{"merchant_id": {"claim": "merchant_id"}}');
-- A second alternative: an account that runs several stores carries their ids as a list.
select relay.allow('inventory', 'merchant', '{"merchant_id": {"in": {"claim": "merchant_ids"}}}');

-- Down Migration

-- Revokes every grant of these roles on these topics, including any an operator added later:
-- the topics themselves go away with the tables.

select relay.revoke(g.topic, g.role)
  from (values ('orders', 'admin'), ('driver_locations', 'admin'), ('inventory', 'admin'),
               ('orders', 'hospital'), ('orders', 'customer'), ('driver_locations', 'customer'),
               ('orders', 'driver'), ('driver_locations', 'driver'),
               ('orders', 'merchant'), ('inventory', 'merchant')) as g (topic, role);
select relay.unwatch('public.inventory');
select relay.unwatch('public.driver_locations');
select relay.unwatch('public.orders');
drop table public.inventory;
drop table public.driver_locations;
drop table public.orders;
drop function public.publish_stock_events();
drop function public.touch_updated_at();
