// Who may do what: publishing and the admin functions are for the roles the owner chooses, while
// any role that may write a watched table produces its events without rights on the relay schema.

import t, { type Test } from 'tap';
import pg from 'pg';
import { finishesWithoutLockWait, waitOrFinish } from '../helpers/backend-waits.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { connectAs } from '../helpers/test-role.ts';
import { eventsBeforeSentinel, listenForEvents } from '../helpers/notifications.ts';

const db = await createTestDatabase(t);
const listener = await listenForEvents(db.url);
t.teardown(() => listener.close());

t.test('a fresh role cannot publish', async (t) => {
  const { client } = await connectAs(t, db);
  await t.rejects(client.query(`select relay.publish('orders', 'forged', '{}')`), { code: '42501' });
  t.same(await eventsBeforeSentinel(listener, db.pool), []);
});

t.test('USAGE on the relay schema is not enough to publish, forge or grant', async (t) => {
  const { client } = await connectAs(t, db, [`grant usage on schema relay to $role`]);
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
  const { client } = await connectAs(t, db, [
    `grant usage on schema relay to $role`,
    `grant execute on function relay.publish(text, text, jsonb) to $role`,
  ]);
  await client.query(`select relay.publish('alerts', 'allowed', '{"by": "publisher"}')`);
  t.match(await listener.next(), { topic: 'alerts', event: 'allowed', data: { by: 'publisher' } });
});

