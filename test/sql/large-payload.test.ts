// Contract: payload size is not limited by NOTIFY's 8000 bytes. A notification only wakes the relay
// (it carries nothing); every event, however big, is kept whole in relay.events, where the relay
// reads it.

import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import pg from 'pg';
import { createTestDatabase } from '../helpers/database.ts';
import { eventsBeforeSentinel, listenForEvents, type EventNotification } from '../helpers/notifications.ts';

const db = await createTestDatabase(t);
const listener = await listenForEvents(db.url);
t.teardown(() => listener.close());

/** About `bytes` of UTF-8 with everything JSON escapes or encodes in several bytes. */
function awkwardText(bytes: number): string {
  const pattern = 'plain ascii, "quotes", back\\slash, tab\t, newline\n, é, 漢字, 🚀, \u0001 control; ';
  let text = pattern.repeat(Math.ceil(bytes / Buffer.byteLength(pattern)));
  while (Buffer.byteLength(text) > bytes) text = text.slice(0, -1);
  // Never end on half a surrogate pair.
  return text.replace(/[\uD800-\uDBFF]$/, '');
}

const ONE_MB = awkwardText(1024 * 1024);

/** Every notification so far was an empty wake-up; the event, read from the log, is the one expected. */
function assertWakeUpsOnly(t: Test, n: EventNotification, topic: string, event: string): void {
  t.ok(
    listener.payloadBytes.length > 0 && listener.payloadBytes.every((bytes) => bytes === 0),
    `${event}: ${listener.payloadBytes.length} notifications so far, none carrying anything`,
  );
  t.match(n, { topic, event });
}

async function loggedEvent(id: number): Promise<{ data: Record<string, unknown>; old: Record<string, unknown> | null; changed: string[] | null }> {
  const { rows } = await db.pool.query(`select data, old, changed from relay.events where id = $1`, [id]);
  if (!rows[0]) throw new Error(`event ${id} is not in relay.events`);
  return rows[0];
}

t.test('a 1 MB row: the notification carries nothing and relay.events holds the whole row', async (t) => {
  t.equal(Buffer.byteLength(ONE_MB), 1024 * 1024, 'the text is 1 MB of UTF-8');
  await db.pool.query(`insert into orders (id, hospital_id, rider) values ('big', 'h1', $1)`, [
    JSON.stringify({ notes: ONE_MB }),
  ]);
  const n = await listener.next();
  assertWakeUpsOnly(t, n, 'orders', 'insert');

  const { rows } = await db.pool.query<{ same_text: boolean; notes: string }>(
    `select e.data::text = to_jsonb(o)::text as same_text, e.data->'rider'->>'notes' as notes
       from relay.events e, orders o where e.id = $1 and o.id = 'big'`,
    [n.id],
  );
  t.equal(rows[0]?.same_text, true, 'relay.events holds the row exactly as to_jsonb writes it');
  t.ok(rows[0]?.notes === ONE_MB, 'the 1 MB text comes back byte for byte');
  const commits = await db.pool.query(`select 1 from relay.commits c join relay.events e using (xid) where e.id = $1`, [n.id]);
  t.equal(commits.rows.length, 1, 'its commit is recorded, so the relay can place it');
});

t.test('updates and deletes of a large row: empty wake-ups too, with old kept in the log', async (t) => {
  await db.pool.query(`update orders set status = 'picked_up' where id = 'big'`);
  const statusOnly = await listener.next();
  assertWakeUpsOnly(t, statusOnly, 'orders', 'update');
  const afterStatus = await loggedEvent(statusOnly.id);
  t.equal(afterStatus.old?.['status'], 'placed');
  t.ok((afterStatus.changed ?? []).includes('status'));
  t.ok((afterStatus.data['rider'] as { notes: string }).notes === ONE_MB, 'data still holds the whole row');

  await db.pool.query(`update orders set rider = '{"notes": "short"}' where id = 'big'`);
  const shrunk = await listener.next();
  assertWakeUpsOnly(t, shrunk, 'orders', 'update');
  const afterShrink = await loggedEvent(shrunk.id);
  t.ok((afterShrink.old?.['rider'] as { notes: string }).notes === ONE_MB, 'old holds the 1 MB value');
  t.same(afterShrink.data['rider'], { notes: 'short' });

  await db.pool.query(`update orders set rider = $1 where id = 'big'`, [JSON.stringify({ notes: ONE_MB })]);
  assertWakeUpsOnly(t, await listener.next(), 'orders', 'update');
  await db.pool.query(`delete from orders where id = 'big'`);
  const deleted = await listener.next();
  assertWakeUpsOnly(t, deleted, 'orders', 'delete');
  t.ok(((await loggedEvent(deleted.id)).data['rider'] as { notes: string }).notes === ONE_MB);
});

