// What relay.watch and relay.publish put on the `relay_events` channel (contract section 2), as a
// relay would read it. Each test watches its own table, so the tests do not see each other's rows.

import t, { type Test } from 'tap';
import { createTestDatabase } from '../helpers/database.ts';
import { eventsBeforeSentinel, listenForEvents, type EventNotification, type Listener } from '../helpers/notifications.ts';

const db = await createTestDatabase(t);

type Row = Record<string, unknown>;

/** A table with one column of each kind to_jsonb writes differently, watched as `topic`. */
async function createWatchedTable(name: string, topic: string, columns?: string[]): Promise<void> {
  await db.pool.query(`
    create table ${name} (
      id int primary key,
      name text,
      qty int,
      price numeric,
      tags text[],
      meta jsonb,
      at timestamptz,
      "Odd Name" boolean
    )`);
  await db.pool.query(`select relay.watch($1, $2, $3)`, [name, topic, columns ?? null]);
}

async function rowAsJson(table: string, id: number): Promise<Row> {
  const { rows } = await db.pool.query<{ row: Row }>(`select to_jsonb(x) as row from ${table} x where id = $1`, [id]);
  if (!rows[0]) throw new Error(`no row ${id} in ${table}`);
  return rows[0].row;
}

async function listen(t: Test): Promise<Listener<EventNotification>> {
  const listener = await listenForEvents(db.url);
  t.teardown(() => listener.close());
  return listener;
}

/** Contract: insert, delete and publish events carry neither `old` nor `changed`. */
function assertNoUpdateFields(t: Test, n: EventNotification): void {
  t.equal(n.old ?? null, null, `${n.event} carries no old`);
  t.equal(n.changed ?? null, null, `${n.event} carries no changed`);
}

const INSERT_ROW = `insert into shapes values (1, 'apple', 2, 1.50, '{red,"big one"}', '{"k": [1, {"n": null}]}',
                                               '2025-01-02T03:04:05.678Z', true)`;

t.test('insert, update and delete of a watched table: data is the row as to_jsonb writes it', async (t) => {
  await createWatchedTable('shapes', 'shapes');
  const listener = await listen(t);

  await db.pool.query(INSERT_ROW);
  const inserted = await listener.next();
  const afterInsert = await rowAsJson('shapes', 1);
  t.match(inserted, { topic: 'shapes', event: 'insert' });
  t.same(inserted.data, afterInsert, 'insert: data is the whole new row');
  t.equal(inserted.data?.['price'], 1.5);
  t.same(inserted.data?.['tags'], ['red', 'big one']);
  assertNoUpdateFields(t, inserted);

  await db.pool.query(`update shapes set name = 'pear', qty = 3, "Odd Name" = false where id = 1`);
  const updated = await listener.next();
  t.match(updated, { topic: 'shapes', event: 'update' });
  t.same(updated.data, await rowAsJson('shapes', 1), 'update: data is the whole new row');
  t.same(updated.old, { name: 'apple', qty: 2, 'Odd Name': true }, 'update: old holds only the changed columns, before');
  t.same([...(updated.changed ?? [])].sort(), ['Odd Name', 'name', 'qty'], 'update: changed names them');

  const beforeDelete = await rowAsJson('shapes', 1);
  await db.pool.query(`delete from shapes where id = 1`);
  const deleted = await listener.next();
  t.match(deleted, { topic: 'shapes', event: 'delete' });
  t.same(deleted.data, beforeDelete, 'delete: data is the old row');
  assertNoUpdateFields(t, deleted);

  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'one event per row change, no more');
});

t.test('an update that sets jsonb and arrays reports them whole in old', async (t) => {
  await createWatchedTable('shapes_nested', 'shapes_nested');
  await db.pool.query(INSERT_ROW.replace('shapes', 'shapes_nested'));
  const listener = await listen(t);
  await db.pool.query(`update shapes_nested set meta = '{"k": [2]}', tags = null where id = 1`);
  const updated = await listener.next();
  t.same(updated.old, { meta: { k: [1, { n: null }] }, tags: ['red', 'big one'] });
  t.same(updated.data?.['tags'], null, 'a column set to null is in data as null');
  t.same([...(updated.changed ?? [])].sort(), ['meta', 'tags']);
});

t.test('relay.publish: a custom event with the caller’s data', async (t) => {
  const listener = await listen(t);
  await db.pool.query(`select relay.publish('alerts', 'driver_late', '{"order": "o1", "minutes": 12}')`);
  const published = await listener.next();
  t.match(published, { topic: 'alerts', event: 'driver_late', data: { order: 'o1', minutes: 12 } });
  t.same(published.data, { order: 'o1', minutes: 12 });
  assertNoUpdateFields(t, published);
});

