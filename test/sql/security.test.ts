// Who may do what: publishing and the admin functions are for the roles the owner chooses, while
// any role that may write a watched table produces its events without rights on the relay schema.

import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import pg from 'pg';
import { finishesWithoutLockWait, waitOrFinish } from '../helpers/backend-waits.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { eventsBeforeSentinel, listenForEvents } from '../helpers/notifications.ts';

const db = await createTestDatabase(t);
const listener = await listenForEvents(db.url);
t.teardown(() => listener.close());

/**
 * A login-less role for one test, dropped afterwards (roles are cluster-wide, the database is not),
 * and a connection of its own that has SET ROLE to it.
 */
async function connectAs(t: Test, privileges: string[] = []): Promise<{ role: string; client: pg.Client }> {
  const role = `relay_test_${randomBytes(5).toString('hex')}`;
  await db.pool.query(`create role ${role} nologin`);
  t.teardown(async () => {
    await db.pool.query(`drop owned by ${role}`);
    await db.pool.query(`drop role ${role}`);
  });
  for (const privilege of privileges) await db.pool.query(privilege.replaceAll('$role', role));
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  t.teardown(() => client.end());
  await client.query(`set role ${role}`);
  return { role, client };
}

t.test('a fresh role cannot publish', async (t) => {
  const { client } = await connectAs(t);
  await t.rejects(client.query(`select relay.publish('orders', 'forged', '{}')`), { code: '42501' });
  t.same(await eventsBeforeSentinel(listener, db.pool), []);
});

t.test('USAGE on the relay schema is not enough to publish, forge or grant', async (t) => {
  const { client } = await connectAs(t, [`grant usage on schema relay to $role`]);
  const refused = [
    `select relay.publish('orders', 'forged', '{}')`,
    `select relay.append_event('orders', 'update', '{}', '{"status": "x"}', '{status}')`,
    `select relay.allow('orders', 'customer', '{}')`,
    `select relay.revoke('orders', 'admin')`,
    `select relay.watch('orders', 'stolen')`,
    `select relay.unwatch('orders')`,
    `insert into relay.events (topic, event, data) values ('orders', 'forged', '{}')`,
    `insert into relay.grants (topic, role) values ('orders', 'customer')`,
    `select * from relay.events`,
    `select * from relay.grants`,
  ];
  for (const sql of refused) {
    await t.rejects(client.query(sql), { code: '42501', message: /permission denied/ }, sql);
  }
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'nothing was published');
  const { rows } = await db.pool.query(`select count(*)::int as n from relay.grants where role = 'customer' and filter = '{}'`);
  t.equal(rows[0]?.n, 0, 'no grant was made');
});

t.test('a role granted EXECUTE on relay.publish can publish', async (t) => {
  const { client } = await connectAs(t, [
    `grant usage on schema relay to $role`,
    `grant execute on function relay.publish(text, text, jsonb) to $role`,
  ]);
  await client.query(`select relay.publish('alerts', 'allowed', '{"by": "publisher"}')`);
  t.match(await listener.next(), { topic: 'alerts', event: 'allowed', data: { by: 'publisher' } });
});

t.test('a writer without rights on the relay schema still produces events', async (t) => {
  const { role, client } = await connectAs(t, [
    `grant select, insert, update, delete on orders, inventory, driver_locations to $role`,
  ]);
  const { rows } = await db.pool.query<{ usage: boolean }>(`select has_schema_privilege($1, 'relay', 'usage') as usage`, [role]);
  t.equal(rows[0]?.usage, false, 'the writer has no USAGE on schema relay');

  await client.query(`insert into orders (id, hospital_id) values ('sec1', 'h1')`);
  t.match(await listener.next(), { topic: 'orders', event: 'insert', data: { id: 'sec1', hospital_id: 'h1' } });
  await client.query(`update orders set status = 'picked_up' where id = 'sec1'`);
  t.match(await listener.next(), { topic: 'orders', event: 'update', old: { status: 'placed' } });
  await client.query(`delete from orders where id = 'sec1'`);
  t.match(await listener.next(), { topic: 'orders', event: 'delete', data: { id: 'sec1' } });

  await client.query('begin');
  await client.query(`insert into driver_locations (driver_id, lat, lng) values ('dsec', 1, 2)`);
  await client.query(`insert into inventory (id, merchant_id, quantity, low_stock_threshold) values ('isec', 'm1', 9, 5)`);
  await client.query('commit');
  const [location, stock] = await listener.take(2);
  t.match(location, { topic: 'driver_locations', event: 'insert' });
  t.match(stock, { topic: 'inventory', event: 'insert' });
  t.equal(location?.pos, stock?.pos, 'one commit position, taken on the writer’s behalf');

  await client.query(`update inventory set quantity = 2 where id = 'isec'`);
  t.same(
    (await eventsBeforeSentinel(listener, db.pool)).map((e) => e.event),
    ['update', 'low_stock'],
    'the example’s stock events too, though the writer may not call relay.publish',
  );
});

