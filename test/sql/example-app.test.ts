// The example application of contract section 2: its topics, its grants, its stock events.

import t from 'tap';
import { createTestDatabase } from '../helpers/database.ts';
import { eventsBeforeSentinel, listenForEvents } from '../helpers/notifications.ts';

const db = await createTestDatabase(t);
const listener = await listenForEvents(db.url);
t.teardown(() => listener.close());

t.test('the three tables are watched as topics of the same names, all columns', async (t) => {
  const { rows } = await db.pool.query(`select tbl::text, topic, columns from relay.watches order by topic`);
  t.same(rows, [
    { tbl: 'driver_locations', topic: 'driver_locations', columns: null },
    { tbl: 'inventory', topic: 'inventory', columns: null },
    { tbl: 'orders', topic: 'orders', columns: null },
  ]);
});

t.test('the tables have the columns clients can count on', async (t) => {
  const { rows } = await db.pool.query<{ table_name: string; column_name: string; data_type: string }>(
    `select table_name, column_name, data_type from information_schema.columns
      where table_schema = 'public' and table_name in ('orders', 'driver_locations', 'inventory')`,
  );
  const typeOf = (table: string, column: string): string | undefined =>
    rows.find((r) => r.table_name === table && r.column_name === column)?.data_type;
  const expected: Array<[string, string, string]> = [
    ['orders', 'id', 'text'],
    ['orders', 'hospital_id', 'text'],
    ['orders', 'customer_id', 'text'],
    ['orders', 'merchant_id', 'text'],
    ['orders', 'driver_id', 'text'],
    ['orders', 'status', 'text'],
    ['orders', 'rider', 'jsonb'],
    ['orders', 'created_at', 'timestamp with time zone'],
    ['orders', 'updated_at', 'timestamp with time zone'],
    ['orders', 'delivered_at', 'timestamp with time zone'],
    ['driver_locations', 'driver_id', 'text'],
    ['driver_locations', 'order_id', 'text'],
    ['driver_locations', 'customer_id', 'text'],
    ['driver_locations', 'lat', 'double precision'],
    ['driver_locations', 'lng', 'double precision'],
    ['driver_locations', 'heading', 'double precision'],
    ['driver_locations', 'speed', 'double precision'],
    ['driver_locations', 'updated_at', 'timestamp with time zone'],
    ['inventory', 'id', 'text'],
    ['inventory', 'merchant_id', 'text'],
    ['inventory', 'product', 'text'],
    ['inventory', 'quantity', 'integer'],
    ['inventory', 'low_stock_threshold', 'integer'],
    ['inventory', 'updated_at', 'timestamp with time zone'],
  ];
  for (const [table, column, type] of expected) t.equal(typeOf(table, column), type, `${table}.${column}`);
});

t.test('the grants are the contract’s', async (t) => {
  const { rows } = await db.pool.query<{ topic: string; role: string; filter: unknown; columns: unknown }>(
    `select topic, role, filter, columns from relay.grants order by topic, role, id`,
  );
  const sub = { claim: 'sub' };
  t.same(rows, [
    { topic: 'driver_locations', role: 'admin', filter: {}, columns: null },
    { topic: 'driver_locations', role: 'customer', filter: { customer_id: sub }, columns: null },
    { topic: 'driver_locations', role: 'driver', filter: { driver_id: sub }, columns: null },
    { topic: 'inventory', role: 'admin', filter: {}, columns: null },
    { topic: 'inventory', role: 'merchant', filter: { merchant_id: { claim: 'merchant_id' } }, columns: null },
    { topic: 'inventory', role: 'merchant', filter: { merchant_id: { in: { claim: 'merchant_ids' } } }, columns: null },
    { topic: 'orders', role: 'admin', filter: {}, columns: null },
    { topic: 'orders', role: 'customer', filter: { customer_id: sub }, columns: null },
    { topic: 'orders', role: 'driver', filter: { driver_id: sub }, columns: null },
    { topic: 'orders', role: 'hospital', filter: { hospital_id: { claim: 'hospital_id' } }, columns: null },
    { topic: 'orders', role: 'merchant', filter: { merchant_id: { claim: 'merchant_id' } }, columns: null },
  ]);
});

t.test('an order’s life: events carry the columns the grants filter on', async (t) => {
  await db.pool.query(
    `insert into orders (id, hospital_id, customer_id, merchant_id, driver_id, rider)
     values ('o1', 'h1', 'c1', 'm1', null, '{"name": "Ada", "room": 12}')`,
  );
  const placed = await listener.next();
  t.match(placed, {
    topic: 'orders',
    event: 'insert',
    data: { id: 'o1', hospital_id: 'h1', customer_id: 'c1', merchant_id: 'm1', driver_id: null, status: 'placed' },
  });
  t.same(placed.data?.['rider'], { name: 'Ada', room: 12 });

  await db.pool.query(`update orders set driver_id = 'd1', status = 'picked_up' where id = 'o1'`);
  const pickedUp = await listener.next();
  t.same([...(pickedUp.changed ?? [])].sort(), ['driver_id', 'status', 'updated_at'], 'updated_at moves with a change');
  t.match(pickedUp.old, { driver_id: null, status: 'placed' });

  await db.pool.query(`update orders set status = status, rider = rider where id = 'o1'`);
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'an update that changes nothing publishes nothing');

  await db.pool.query(`update orders set updated_at = '2020-01-01T00:00:00Z', status = 'delivered' where id = 'o1'`);
  const delivered = await listener.next();
  t.equal(delivered.data?.['updated_at'], '2020-01-01T00:00:00+00:00', 'an updated_at set by the writer is kept');

  await db.pool.query(`insert into driver_locations (driver_id, order_id, customer_id, lat, lng) values ('d1', 'o1', 'c1', 52.5, 13.4)`);
  t.match(await listener.next(), {
    topic: 'driver_locations',
    event: 'insert',
    data: { driver_id: 'd1', customer_id: 'c1', lat: 52.5, lng: 13.4 },
  });
  await db.pool.query(`update driver_locations set lat = 52.51, heading = 90 where driver_id = 'd1'`);
  const moved = await listener.next();
  t.same([...(moved.changed ?? [])].sort(), ['heading', 'lat', 'updated_at']);
});