t.test('relay.publish refuses what could not be delivered', async (t) => {
  const cases: Array<[string, unknown[], RegExp]> = [
    [`select relay.publish($1, 'e', '{}')`, [''], /topic must be 1 to 256 characters/],
    [`select relay.publish($1, 'e', '{}')`, ['x'.repeat(257)], /topic must be 1 to 256 characters/],
    [`select relay.publish('t', $1, '{}')`, [null], /event must be 1 to 256 characters/],
    [`select relay.publish('t', 'e', $1)`, ['[1]'], /data must be a JSON object, got array/],
    [`select relay.publish('t', 'e', $1)`, [null], /data must be a JSON object, got null/],
  ];
  for (const [sql, params, message] of cases) {
    await t.rejects(db.pool.query(sql, params), { code: '22023', message }, `${sql} ${JSON.stringify(params)}`);
  }
});

t.test('every event carries its commit position and time as relay.commits records them', async (t) => {
  await createWatchedTable('shapes_commit', 'shapes_commit');
  const listener = await listen(t);
  await db.pool.query(`insert into shapes_commit (id) values (1)`);
  const n = await listener.next();
  const { rows } = await db.pool.query<{ pos: string; ts: number; topic: string }>(
    `select c.pos, extract(epoch from c.committed_at)::float8 as ts, e.topic
       from relay.events e join relay.commits c on c.xid = e.xid where e.id = $1`,
    [n.id],
  );
  t.equal(rows.length, 1, 'the event is in relay.events and its transaction in relay.commits');
  t.equal(Number(rows[0]?.pos), n.pos, 'pos is the commit position');
  t.ok(Math.abs((rows[0]?.ts ?? 0) - n.ts) < 0.001, `ts ${n.ts} is the commit time ${rows[0]?.ts}`);
  t.equal(rows[0]?.topic, 'shapes_commit');
});

t.test('an UPDATE that changes nothing publishes nothing', async (t) => {
  await createWatchedTable('shapes_noop', 'shapes_noop');
  await db.pool.query(INSERT_ROW.replace('shapes', 'shapes_noop'));
  const listener = await listen(t);
  await db.pool.query(`update shapes_noop set name = name, qty = qty, meta = meta`);
  await db.pool.query(`update shapes_noop set name = 'apple', tags = '{red,"big one"}'`);
  await db.pool.query(`update shapes_noop set name = 'nobody' where id = 42`);
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'nothing notified');
});

t.test('columns given to relay.watch limit data, old and changed', async (t) => {
  await createWatchedTable('shapes_cols', 'shapes_cols', ['id', 'name', 'Odd Name']);
  const listener = await listen(t);

  await db.pool.query(INSERT_ROW.replace('shapes', 'shapes_cols'));
  const inserted = await listener.next();
  t.same(inserted.data, { id: 1, name: 'apple', 'Odd Name': true }, 'insert: only the watched columns');

  await db.pool.query(`update shapes_cols set qty = 9, meta = '{}'`);
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'an update of unwatched columns only publishes nothing');

  await db.pool.query(`update shapes_cols set qty = 10, name = 'pear'`);
  const updated = await listener.next();
  t.same(updated.data, { id: 1, name: 'pear', 'Odd Name': true });
  t.same(updated.old, { name: 'apple' }, 'old leaves out the unwatched column that changed too');
  t.same(updated.changed, ['name']);

  await db.pool.query(`delete from shapes_cols`);
  const deleted = await listener.next();
  t.same(deleted.data, { id: 1, name: 'pear', 'Odd Name': true }, 'delete: only the watched columns');
});

t.test('relay.watch refuses columns the table does not have', async (t) => {
  await createWatchedTable('shapes_badcols', 'shapes_badcols');
  await t.rejects(db.pool.query(`select relay.watch('shapes_badcols', 'x', '{id,nope}')`), {
    code: '42703',
    message: /shapes_badcols has no column nope/,
  });
  await t.rejects(db.pool.query(`select relay.watch('shapes_badcols', 'x', '{}')`), { code: '42703' });
  await t.rejects(db.pool.query(`select relay.watch('shapes_badcols', '')`), { code: '22023' });
  const { rows } = await db.pool.query(`select topic, columns from relay.watches where tbl = 'shapes_badcols'::regclass`);
  t.same(rows, [{ topic: 'shapes_badcols', columns: null }], 'the earlier settings stay');
});