t.test('a writer without rights on the relay schema still produces events', async (t) => {
  const { role, client } = await connectAs(t, db, [
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
  const { role, client } = await connectAs(t, db, [`grant usage on schema relay to $role`]);
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

/**
 * On `client` (set to a test role): a composite type of the role's own in pg_temp, an implicit
 * cast from it to jsonb that writes a grant named after whoever runs it, and a temporary table whose
 * `filter` column has that type, as relay.grants' filter is jsonb. relay.check_grant attached to
 * that table converts the column as the relay's owner, if it runs at all.
 */
async function prepareCastThatForgesGrants(client: pg.Client): Promise<void> {
  await client.query(`create type pg_temp.forging as (x int)`);
  await client.query(`
    create function pg_temp.forging_to_jsonb(pg_temp.forging) returns jsonb language plpgsql as $f$
    begin
      insert into relay.grants (topic, role, filter) values ('orders', 'forged_by_' || current_user, '{}');
      return '{}';
    end $f$`);
  await client.query(`create cast (pg_temp.forging as jsonb) with function pg_temp.forging_to_jsonb(pg_temp.forging) as implicit`);
  await client.query(`create temp table fake_grants (topic text, filter pg_temp.forging, columns text[])`);
}

async function forgedGrants(): Promise<string[]> {
  const { rows } = await db.pool.query<{ role: string }>(`select role from relay.grants where role like 'forged_by_%'`);
  return rows.map((row) => row.role);
}

t.test('a role with USAGE on relay cannot run SQL as the relay’s owner through the grants’ check', async (t) => {
  // A publisher's privileges, as the README gives them. relay.check_grant runs as the relay's owner
  // (it reads the catalog for relay.allow's warnings); attached to a table of the role's own, it
  // would convert that table's columns with the owner's rights.
  const { client } = await connectAs(t, db, [
    `grant usage on schema relay to $role`,
    `grant execute on function relay.publish(text, text, jsonb) to $role`,
  ]);
  await prepareCastThatForgesGrants(client);
  await t.rejects(
    client.query(`create trigger check_fake before insert on pg_temp.fake_grants for each row execute function relay.check_grant()`),
    { code: '42501', message: /permission denied for function (relay\.)?check_grant/ },
    'check_grant cannot be attached',
  );
  await client.query(`insert into pg_temp.fake_grants values ('orders', row(1), null)`).catch(() => undefined);
  t.same(await forgedGrants(), [], 'no grant was forged');
});

t.test('relay.check_grant runs for relay.grants only, even for a role given EXECUTE on it', async (t) => {
  const { client } = await connectAs(t, db, [
    `grant usage on schema relay to $role`,
    `grant execute on function relay.check_grant() to $role`,
  ]);
  await prepareCastThatForgesGrants(client);
  await client.query(`create trigger check_fake before insert on pg_temp.fake_grants for each row execute function relay.check_grant()`);
  await t.rejects(
    client.query(`insert into pg_temp.fake_grants values ('orders', row(1), null)`),
    { code: '42501', message: /relay\.check_grant checks rows of relay\.grants, not of (pg_temp_\d+\.)?fake_grants/ },
    'the trigger refuses the row before reading it',
  );
  t.same(await forgedGrants(), [], 'no grant was forged');
  await db.pool.query(`select relay.allow('orders', 'grant_check_witness', '{"status": "placed"}')`);
  const { rows } = await db.pool.query(`select filter from relay.grants where role = 'grant_check_witness'`);
  t.same(rows, [{ filter: { status: 'placed' } }], 'relay.allow still makes grants');
  await t.rejects(
    db.pool.query(`select relay.allow('orders', 'grant_check_witness', '{"status": {"near": 1}}')`),
    { code: '22023' },
    'and still checks them',
  );
});

t.test('no SECURITY DEFINER function of the relay schema may be run by PUBLIC', async (t) => {
  // Each runs as the relay's owner; who may run it is the owner's choice (relay.publish to
  // publishers, and so on), never every role's by default.
  const { rows } = await db.pool.query<{ name: string; public_may_execute: boolean }>(
    `select p.oid::regprocedure::text as name,
            exists (select from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                     where a.grantee = 0 and a.privilege_type = 'EXECUTE') as public_may_execute
       from pg_proc p
      where p.pronamespace = 'relay'::regnamespace and p.prosecdef
      order by 1`,
  );
  t.ok(rows.length >= 7, `the schema's SECURITY DEFINER functions: ${rows.map((row) => row.name).join(', ')}`);
  t.same(
    rows.filter((row) => row.public_may_execute).map((row) => row.name),
    [],
    'none is left to PUBLIC',
  );
});

t.test('the trigger functions cannot be called directly', async (t) => {
  const { client } = await connectAs(t, db, [`grant usage on schema relay to $role`]);
  await t.rejects(client.query(`select relay.capture_row_change()`), /permission denied for function capture_row_change/);
  await t.rejects(client.query(`select relay.stamp_commit()`), /permission denied for function stamp_commit/);
});

t.test('a role with no privileges holds back neither a writer’s commit nor the relay’s wait for committers', async (t) => {
  // Advisory locks need no privilege. The commit stamp took one named after its backend, and
  // relay.wait_for_committers waited for every holder of that class: any role that could connect
  // could freeze a writer's commits, and every relay, for as long as it liked.
  const { client: intruder } = await connectAs(t, db);
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
  const { client: relayRole } = await connectAs(t, db, [`grant usage on schema relay to $role`, `grant select on all tables in schema relay to $role`]);
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

// The row trigger writes the log as the relay's owner. PostgreSQL's to_jsonb calls a cast to json
// that the owner of a column's type defined, as whoever converts the row: were that the relay's
// owner, the owner of any watched table could run its own SQL with the relay owner's rights.

/** The role that owns the relay schema: what the trigger functions could run as. */
async function relayOwner(): Promise<string> {
  const { rows } = await db.pool.query<{ owner: string }>(`select nspowner::regrole::text as owner from pg_namespace where nspname = 'relay'`);
  return rows[0]!.owner;
}

/** A role owning a schema of its own (named after it) with a table in it, watched by the database owner as `topic`. */
async function watchedTableOwner(t: Test, topic: string): Promise<{ role: string; client: pg.Client; table: string }> {
  const { role, client } = await connectAs(t, db);
  await db.pool.query(`create schema ${role} authorization ${role}`);
  const table = `${role}.things`;
  await client.query(`create table ${table} (id int primary key, v text)`);
  await db.pool.query(`select relay.watch($1, $2)`, [table, topic]);
  return { role, client, table };
}

t.test('the owner of a watched table cannot run SQL as the relay’s owner through a cast to json', async (t) => {
  const { role, client, table } = await watchedTableOwner(t, 'cast_attack');
  await client.query(`create type ${role}.mood as enum ('ok')`);
  // What the audit found: a grant for itself and an event on a topic it has no business in.
  await client.query(`
    create function ${role}.mood_to_json(${role}.mood) returns json language plpgsql as $f$
    begin
      insert into relay.grants (topic, role, filter) values ('orders', 'attacker', '{}');
      perform relay.append_event('orders', 'update', jsonb_build_object('id', 'forged', 'by', current_user), null, null);
      return to_json(current_user::text);
    end $f$`);
  await client.query(`create cast (${role}.mood as json) with function ${role}.mood_to_json(${role}.mood)`);
  await client.query(`alter table ${table} add column m ${role}.mood`);

  await t.rejects(
    client.query(`insert into ${table} (id, v, m) values (2, 'b', 'ok')`),
    { code: '42501', message: /permission denied for schema relay/ },
    'the cast runs with the writer’s rights, which do not reach the relay schema',
  );
  const { rows } = await db.pool.query(`select count(*)::int as n from relay.grants where role = 'attacker'`);
  t.equal(rows[0]?.n, 0, 'no grant was made');
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'nothing was published, forged or not');
});

t.test('a cast to json, however the row reaches it, runs as the writer', async (t) => {
  const owner = await relayOwner();
  const { role, client, table } = await watchedTableOwner(t, 'cast_shapes');
  const { role: writer, client: writerClient } = await connectAs(t, db, [
    `grant usage on schema ${role} to $role`,
    `grant select, insert, update, delete on ${table} to $role`,
  ]);
  // The cast says who ran it; the writer may read and write the table, nothing more.
  await client.query(`create type ${role}.mood as enum ('ok', 'meh')`);
  await client.query(`create function ${role}.mood_to_json(${role}.mood) returns json language sql as $f$ select to_json(current_user::text) $f$`);
  await client.query(`create cast (${role}.mood as json) with function ${role}.mood_to_json(${role}.mood)`);
  await client.query(`create type ${role}.boxed as (m ${role}.mood)`);
  await client.query(`create domain ${role}.checked as ${role}.mood check (value is not null)`);
  await client.query(`alter table ${table} add column plain ${role}.mood, add column list ${role}.mood[],
                        add column boxed ${role}.boxed, add column checked ${role}.checked`);
  await client.query(`grant usage on type ${role}.mood, ${role}.boxed, ${role}.checked to public`);

  await writerClient.query(`insert into ${table} values (1, 'a', 'ok', '{ok,ok}', row('ok'), 'ok')`);
  const inserted = await listener.next();
  t.same(
    inserted.data,
    { id: 1, v: 'a', plain: writer, list: [writer, writer], boxed: { m: writer }, checked: writer },
    'as a column, in an array, in a composite value and under a domain, the cast saw the writer',
  );
  await writerClient.query(`update ${table} set v = 'b'`);
  const updated = await listener.next();
  t.match(updated, { event: 'update', data: { plain: writer }, old: { v: 'a' } });
  await writerClient.query(`delete from ${table}`);
  t.match(await listener.next(), { event: 'delete', data: { plain: writer } });
  t.notMatch(JSON.stringify([inserted, updated]), owner, `never as ${owner}, the relay’s owner`);
});

t.test('a writer cannot hand the trigger a row of its own making', async (t) => {
  const { client } = await connectAs(t, db, [`grant select, insert, update, delete on orders to $role`]);
  const { rows } = await db.pool.query<{ oid: number }>(`select 'orders'::regclass::oid::int as oid`);
  // In the form relay_convert leaves it, under the table's own name.
  const setting = `relay.converted_row_${rows[0]!.oid}`;
  const forged = `${rows[0]!.oid}\n${JSON.stringify({ id: 'forged', hospital_id: 'h9' })}`;
  await client.query(`select set_config($1, $2, false)`, [setting, forged]);
  await client.query(`insert into orders (id, hospital_id) values ('hand1', 'h1')`);
  t.match(await listener.next(), { topic: 'orders', event: 'insert', data: { id: 'hand1', hospital_id: 'h1' } });
  await client.query('begin');
  await client.query(`select set_config($1, $2, true)`, [setting, forged]);
  await client.query(`update orders set status = 'ready' where id = 'hand1'`);
  await client.query('commit');
  t.match(await listener.next(), { topic: 'orders', event: 'update', data: { id: 'hand1', status: 'ready' } });
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'nothing else');
});

// relay.open_xid and relay.stamped_pos tell the triggers that a transaction's commit stamp is taken
// care of; they are settings, which any role may set. Believed, they let a writer commit events with
// no commit position (no relay delivered them, retention never deleted them), or at a position
// drawn before they were written, or at two positions (every subscriber got them twice).
t.test('a writer’s forged commit markers do not keep its writes from being published', async (t) => {
  const { client } = await connectAs(t, db, [
    `grant select, insert, update, delete on orders to $role`,
    `grant usage on schema relay to $role`,
    `grant execute on function relay.publish(text, text, jsonb) to $role`,
  ]);
  const publishedIds = async (): Promise<unknown[]> =>
    (await eventsBeforeSentinel(listener, db.pool)).map((e) => [e.topic, e.event, e.data['id'] ?? null]);

  await client.query('begin');
  await client.query(`select set_config('relay.open_xid', pg_current_xact_id()::text, true)`);
  await client.query(`insert into orders (id, hospital_id) values ('marker1', 'h1')`);
  await client.query(`update orders set status = 'ready' where id = 'marker1'`);
  await client.query(`select relay.publish('markers', 'opened', '{}')`);
  await client.query('commit');
  t.same(
    await publishedIds(),
    [
      ['orders', 'insert', 'marker1'],
      ['orders', 'update', 'marker1'],
      ['markers', 'opened', null],
    ],
    'relay.open_xid set to the transaction’s own id: every event published',
  );

  // The marker of an event whose savepoint rolled back, and with it the stamp that event queued.
  for (const write of [`insert into orders (id, hospital_id) values ('marker2', 'h1')`, `select relay.publish('markers', 'saved', '{}')`]) {
    await client.query('begin');
    await client.query('savepoint first');
    await client.query(write.replace('marker2', 'dropped'));
    const { rows } = await client.query<{ marker: string }>(`select current_setting('relay.open_xid') as marker`);
    await client.query('rollback to savepoint first');
    await client.query(`select set_config('relay.open_xid', $1, true)`, [rows[0]!.marker]);
    await client.query(write);
    await client.query('commit');
  }
  t.same(
    await publishedIds(),
    [
      ['orders', 'insert', 'marker2'],
      ['markers', 'saved', null],
    ],
    'relay.open_xid set back after a rollback to savepoint: published',
  );

  const { rows: last } = await db.pool.query<{ last: string }>(`select last_value::text as last from relay.commit_position`);
  await client.query('begin');
  await client.query(`select set_config('relay.stamped_pos', $1, true)`, [last[0]!.last]);
  await client.query(`insert into orders (id, hospital_id) values ('marker3', 'h1')`);
  await client.query('commit');
  t.same(await publishedIds(), [['orders', 'insert', 'marker3']], 'relay.stamped_pos set to the last position drawn: published');

  const orphans = await db.pool.query(`select e.id from relay.events e where not exists (select from relay.commits c where c.xid = e.xid)`);
  t.same(orphans.rows, [], 'no event in the log without a commit position');
});

t.test('a writer’s forged commit markers cannot move its events before a commit they waited for', async (t) => {
  const { client } = await connectAs(t, db, [`grant select, insert, update, delete on orders to $role`]);
  await db.pool.query(`insert into orders (id, hospital_id) values ('early1', 'h1'), ('early2', 'h1')`);
  await eventsBeforeSentinel(listener, db.pool);

  await client.query('begin');
  await client.query(`update orders set status = 'ready' where id = 'early1'`);
  const { rows } = await client.query<{ marker: string }>(`select current_setting('relay.open_xid') as marker`);
  // The stamp fires here: the transaction draws its position now, before the next commit's.
  await client.query('set constraints all immediate');
  await client.query('set constraints all deferred');
  await db.pool.query(`update orders set status = 'picked_up' where id = 'early2'`);
  await client.query(`select set_config('relay.open_xid', $1, true)`, [rows[0]!.marker]);
  // Written after that commit: it must reach subscribers after it.
  await client.query(`update orders set status = 'delivered' where id = 'early2'`);
  await client.query('commit');
  t.same(
    (await eventsBeforeSentinel(listener, db.pool)).map((e) => [e.data['id'], e.data['status']]),
    [
      ['early2', 'picked_up'],
      ['early1', 'ready'],
      ['early2', 'delivered'],
    ],
    'the last event of early2 is the row as the table holds it',
  );
});

t.test('a writer’s forged commit markers cannot have its events delivered twice', async (t) => {
  const { client } = await connectAs(t, db, [`grant select, insert, update, delete on orders to $role`]);
  await client.query('begin');
  await client.query(`insert into orders (id, hospital_id) values ('twice1', 'h1')`);
  await client.query('set constraints all immediate');
  await client.query('set constraints all deferred');
  await client.query(`select set_config('relay.stamped_pos', '', true)`);
  await client.query(`insert into orders (id, hospital_id) values ('twice2', 'h1')`);
  await t.rejects(client.query('commit'), { code: '23505', constraint: 'commits_one_per_transaction' }, 'the commit fails');
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'nothing was published, once or twice');
  const { rows } = await db.pool.query(`select xid from relay.commits group by xid having count(*) > 1`);
  t.same(rows, [], 'no transaction is in relay.commits twice');
});

t.test('a writer’s search_path does not change how its rows are converted', async (t) => {
  // The converting trigger runs as the writer, with the writer's settings: functions of the
  // writer's own, first on its search_path, must not stand in for PostgreSQL's.
  const { role, client } = await connectAs(t, db, [`grant select, insert, update, delete on orders to $role`]);
  await db.pool.query(`create schema ${role} authorization ${role}`);
  const forged = `'{"id": "forged", "hospital_id": "h9"}'`;
  await client.query(`create function ${role}.to_jsonb(public.orders) returns jsonb language sql as $f$ select ${forged}::jsonb $f$`);
  await client.query(`create function ${role}.concat_ws(text, oid, jsonb, jsonb) returns text language sql as $f$ select $1 $f$`);
  await client.query(`create function ${role}.set_config(text, text, boolean) returns text language sql as $f$ select null::text $f$`);
  await client.query(`set search_path = ${role}, pg_catalog, public`);
  await client.query(`insert into orders (id, hospital_id) values ('path1', 'h1')`);
  await client.query(`update orders set status = 'ready' where id = 'path1'`);
  t.match(await listener.take(2), [
    { topic: 'orders', event: 'insert', data: { id: 'path1', hospital_id: 'h1' } },
    { topic: 'orders', event: 'update', data: { id: 'path1', status: 'ready' }, old: { status: 'placed' } },
  ]);
});

t.test('without its converting trigger, a watched table refuses writes rather than publish another table’s row', async (t) => {
  const { client, table } = await watchedTableOwner(t, 'no_convert');
  await client.query(`drop trigger relay_convert on ${table}`);
  const { rows } = await db.pool.query<{ oid: number }>(`select 'orders'::regclass::oid::int as oid`);
  const otherRow = `${rows[0]!.oid}\n${JSON.stringify({ id: 'o1', secret: 's' })}`;
  await client.query(`select set_config($1, $2, false)`, [`relay.converted_row_${rows[0]!.oid}`, otherRow]);
  await t.rejects(client.query(`insert into ${table} (id, v) values (1, 'a')`), {
    code: '55000',
    message: /has no converted row/,
  });
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'nothing was published');
});

t.test('a role that may create in a schema on the administrator’s search_path runs nothing of its own in the admin functions', async (t) => {
  const { role, client } = await connectAs(t, db);
  await db.pool.query(`create schema ${role} authorization ${role}`);
  // A closer match than pg_catalog's for calls that watch, unwatch and the trigger announcing their
  // changes made with the caller's path: they would run with the administrator's rights.
  await client.query(`create table ${role}.calls (what text, by_whom text)`);
  await client.query(`grant insert on ${role}.calls to public`);
  await client.query(`
    create function ${role}.oid_is(a oid, b regclass) returns boolean language plpgsql as $f$
    begin
      insert into ${role}.calls values ('=', current_user);
      return a operator(pg_catalog.=) b::oid;
    end $f$`);
  await client.query(`create operator ${role}.= (leftarg = oid, rightarg = regclass, function = ${role}.oid_is)`);
  await client.query(`
    create function ${role}.pg_notify(channel text, payload name) returns void language plpgsql as $f$
    begin
      insert into ${role}.calls values ('pg_notify', current_user);
      perform pg_catalog.pg_notify(channel, payload::text);
    end $f$`);
  await client.query(`grant usage on schema ${role} to public`);

  const admin = await db.pool.connect();
  t.teardown(() => admin.release(true));
  await admin.query(`set search_path = ${role}, public`);
  await admin.query(`create table public.lured (id int primary key, v text)`);
  t.teardown(() => db.pool.query(`drop table if exists public.lured`));
  await admin.query(`select relay.watch('lured', 'lured')`);
  await admin.query(`select relay.watch('lured', 'lured', array['id'])`);
  await admin.query(`select relay.allow('lured', 'admin', '{"id": {"gt": 0}}', array['id'])`);
  await admin.query(`select relay.revoke('lured', 'admin')`);
  await admin.query(`select relay.unwatch('lured')`);

  const { rows } = await db.pool.query(`select what, by_whom from ${role}.calls`);
  t.same(rows, [], 'none of the planted functions or operators ran');
  const { rows: watched } = await db.pool.query(`select count(*)::int as n from relay.watches where tbl::text = 'lured'`);
  t.equal(watched[0]?.n, 0, 'the calls did their own work: the table was watched and is no longer');
});
