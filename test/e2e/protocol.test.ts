// Contract section 3, end to end: every reply and error code a client can meet on /ws today, with a
// real relay on its own database, real transactions and real WebSocket clients.
import t from 'tap';
import { changeCatalog } from '../helpers/catalog.ts';
import { framesBeforePong, nextFrame, stable, subscribe } from '../helpers/frames.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import { nowSeconds, signHmacToken } from '../helpers/tokens.ts';
import type { Frame } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
const H1 = { role: 'hospital', sub: 'nurse-1', hospital_id: 'H1' };
const EVENT_KEYS = ['changed', 'cursor', 'data', 'event', 'old', 'topic', 'ts', 'type'];

const isEvent = (frame: Frame): boolean => frame.type === 'event';

async function insertOrder(relay: TestRelay, order: Record<string, unknown>): Promise<void> {
  const columns = Object.keys(order);
  const placeholders = columns.map((_, i) => `$${i + 1}`).join(', ');
  await relay.db.pool.query(`insert into orders (${columns.join(', ')}) values (${placeholders})`, Object.values(order));
}

function nextEvent(client: Parameters<typeof nextFrame>[0], what: string): Promise<Frame> {
  return nextFrame(client, what, isEvent);
}

function dataOf(frame: Frame): Record<string, unknown> {
  return frame.data as Record<string, unknown>;
}

t.test('welcome tells the client its role, sub and the token expiry', async (t) => {
  const relay = await startTestRelay(t);
  const exp = nowSeconds() + 600;
  const nurse = await relay.connect({ ...H1, exp });
  t.strictSame(
    nurse.welcome,
    { type: 'welcome', role: 'hospital', sub: 'nurse-1', exp },
    'the welcome frame names the role, sub and exp of the token',
  );
  const noSub = await relay.connect({ role: 'admin', exp });
  t.strictSame(noSub.welcome, { type: 'welcome', role: 'admin', sub: null, exp }, 'a token without sub is welcomed with sub null');
});

t.test('subscribe is answered with subscribed, echoing string, number and absent refs', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(ADMIN);
  t.strictSame(
    await subscribe(client, 'orders', { ref: 'r-1' }),
    { type: 'subscribed', topic: 'orders', ref: 'r-1' },
    'a string ref is echoed',
  );
  t.strictSame(
    await subscribe(client, 'inventory', { ref: 7 }),
    { type: 'subscribed', topic: 'inventory', ref: 7 },
    'a number ref is echoed',
  );
  t.strictSame(await subscribe(client, 'driver_locations'), { type: 'subscribed', topic: 'driver_locations' }, 'no ref sent, none echoed');
  client.send({ type: 'ping', ref: 0 });
  t.strictSame(await nextFrame(client, 'pong'), { type: 'pong', ref: 0 }, 'a falsy ref (0) is echoed too');
  client.send({ type: 'ping', ref: '' });
  t.strictSame(await nextFrame(client, 'pong'), { type: 'pong', ref: '' }, 'an empty string ref is echoed too');

  await insertOrder(relay, { id: 'o1', hospital_id: 'H1' });
  await relay.db.pool.query(`insert into inventory (id, merchant_id, product, quantity, low_stock_threshold) values ('i1', 'm1', 'soap', 10, 2)`);
  await relay.db.pool.query(`insert into driver_locations (driver_id, lat, lng) values ('d1', 1.5, 2.5)`);
  const events = await client.take(3, isEvent);
  t.strictSame(
    events.map((frame) => [frame.topic, frame.event]),
    [
      ['orders', 'insert'],
      ['inventory', 'insert'],
      ['driver_locations', 'insert'],
    ],
    'each subscription delivers its topic',
  );
});

t.test('subscribing twice to a topic gives already_subscribed, and the connection keeps working', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(ADMIN);
  t.strictSame(
    await subscribe(client, 'orders', { ref: 1 }),
    { type: 'subscribed', topic: 'orders', ref: 1 },
    'the first subscribe is accepted',
  );
  const again = await subscribe(client, 'orders', { ref: 'again' });
  t.match(
    again,
    { type: 'error', code: 'already_subscribed', topic: 'orders', ref: 'again', message: String },
    'a second subscribe to the same topic is refused with already_subscribed',
  );
  t.strictSame(await framesBeforePong(client), [], 'still answers a ping');

  await insertOrder(relay, { id: 'o1' });
  await insertOrder(relay, { id: 'o2' });
  const [first, second] = await client.take(2, isEvent);
  t.strictSame([dataOf(first!).id, dataOf(second!).id], ['o1', 'o2'], 'events keep coming, each exactly once');
  t.strictSame(await framesBeforePong(client), [], 'the second subscribe did not make events arrive twice');
});