t.test('calling relay.watch again replaces the settings', async (t) => {
  await createWatchedTable('shapes_rewatch', 'before');
  await db.pool.query(`select relay.watch('shapes_rewatch', 'after', '{id,qty}')`);
  const listener = await listen(t);

  await db.pool.query(`insert into shapes_rewatch (id, name, qty) values (1, 'a', 1)`);
  const inserted = await listener.next();
  t.match(inserted, { topic: 'after', event: 'insert' });
  t.same(inserted.data, { id: 1, qty: 1 });
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'one event per row: the old trigger is gone');

  await db.pool.query(`select relay.watch('shapes_rewatch', 'after')`);
  await db.pool.query(`update shapes_rewatch set name = 'b'`);
  const updated = await listener.next();
  t.same(updated.changed, ['name'], 'watching again without columns watches them all');
  t.equal(Object.keys(updated.data ?? {}).length, 8);

  const { rows } = await db.pool.query(`select topic, columns from relay.watches where tbl = 'shapes_rewatch'::regclass`);
  t.same(rows, [{ topic: 'after', columns: null }]);
});

t.test('relay.unwatch stops the events', async (t) => {
  await createWatchedTable('shapes_unwatch', 'shapes_unwatch');
  await db.pool.query(`select relay.unwatch('shapes_unwatch')`);
  const listener = await listen(t);
  await db.pool.query(`insert into shapes_unwatch (id) values (1)`);
  await db.pool.query(`update shapes_unwatch set qty = 1`);
  await db.pool.query(`delete from shapes_unwatch`);
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'nothing notified');
  const { rows } = await db.pool.query(`select 1 from relay.watches where tbl = 'shapes_unwatch'::regclass`);
  t.equal(rows.length, 0, 'no longer listed in relay.watches');
  const triggers = await db.pool.query(`select tgname from pg_trigger where tgrelid = 'shapes_unwatch'::regclass`);
  t.same(triggers.rows, [], 'its trigger is gone');
  await db.pool.query(`select relay.unwatch('shapes_unwatch')`);
  t.pass('unwatching twice is harmless');
});

t.test('a statement changing several rows: one event per row, one position', async (t) => {
  await createWatchedTable('shapes_multi', 'shapes_multi');
  const listener = await listen(t);
  await db.pool.query(`insert into shapes_multi (id, qty) select g, g from generate_series(1, 5) g`);
  const events = await listener.take(5);
  t.same(
    events.map((e) => e.data?.['id']),
    [1, 2, 3, 4, 5],
  );
  t.equal(new Set(events.map((e) => e.pos)).size, 1, 'all share the commit position');
  t.same(await eventsBeforeSentinel(listener, db.pool), []);
});

t.test('a trigger of the application that fires between the relay’s two and writes another watched table: both publish', async (t) => {
  await createWatchedTable('shapes_outer', 'shapes_outer');
  await createWatchedTable('shapes_inner', 'shapes_inner');
  // Row triggers fire in name order: relay_convert, then this one, then relay_watch.
  await db.pool.query(`
    create function shapes_copy_inner() returns trigger language plpgsql as $$
    begin
      insert into shapes_inner (id, name) values (NEW.id, 'copied');
      return null;
    end $$;
    create trigger relay_log after insert on shapes_outer for each row execute function shapes_copy_inner();`);
  const listener = await listen(t);
  await db.pool.query(`insert into shapes_outer (id, name) values (1, 'outer')`);
  const events = await eventsBeforeSentinel(listener, db.pool);
  t.same(
    events.map((e) => `${e.topic} ${String(e.data?.['name'])}`).sort(),
    ['shapes_inner copied', 'shapes_outer outer'],
    'the outer row and the one its trigger wrote',
  );
});

t.test('a trigger of the application between the relay’s two that writes the same table: both writes publish', async (t) => {
  await db.pool.query(`create table shapes_tree (id int primary key, parent int, n int not null default 0)`);
  await db.pool.query(`select relay.watch('shapes_tree', 'shapes_tree')`);
  await db.pool.query(`
    create function shapes_count_child() returns trigger language plpgsql as $$
    begin
      update shapes_tree set n = n + 1 where id = NEW.parent;
      return null;
    end $$;
    create trigger relay_parent_count after insert on shapes_tree for each row execute function shapes_count_child();`);
  await db.pool.query(`insert into shapes_tree (id) values (1)`);
  const listener = await listen(t);
  await db.pool.query(`insert into shapes_tree (id, parent) values (2, 1)`);
  const events = await eventsBeforeSentinel(listener, db.pool);
  t.same(
    events.map((e) => `${e.event} ${String(e.data?.['id'])} n=${String(e.data?.['n'])}`).sort(),
    ['insert 2 n=0', 'update 1 n=1'],
    'the child row, and its parent as the trigger updated it',
  );
});