// Threshold 5 throughout: [quantity before, quantity after, stock event expected or null].
const TRANSITIONS: Array<[number, number, string | null]> = [
  [20, 10, null], // stays above
  [10, 6, null],
  [6, 5, 'low_stock'], // to the threshold
  [5, 3, null], // stays low
  [3, 0, 'out_of_stock'],
  [0, 0, null], // no change at all: not even an update (checked below)
  [0, 2, null], // from out of stock to low: neither restocked nor low_stock
  [2, 6, 'restocked'],
  [6, 0, 'out_of_stock'], // straight to zero: out_of_stock, not low_stock
  [0, 30, 'restocked'],
  [30, 1, 'low_stock'],
  [1, 5, null], // up, but not above the threshold
  [5, 6, 'restocked'],
];

t.test('inventory stock events: low_stock, out_of_stock, restocked, besides the update', async (t) => {
  await db.pool.query(`insert into inventory (id, merchant_id, product, quantity, low_stock_threshold) values ('i1', 'm1', 'gauze', 20, 5)`);
  const inserted = await listener.next();
  t.match(inserted, { topic: 'inventory', event: 'insert', data: { id: 'i1', merchant_id: 'm1', quantity: 20 } });

  for (const [from, to, expected] of TRANSITIONS) {
    const { rows } = await db.pool.query<{ quantity: number }>(`select quantity from inventory where id = 'i1'`);
    t.equal(rows[0]?.quantity, from, `starting at ${from}`);
    await db.pool.query(`update inventory set quantity = $1 where id = 'i1'`, [to]);
    const events = await eventsBeforeSentinel(listener, db.pool);
    const what = `${from} -> ${to}`;
    if (from === to) {
      t.same(events, [], `${what}: nothing at all`);
      continue;
    }
    t.same(
      events.map((e) => e.event),
      expected ? ['update', expected] : ['update'],
      `${what}: ${expected ?? 'no stock event'}`,
    );
    const [update, stock] = events;
    if (stock) {
      t.equal(stock.topic, 'inventory');
      t.same(stock.data, update?.data, `${what}: data is the new row, merchant_id included`);
      t.equal(stock.pos, update?.pos, `${what}: in the same commit as the update`);
      t.ok((stock.id ?? 0) > (update?.id ?? Infinity), `${what}: after the update`);
      t.equal(stock.old ?? null, null);
    }
  }
});

t.test('the threshold is each row’s own, and a change of it counts too', async (t) => {
  await db.pool.query(`insert into inventory (id, merchant_id, product, quantity, low_stock_threshold) values ('i2', 'm2', 'tape', 8, 5)`);
  await listener.next();
  await db.pool.query(`update inventory set low_stock_threshold = 10 where id = 'i2'`);
  t.same(
    (await eventsBeforeSentinel(listener, db.pool)).map((e) => e.event),
    ['update', 'low_stock'],
    'raising the threshold above the quantity: low_stock',
  );
  await db.pool.query(`update inventory set low_stock_threshold = 2 where id = 'i2'`);
  t.same(
    (await eventsBeforeSentinel(listener, db.pool)).map((e) => e.event),
    ['update', 'restocked'],
    'lowering it below: restocked',
  );
  await db.pool.query(`update inventory set product = 'tape, wide' where id = 'i2'`);
  t.same(
    (await eventsBeforeSentinel(listener, db.pool)).map((e) => e.event),
    ['update'],
    'other columns: only the update',
  );
});

t.test('inserts publish no stock event; a statement over several rows publishes per row', async (t) => {
  await db.pool.query(
    `insert into inventory (id, merchant_id, product, quantity, low_stock_threshold)
     values ('i3', 'm3', 'a', 0, 5), ('i4', 'm3', 'b', 3, 5), ('i5', 'm3', 'c', 9, 5)`,
  );
  t.same(
    (await eventsBeforeSentinel(listener, db.pool)).map((e) => e.event),
    ['insert', 'insert', 'insert'],
    'a row that starts low or empty only has its insert',
  );
  await db.pool.query(`update inventory set quantity = 0 where merchant_id = 'm3'`);
  const events = await eventsBeforeSentinel(listener, db.pool);
  const stock = events.filter((e) => e.event !== 'update');
  t.equal(events.length - stock.length, 2, 'two rows changed (one was 0 already)');
  t.same(
    stock.map((e) => [e.event, e.data?.['id']]).sort(),
    [
      ['out_of_stock', 'i4'],
      ['out_of_stock', 'i5'],
    ],
  );
});

t.test('quantities below zero are refused', async (t) => {
  await t.rejects(db.pool.query(`update inventory set quantity = -1 where id = 'i1'`), { code: '23514' });
});