t.test('unsubscribe is answered with unsubscribed and no event of the topic follows', async (t) => {
  const relay = await startTestRelay(t);
  const witness = await relay.connect(ADMIN);
  const client = await relay.connect(ADMIN);
  await subscribe(witness, 'orders');
  await subscribe(client, 'orders');
  await insertOrder(relay, { id: 'before' });
  t.match(await nextEvent(client, 'the order inserted while subscribed'), { data: { id: 'before' } }, 'events flow while subscribed');
  await nextEvent(witness, 'the witness sees the first order');

  client.send({ type: 'unsubscribe', topic: 'orders', ref: 'u' });
  t.strictSame(
    await nextFrame(client, 'the reply to unsubscribe'),
    { type: 'unsubscribed', topic: 'orders', ref: 'u' },
    'unsubscribe is confirmed with its ref',
  );
  await insertOrder(relay, { id: 'after' });
  t.match(
    await nextEvent(witness, 'the order inserted after unsubscribe, seen by a subscriber'),
    { data: { id: 'after' } },
    'the witness got the order',
  );
  t.strictSame(await framesBeforePong(client), [], 'an unsubscribed client receives no event of the topic');

  t.strictSame(await subscribe(client, 'orders'), { type: 'subscribed', topic: 'orders' }, 'it may subscribe again');
  await insertOrder(relay, { id: 'again' });
  t.match(
    await nextEvent(client, 'the order inserted after subscribing again'),
    { data: { id: 'again' } },
    'events flow again after resubscribing',
  );
});

t.test('unsubscribe of a topic not subscribed gives not_subscribed', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(ADMIN);
  client.send({ type: 'unsubscribe', topic: 'orders', ref: 9 });
  t.match(await nextFrame(client, 'the reply to unsubscribe'), {
    type: 'error',
    code: 'not_subscribed',
    topic: 'orders',
    ref: 9,
    message: String,
  });
  client.send({ type: 'unsubscribe', topic: 'never_heard_of' });
  t.match(
    await nextFrame(client, 'the reply to unsubscribe'),
    { type: 'error', code: 'not_subscribed', topic: 'never_heard_of' },
    'not_subscribed for a topic that does not exist either',
  );
  t.strictSame(await framesBeforePong(client), [], 'the connection stays');
});

t.test('ping is answered with pong', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(ADMIN);
  client.send({ type: 'ping' });
  t.strictSame(await nextFrame(client, 'pong'), { type: 'pong' }, 'pong without ref');
  client.send({ type: 'ping', ref: 'p-1' });
  t.strictSame(await nextFrame(client, 'pong'), { type: 'pong', ref: 'p-1' }, 'pong echoes the ref');
});

t.test('a topic never watched nor granted gives unknown_topic', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(ADMIN);
  t.match(await subscribe(client, 'no_such_topic', { ref: 3 }), {
    type: 'error',
    code: 'unknown_topic',
    topic: 'no_such_topic',
    ref: 3,
    message: String,
  });
  client.send({ type: 'unsubscribe', topic: 'no_such_topic' });
  t.match(await nextFrame(client, 'the reply to unsubscribe'), { code: 'not_subscribed' }, 'no subscription was made');
});

t.test('a known topic with no grant for the role gives forbidden, and no event of it', async (t) => {
  const relay = await startTestRelay(t);
  const witness = await relay.connect(ADMIN);
  const customer = await relay.connect({ role: 'customer', sub: 'c1' });
  await subscribe(witness, 'inventory');
  t.match(await subscribe(customer, 'inventory', { ref: 'inv' }), {
    type: 'error',
    code: 'forbidden',
    topic: 'inventory',
    ref: 'inv',
    message: String,
  });
  await relay.db.pool.query(`insert into inventory (id, merchant_id, product, quantity, low_stock_threshold) values ('i1', 'm1', 'soap', 10, 2)`);
  await nextEvent(witness, 'the inventory insert, seen by admin');
  t.strictSame(await framesBeforePong(customer), [], 'the customer gets no inventory event');
  t.match(await subscribe(customer, 'inventory'), { code: 'forbidden' }, 'a refused subscribe left no subscription behind');
});