t.test('relay.publish with 1 MB of data', async (t) => {
  await db.pool.query(`select relay.publish('big', 'report', $1)`, [JSON.stringify({ text: ONE_MB })]);
  const n = await listener.next();
  assertWakeUpsOnly(t, n, 'big', 'report');
  t.ok((await loggedEvent(n.id)).data['text'] === ONE_MB);
});

t.test('around the old inline limit every event arrives whole', async (t) => {
  // Multibyte characters: the limit is in bytes, not characters. JSON escapes add about 14%, so
  // these events hold from about 7400 to 8600 bytes of JSON, once too large for a notification.
  const sizes = Array.from({ length: 41 }, (_, i) => 6500 + i * 25);
  for (const size of sizes) {
    await db.pool.query(`select relay.publish('edge', 'sized', $1)`, [JSON.stringify({ size, text: awkwardText(size) })]);
  }
  const events = await eventsBeforeSentinel(listener, db.pool);
  t.equal(events.length, sizes.length, 'every event once');
  t.ok(listener.payloadBytes.every((bytes) => bytes === 0), 'no notification carried any of them');
  for (const [i, n] of events.entries()) {
    const size = sizes[i] ?? 0;
    if (n.data['size'] !== size || n.data['text'] !== awkwardText(size)) t.fail(`the ${size}-byte event came back changed`);
  }
});

t.test('an event of more JSON text than a relay can hold is refused, however small the row it is stored in', async (t) => {
  // jsonb keeps every digit of a number: 1e131071 is stored in about 10 bytes and written as
  // 131,072 characters, so 2,100 of them take a few KB in the table and 275 MB as JSON text. The
  // relay reads an event's data as one string; past V8's longest string (about 512 MiB, 4,200 such
  // numbers) node-postgres threw where nothing catches it and every relay that read the event died,
  // and died again at each replay that passed it. Any role that may write a watched table with a
  // jsonb column could do that.
  const numbers = `(select jsonb_agg(1e131071::numeric) from generate_series(1, 2100))`;
  const writer = `relay_test_writer_${randomBytes(5).toString('hex')}`;
  await db.pool.query(`create role ${writer} nologin`);
  await db.pool.query(`grant select, insert, update, delete on orders to ${writer}`);
  t.teardown(async () => {
    await db.pool.query(`drop owned by ${writer} cascade`);
    await db.pool.query(`drop role ${writer}`);
  });
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  t.teardown(() => client.end());
  await client.query(`set role ${writer}`);
  await t.rejects(
    client.query(`insert into orders (id, rider) values ('numbers', ${numbers})`),
    { code: '54000', message: /insert event of public\.orders would be 2\d{8} bytes of JSON text, more than the 268435456 \(256 MiB\)/ },
    'the watched write fails, naming the limit',
  );
  await t.rejects(
    db.pool.query(`select relay.publish('big', 'numbers', jsonb_build_object('n', ${numbers}))`),
    { code: '54000', message: /event numbers of topic big would be 2\d{8} bytes of JSON text/ },
    'so does relay.publish',
  );
  const { rows } = await db.pool.query<{ n: number }>(`select count(*)::int as n from orders where id = 'numbers'`);
  t.equal(rows[0]?.n, 0, 'the row was not written');
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'nothing was logged');
});