t.test('a role refused relay.publish cannot forge events through the relay’s trigger functions', async (t) => {
  // The trigger functions run as the relay's owner. If any role may attach them to a table of its
  // own, USAGE on the relay schema plus a schema to create in is enough to publish on any topic
  // (capture_row_change with a topic argument of its choosing) or to re-send and re-stamp other
  // transactions' events (stamp_commit with an xid of its choosing).
  const { role, client } = await connectAs(t, [`grant usage on schema relay to $role`]);
  await db.pool.query(`create schema ${role} authorization ${role}`);
  await client.query(`create table ${role}.fake_orders (id text, hospital_id text, status text)`);
  await client.query(`create table ${role}.fake_events (id bigint, xid xid8)`);
  await t.rejects(
    client.query(
      `create trigger forge after insert on ${role}.fake_orders
         for each row execute function relay.capture_row_change('orders', '')`,
    ),
    { code: '42501' },
    'capture_row_change cannot be attached',
  );
  await t.rejects(
    client.query(
      `create trigger replay after insert on ${role}.fake_events
         for each row execute function relay.stamp_commit()`,
    ),
    { code: '42501' },
    'stamp_commit cannot be attached',
  );
  // Whatever the triggers above did, a forged row must not reach the channel.
  await client.query(`insert into ${role}.fake_orders values ('forged', 'h1', 'delivered')`).catch(() => undefined);
  t.same(
    (await eventsBeforeSentinel(listener, db.pool)).map((e) => `${e.topic}:${e.event}`),
    [],
    'nothing forged was notified',
  );
});

t.test('the trigger functions cannot be called directly', async (t) => {
  const { client } = await connectAs(t, [`grant usage on schema relay to $role`]);
  await t.rejects(client.query(`select relay.capture_row_change()`), /permission denied for function capture_row_change/);
  await t.rejects(client.query(`select relay.stamp_commit()`), /permission denied for function stamp_commit/);
});

t.test('a role with no privileges holds back neither a writer’s commit nor the relay’s wait for committers', async (t) => {
  // Advisory locks need no privilege. The commit stamp took one named after its backend, and
  // relay.wait_for_committers waited for every holder of that class: any role that could connect
  // could freeze a writer's commits, and every relay, for as long as it liked.
  const { client: intruder } = await connectAs(t);
  const connect = async (): Promise<{ client: pg.Client; pid: number }> => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    t.teardown(() => client.end());
    const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
    return { client, pid: rows[0]!.pid };
  };
  const writer = await connect();
  const waiter = await connect();
  const hold = async (): Promise<void> => {
    await intruder.query('select pg_advisory_lock_shared(1919250029, $1)', [writer.pid]);
    await intruder.query('select pg_advisory_lock(1919250029, 42)');
  };
  const letGo = (): Promise<unknown> => intruder.query('select pg_advisory_unlock_all()');

  await hold();
  const commit = writer.client.query(`insert into orders (id, hospital_id) values ('sec-held', 'h1')`);
  t.ok(await finishesWithoutLockWait(db.pool, writer.pid, commit, letGo), 'the writer commits at once');
  t.match(await listener.next(), { topic: 'orders', event: 'insert', data: { id: 'sec-held' } });

  await hold();
  const wait = waiter.client.query('select relay.wait_for_committers()');
  t.ok(await finishesWithoutLockWait(db.pool, waiter.pid, wait, letGo), 'relay.wait_for_committers returns at once');

  // What it waits for now, ROW EXCLUSIVE on relay.commits, takes a write privilege on that table.
  for (const sql of ['lock table relay.commits in row exclusive mode', `prepare held as insert into relay.commits values (1, '1', now())`]) {
    await intruder.query('begin');
    await t.rejects(intruder.query(sql), { code: '42501' }, sql);
    await intruder.query('rollback');
  }
});

t.test('a relay role that is no superuser waits for a transaction that has drawn a position', async (t) => {
  // relay.wait_for_committers finds committers in pg_locks, which every role may read.
  const { client: relayRole } = await connectAs(t, [`grant usage on schema relay to $role`, `grant select on all tables in schema relay to $role`]);
  const { rows } = await relayRole.query<{ pid: number }>('select pg_backend_pid() as pid');
  const committer = new pg.Client({ connectionString: db.url });
  await committer.connect();
  t.teardown(() => committer.end());
  await committer.query('begin');
  await committer.query(`insert into orders (id, hospital_id) values ('sec-drawn', 'h1')`);
  await committer.query('set constraints all immediate');
  const wait = relayRole.query('select relay.wait_for_committers()');
  t.equal(await waitOrFinish(db.pool, rows[0]!.pid, wait, ['Timeout', 'Lock']), 'Timeout', 'it waits while the committer runs');
  await committer.query('commit');
  await wait;
  t.match(await listener.next(), { topic: 'orders', event: 'insert', data: { id: 'sec-drawn' } });
});