t.test('a client filter narrows the events, and never widens the grant', async (t) => {
  const relay = await startTestRelay(t);
  const delivered = await relay.connect(ADMIN);
  t.strictSame(
    await subscribe(delivered, 'orders', { filter: { status: 'delivered' } }),
    { type: 'subscribed', topic: 'orders' },
    'a subscribe with a filter is accepted',
  );
  const nurse = await relay.connect(H1);
  await subscribe(nurse, 'orders', { filter: { hospital_id: 'H2' } });
  const witness = await relay.connect(ADMIN);
  await subscribe(witness, 'orders');

  await insertOrder(relay, { id: 'o1', hospital_id: 'H2', status: 'placed' });
  await insertOrder(relay, { id: 'o2', hospital_id: 'H2', status: 'delivered' });
  await insertOrder(relay, { id: 'o3', hospital_id: 'H2', status: 'placed' });
  await relay.db.pool.query(`update orders set status = 'delivered' where id = 'o3'`);
  const first = await nextEvent(delivered, 'the delivered order');
  t.match(first, { event: 'insert', data: { id: 'o2', status: 'delivered' } }, 'the placed order o1 was filtered out');
  t.match(
    await nextEvent(delivered, 'o3 once delivered'),
    { event: 'update', data: { id: 'o3', status: 'delivered' } },
    'an update into the filter is sent',
  );
  await witness.take(4, isEvent);
  t.strictSame(await framesBeforePong(delivered), [], 'nothing else reached the filtered subscriber');
  t.strictSame(await framesBeforePong(nurse), [], 'a hospital H1 filtering on hospital H2 sees none of H2 orders');
});

t.test('a client filter on a column the grant hides gives forbidden', async (t) => {
  const relay = await startTestRelay(t);
  await changeCatalog(relay, `select relay.allow('orders', 'auditor', '{}', array['id', 'status'])`);
  const auditor = await relay.connect({ role: 'auditor', sub: 'aud-1' });
  for (const filter of [{ customer_id: 'c1' }, { not: { hospital_id: 'H1' } }, { or: [{ status: 'placed' }, { driver_id: 'd1' }] }]) {
    t.match(
      await subscribe(auditor, 'orders', { filter, ref: 'f' }),
      { type: 'error', code: 'forbidden', topic: 'orders', ref: 'f' },
      `filter ${JSON.stringify(filter)} would reveal a hidden column`,
    );
  }
  t.strictSame(
    await subscribe(auditor, 'orders', { filter: { status: 'placed' } }),
    { type: 'subscribed', topic: 'orders' },
    'a filter on a visible column is fine',
  );
});

t.test('auth with a valid token replaces the claims; what they no longer allow ends with forbidden', async (t) => {
  const relay = await startTestRelay(t);
  const witness = await relay.connect(ADMIN);
  await subscribe(witness, 'orders');
  await subscribe(witness, 'driver_locations');
  const client = await relay.connect(ADMIN);
  await subscribe(client, 'orders');
  await subscribe(client, 'driver_locations');

  // Same role, a later expiry: authed with the new exp, and everything goes on.
  const adminExp = nowSeconds() + 7200;
  client.send({ type: 'auth', token: await relay.token({ ...ADMIN, exp: adminExp }), ref: 'a1' });
  t.strictSame(await nextFrame(client, 'authed'), { type: 'authed', exp: adminExp, ref: 'a1' }, "authed carries the new token's exp");
  t.strictSame(await framesBeforePong(client), [], 'a refresh with the same rights ends nothing');

  // admin -> hospital H1: driver_locations is not granted to hospitals, orders narrows to H1.
  const nurseExp = nowSeconds() + 3600;
  client.send({ type: 'auth', token: await relay.token({ ...H1, exp: nurseExp }), ref: 'a2' });
  t.strictSame(
    await nextFrame(client, 'authed', (frame) => frame.type === 'authed'),
    { type: 'authed', exp: nurseExp, ref: 'a2' },
    "authed carries the hospital token's exp",
  );
  t.match(
    await nextFrame(client, 'the end of driver_locations', (frame) => frame.type === 'error'),
    { type: 'error', code: 'forbidden', topic: 'driver_locations', message: String },
  );
  await relay.db.pool.query(`insert into driver_locations (driver_id, customer_id, lat, lng) values ('d1', 'c1', 1, 2)`);
  await insertOrder(relay, { id: 'h2-order', hospital_id: 'H2' });
  await insertOrder(relay, { id: 'h1-order', hospital_id: 'H1' });
  t.match(
    await nextEvent(client, 'the H1 order under the hospital token'),
    { topic: 'orders', data: { id: 'h1-order' } },
    "the hospital sees its own hospital's order",
  );
  await witness.take(3, isEvent);
  t.strictSame(await framesBeforePong(client), [], 'no driver location and no H2 order after the switch');
  client.send({ type: 'unsubscribe', topic: 'driver_locations' });
  t.match(await nextFrame(client, 'unsubscribe reply'), { code: 'not_subscribed' }, 'the forbidden subscription is gone');

  // hospital H1 -> customer without sub: the customer grant needs the sub claim, so orders ends too.
  client.send({ type: 'auth', token: await relay.token({ role: 'customer' }), ref: 'a3' });
  t.match(
    await nextFrame(client, 'authed', (frame) => frame.type === 'authed'),
    { type: 'authed', ref: 'a3' },
    'authed for the customer token',
  );
  t.match(
    await nextFrame(client, 'the end of orders', (frame) => frame.type === 'error'),
    { type: 'error', code: 'forbidden', topic: 'orders' },
  );
  t.strictSame(await framesBeforePong(client), [], 'nothing else');
  t.equal(client.socket.readyState, client.socket.OPEN, 'the connection stays open');
});

t.test('frames sent right after auth are judged with the new claims', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(ADMIN);
  // No waiting for authed: the subscribe must not slip in under the old admin claims.
  client.send({ type: 'auth', token: await relay.token({ role: 'customer', sub: 'c1' }), ref: 'auth' });
  client.send({ type: 'subscribe', topic: 'inventory', ref: 'inv' });
  client.send({ type: 'subscribe', topic: 'orders', ref: 'ord' });
  const replies = await client.take(3);
  t.match(replies, [
    { type: 'authed', ref: 'auth' },
    { type: 'error', code: 'forbidden', topic: 'inventory', ref: 'inv' },
    { type: 'subscribed', topic: 'orders', ref: 'ord' },
  ], 'replies in the order of the requests, the subscribes judged as a customer');
  await insertOrder(relay, { id: 'not-mine', customer_id: 'c2' });
  await insertOrder(relay, { id: 'mine', customer_id: 'c1' });
  t.match(await nextEvent(client, 'the customer own order'), { data: { id: 'mine' } }, 'and filtered as a customer');
});

t.test('auth with a hospital -> customer token keeps orders but narrows them to the customer', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(H1);
  await subscribe(client, 'orders');
  client.send({ type: 'auth', token: await relay.token({ role: 'customer', sub: 'c1' }) });
  t.match(await nextFrame(client, 'authed'), { type: 'authed' }, 'authed for the customer token');
  await insertOrder(relay, { id: 'other-customer', hospital_id: 'H1', customer_id: 'c2' });
  await insertOrder(relay, { id: 'mine', hospital_id: 'H9', customer_id: 'c1' });
  t.match(
    await nextFrame(client, 'the customer own order'),
    { type: 'event', data: { id: 'mine' } },
    'the H1 order of another customer is not sent',
  );
});

t.test('auth with a bad token gives an error and keeps the previous claims', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(H1);
  await subscribe(client, 'orders');
  const refused = [
    ['garbage', 'not-a-jwt'],
    ['another secret', await signHmacToken('another-secret-that-is-also-32-bytes-long!', { role: 'admin' })],
    ['expired', await relay.token({ role: 'admin', exp: nowSeconds() - 60 })],
    ['no role', await relay.token({ sub: 'x' })],
  ] as const;
  for (const [name, token] of refused) {
    client.send({ type: 'auth', token, ref: name });
    const reply = await nextFrame(client, `the reply to auth with a ${name} token`);
    t.match(reply, { type: 'error', code: 'bad_request', ref: name, message: String }, `${name} token refused`);
    t.notOk(String(reply.message).includes(token), 'the error does not echo the token');
  }
  client.send({ type: 'auth', token: '', ref: 'empty' });
  t.match(
    await nextFrame(client, 'reply to an empty token'),
    { type: 'error', code: 'bad_request', ref: 'empty' },
    'an empty token is a bad request',
  );
  await insertOrder(relay, { id: 'h2', hospital_id: 'H2' });
  await insertOrder(relay, { id: 'h1', hospital_id: 'H1' });
  t.match(await nextFrame(client, 'the next event'), { type: 'event', data: { id: 'h1' } }, 'still a hospital H1 subscriber, not an admin');
});

t.test('events arrive in commit order', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(ADMIN);
  const nurse = await relay.connect(H1);
  await subscribe(client, 'orders');
  await subscribe(nurse, 'orders');
  const expected: string[] = [];
  for (let i = 1; i <= 10; i++) {
    await insertOrder(relay, { id: `seq-${i}`, hospital_id: i % 2 ? 'H1' : 'H2' });
    expected.push(`seq-${i}`);
  }
  // Two open transactions committing in the reverse of the order they wrote in.
  const first = await relay.db.pool.connect();
  const second = await relay.db.pool.connect();
  try {
    await first.query('begin');
    await first.query(`insert into orders (id, hospital_id) values ('written-first', 'H1')`);
    await second.query('begin');
    await second.query(`insert into orders (id, hospital_id) values ('written-second', 'H1')`);
    await second.query(`insert into orders (id, hospital_id) values ('written-second-b', 'H1')`);
    await second.query('commit');
    await first.query('commit');
  } finally {
    first.release();
    second.release();
  }
  expected.push('written-second', 'written-second-b', 'written-first');
  await relay.db.pool.query(`begin; insert into orders (id, hospital_id) values ('tx-1', 'H1'), ('tx-2', 'H2'); update orders set status = 'picked' where id = 'seq-1'; commit`);
  expected.push('tx-1', 'tx-2', 'seq-1');

  const frames = await client.take(expected.length, isEvent);
  t.strictSame(frames.map((frame) => dataOf(frame).id), expected, 'admin receives every event in commit order');
  const nurseFrames = await nurse.take(expected.length - 6, isEvent);
  const nurseIds = nurseFrames.map((frame) => dataOf(frame).id);
  t.strictSame(
    nurseIds,
    frames.filter((frame) => dataOf(frame).hospital_id === 'H1').map((frame) => dataOf(frame).id),
    'a filtered subscriber sees its subset in the same order',
  );
});

t.test('a relay.publish event reaches subscribers granted on its topic, only once committed', async (t) => {
  const relay = await startTestRelay(t);
  await changeCatalog(relay, `select relay.allow('announcements', 'admin')`);
  const client = await relay.connect(ADMIN);
  t.strictSame(
    await subscribe(client, 'announcements'),
    { type: 'subscribed', topic: 'announcements' },
    'a granted topic is known without a watched table',
  );
  const nurse = await relay.connect(H1);
  t.match(await subscribe(nurse, 'announcements'), { code: 'forbidden' }, 'a role without a grant on it is refused');
  await subscribe(nurse, 'orders');

  await relay.db.pool.query(`begin; select relay.publish('announcements', 'maintenance', '{"n": 1}'); rollback`);
  await relay.db.pool.query(`select relay.publish('announcements', 'maintenance', '{"n": 2, "text": "back at 5"}')`);
  const frame = await nextEvent(client, 'the published announcement');
  t.strictSame(
    stable(frame),
    { type: 'event', topic: 'announcements', event: 'maintenance', data: { n: 2, text: 'back at 5' } },
    'the rolled-back publish never arrives',
  );
  t.type(frame.cursor, 'string');

  await relay.db.pool.query(`select relay.publish('orders', 'eta_changed', '{"id": "o9", "hospital_id": "H2"}')`);
  await relay.db.pool.query(`select relay.publish('orders', 'eta_changed', '{"id": "o1", "hospital_id": "H1", "eta": "12:00"}')`);
  t.strictSame(
    stable(await nextEvent(nurse, 'the custom order event for H1')),
    { type: 'event', topic: 'orders', event: 'eta_changed', data: { id: 'o1', hospital_id: 'H1', eta: '12:00' } },
    'custom events on a watched topic go through the grant filter like row events',
  );
});

t.test('insert, update and delete events: update carries old and changed, the others neither', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(ADMIN);
  await subscribe(client, 'orders');
  await insertOrder(relay, { id: 'o1', hospital_id: 'H1', customer_id: 'c1', status: 'placed' });
  const inserted = await nextEvent(client, 'the insert');
  t.match(
    inserted,
    { event: 'insert', data: { id: 'o1', hospital_id: 'H1', customer_id: 'c1', status: 'placed', driver_id: null } },
    'the insert carries the whole row',
  );
  t.notOk('old' in inserted || 'changed' in inserted, 'an insert carries neither old nor changed');

  await relay.db.pool.query(`update orders set status = 'delivered', driver_id = 'd7' where id = 'o1'`);
  const updated = await nextEvent(client, 'the update');
  t.match(
    updated,
    { event: 'update', data: { id: 'o1', status: 'delivered', driver_id: 'd7', customer_id: 'c1' } },
    'the update carries the whole new row',
  );
  t.strictSame(updated.changed, ['driver_id', 'status', 'updated_at'], 'changed names every changed column (updated_at by its trigger)');
  const old = updated.old as Record<string, unknown>;
  t.strictSame(Object.keys(old).sort(), updated.changed, 'old holds the changed columns only');
  t.match(old, { status: 'placed', driver_id: null, updated_at: dataOf(inserted).updated_at }, 'old holds the previous values');

  await relay.db.pool.query(`update orders set status = status where id = 'o1'`);
  await relay.db.pool.query(`delete from orders where id = 'o1'`);
  const deleted = await nextEvent(client, 'the delete');
  t.match(deleted, { event: 'delete', data: { id: 'o1', status: 'delivered' } }, 'an update that changed nothing published nothing');
  t.notOk('old' in deleted || 'changed' in deleted, 'a delete carries neither old nor changed');
});

t.test('a grant with columns: the subscriber never sees another key', async (t) => {
  const relay = await startTestRelay(t);
  await changeCatalog(relay, `select relay.allow('orders', 'auditor', '{}', array['id', 'status'])`);
  const witness = await relay.connect(ADMIN);
  await subscribe(witness, 'orders');
  const auditor = await relay.connect({ role: 'auditor', sub: 'aud-1' });
  t.strictSame(await subscribe(auditor, 'orders'), { type: 'subscribed', topic: 'orders' }, 'the auditor may subscribe');

  const visible = ['id', 'status'];
  const checkMasked = (frame: Frame, label: string): void => {
    t.ok(Object.keys(frame).every((key) => EVENT_KEYS.includes(key)), `${label}: no unexpected top-level key`);
    t.ok(
      Object.keys(dataOf(frame)).every((key) => visible.includes(key)),
      `${label}: data holds only id and status, got ${Object.keys(dataOf(frame)).join(', ')}`,
    );
    if (frame.old !== undefined) {
      t.ok(Object.keys(frame.old as object).every((key) => visible.includes(key)), `${label}: old holds only visible columns`);
    }
    if (frame.changed !== undefined) {
      t.ok((frame.changed as string[]).every((key) => visible.includes(key)), `${label}: changed names only visible columns`);
    }
  };

  await insertOrder(relay, { id: 'o1', hospital_id: 'H1', customer_id: 'c1', status: 'placed', rider: JSON.stringify({ name: 'Ann' }) });
  const inserted = await nextEvent(auditor, 'the masked insert');
  t.strictSame(
    stable(inserted),
    { type: 'event', topic: 'orders', event: 'insert', data: { id: 'o1', status: 'placed' } },
    'the insert shows only id and status',
  );
  checkMasked(inserted, 'insert');

  await relay.db.pool.query(`update orders set status = 'delivered', customer_id = 'c2' where id = 'o1'`);
  const updated = await nextEvent(auditor, 'the masked update');
  t.strictSame(
    stable(updated),
    { type: 'event', topic: 'orders', event: 'update', data: { id: 'o1', status: 'delivered' }, old: { status: 'placed' }, changed: ['status'] },
    'customer_id and updated_at changed too, and are not mentioned',
  );
  checkMasked(updated, 'update');

  await relay.db.pool.query(`update orders set customer_id = 'c3', hospital_id = 'H2' where id = 'o1'`);
  await nextFrame(witness, 'admin sees the hidden-only update', (frame) => isEvent(frame) && dataOf(frame).customer_id === 'c3');
  t.strictSame(await framesBeforePong(auditor), [], 'an update of hidden columns only is not sent to the auditor');

  await relay.db.pool.query(`select relay.publish('orders', 'note', '{"id": "o1", "secret": "s", "status": "x"}')`);
  const custom = await nextEvent(auditor, 'the masked custom event');
  t.strictSame(
    stable(custom),
    { type: 'event', topic: 'orders', event: 'note', data: { id: 'o1', status: 'x' } },
    'a custom event is masked like a row event',
  );
  await relay.db.pool.query(`delete from orders where id = 'o1'`);
  const deleted = await nextEvent(auditor, 'the masked delete');
  t.strictSame(
    stable(deleted),
    { type: 'event', topic: 'orders', event: 'delete', data: { id: 'o1', status: 'delivered' } },
    'the delete shows only id and status',
  );
  checkMasked(deleted, 'delete');
});
