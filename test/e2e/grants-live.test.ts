// Contract section 2: grants (and watched tables) take effect on a running relay, without a
// restart, for new subscriptions and for live ones alike.
import t from 'tap';
import { changeCatalog } from '../helpers/catalog.ts';
import { watchLogLines } from '../helpers/log-lines.ts';
import { connectAs } from '../helpers/test-role.ts';
import { untilTrue } from '../helpers/backend-waits.ts';
import { readLog } from '../helpers/event-log.ts';
import { framesBeforePong, nextFrame, stable, subscribe } from '../helpers/frames.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import type { Frame } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
const AUDITOR = { role: 'auditor', sub: 'aud-1' };

const isEvent = (frame: Frame): boolean => frame.type === 'event';
const idOf = (frame: Frame): unknown => (frame.data as Record<string, unknown>).id;

async function insertOrder(relay: TestRelay, id: string, status: string, hospitalId = 'H1'): Promise<void> {
  await relay.db.pool.query(`insert into orders (id, status, hospital_id) values ($1, $2, $3)`, [id, status, hospitalId]);
}

t.test('relay.allow for a new role lets it subscribe, within a second and without a restart', async (t) => {
  const relay = await startTestRelay(t);
  const auditor = await relay.connect(AUDITOR);
  t.match(await subscribe(auditor, 'orders'), { type: 'error', code: 'forbidden', topic: 'orders' }, 'no grant yet');

  const started = Date.now();
  await changeCatalog(relay, `select relay.allow('orders', 'auditor')`);
  const elapsedMs = Date.now() - started;
  t.ok(elapsedMs < 1000, `the relay loaded the new grant ${elapsedMs} ms after the commit (contract: within a second)`);

  t.strictSame(await subscribe(auditor, 'orders'), { type: 'subscribed', topic: 'orders' }, 'the same connection may now subscribe');
  const late = await relay.connect(AUDITOR);
  t.strictSame(await subscribe(late, 'orders'), { type: 'subscribed', topic: 'orders' }, 'so may a new one');
  await insertOrder(relay, 'o1', 'placed');
  t.match(await nextFrame(auditor, 'the first order', isEvent), { topic: 'orders', event: 'insert', data: { id: 'o1' } });
  t.match(await nextFrame(late, 'the first order', isEvent), { data: { id: 'o1' } });
});

t.test('relay.revoke ends live subscriptions with forbidden, and no event of the topic follows', async (t) => {
  const relay = await startTestRelay(t);
  const witness = await relay.connect(ADMIN);
  await subscribe(witness, 'inventory');
  // merchant holds two grants on inventory (its merchant_id, or any of its merchant_ids): both go.
  const merchant = await relay.connect({ role: 'merchant', sub: 'm-user', merchant_id: 'm1', merchant_ids: ['m1', 'm2'] });
  await subscribe(merchant, 'inventory');
  await subscribe(merchant, 'orders');
  const addItem = (id: string, merchantId: string) =>
    relay.db.pool.query(`insert into inventory (id, merchant_id, product, quantity, low_stock_threshold) values ($1, $2, 'soap', 10, 2)`, [
      id,
      merchantId,
    ]);
  await addItem('i1', 'm1');
  t.match(await nextFrame(merchant, 'the item before the revoke', isEvent), { topic: 'inventory', data: { id: 'i1' } });

  await relay.db.pool.query(`select relay.revoke('inventory', 'merchant')`);
  t.match(
    await nextFrame(merchant, 'the forbidden frame after relay.revoke'),
    { type: 'error', code: 'forbidden', topic: 'inventory', message: String },
    'the live subscriber is told its subscription ended',
  );
  await addItem('i2', 'm1');
  await addItem('i3', 'm2');
  await relay.db.pool.query(`insert into orders (id, merchant_id) values ('o1', 'm1')`);
  t.match(await nextFrame(merchant, 'its order', isEvent), { topic: 'orders', data: { id: 'o1' } }, 'the orders subscription goes on');
  await witness.take(3, isEvent);
  t.strictSame(await framesBeforePong(merchant), [], 'no inventory event after the revoke');
  t.match(await subscribe(merchant, 'inventory'), { code: 'forbidden' }, 'subscribing again is refused');
  await addItem('i4', 'm1');
  t.match(await nextFrame(witness, 'admin still gets inventory', isEvent), { data: { id: 'i4' } }, 'other roles keep their grants');
});

t.test('a grant filter changed at runtime applies to the live subscription', async (t) => {
  const relay = await startTestRelay(t);
  await changeCatalog(relay, `select relay.allow('orders', 'auditor', '{"status": "placed"}')`);
  const auditor = await relay.connect(AUDITOR);
  await subscribe(auditor, 'orders');
  await insertOrder(relay, 'p1', 'placed');
  await insertOrder(relay, 'd1', 'delivered');
  await insertOrder(relay, 'p2', 'placed');
  t.strictSame((await auditor.take(2, isEvent)).map(idOf), ['p1', 'p2'], 'before: placed orders only');

  await changeCatalog(
    relay,
    `begin; select relay.revoke('orders', 'auditor'); select relay.allow('orders', 'auditor', '{"status": "delivered"}'); commit`,
  );
  t.strictSame(await framesBeforePong(auditor), [], 'the subscription is still allowed: no forbidden frame');
  await insertOrder(relay, 'p3', 'placed');
  await insertOrder(relay, 'd2', 'delivered');
  t.match(
    await nextFrame(auditor, 'the delivered order under the new grant', isEvent),
    { data: { id: 'd2' } },
    'after: delivered only, p3 not sent',
  );

  // A second grant is an alternative (OR): the live subscription widens.
  await changeCatalog(relay, `select relay.allow('orders', 'auditor', '{"status": "placed"}')`);
  await insertOrder(relay, 'p4', 'placed');
  await insertOrder(relay, 'x1', 'cancelled');
  await insertOrder(relay, 'd3', 'delivered');
  t.strictSame((await auditor.take(2, isEvent)).map(idOf), ['p4', 'd3'], 'both alternatives apply, nothing else');
});

t.test('a grant whose columns change at runtime masks the live subscription', async (t) => {
  const relay = await startTestRelay(t);
  await changeCatalog(relay, `select relay.allow('orders', 'auditor')`);
  const auditor = await relay.connect(AUDITOR);
  await subscribe(auditor, 'orders');
  await insertOrder(relay, 'o1', 'placed');
  t.match(await nextFrame(auditor, 'the unmasked order', isEvent), { data: { id: 'o1', hospital_id: 'H1', status: 'placed' } });

  await changeCatalog(relay, `begin; select relay.revoke('orders', 'auditor'); select relay.allow('orders', 'auditor', '{}', array['id']); commit`);
  await insertOrder(relay, 'o2', 'placed');
  t.strictSame(
    stable(await nextFrame(auditor, 'the masked order', isEvent)),
    { type: 'event', topic: 'orders', event: 'insert', data: { id: 'o2' } },
    'only the id once the grant names only id',
  );
});

t.test('a grant using a claim applies to live subscribers with their own claim values', async (t) => {
  const relay = await startTestRelay(t);
  const a = await relay.connect({ role: 'ward', sub: 'w1', ward: 'H1' });
  const b = await relay.connect({ role: 'ward', sub: 'w2', ward: 'H2' });
  await changeCatalog(relay, `select relay.allow('orders', 'ward', '{"hospital_id": {"claim": "ward"}}')`);
  await subscribe(a, 'orders');
  await subscribe(b, 'orders');
  await insertOrder(relay, 'for-h2', 'placed', 'H2');
  await insertOrder(relay, 'for-h1', 'placed', 'H1');
  t.match(await nextFrame(a, 'the H1 order', isEvent), { data: { id: 'for-h1' } }, 'ward H1 gets only H1');
  t.match(await nextFrame(b, 'the H2 order', isEvent), { data: { id: 'for-h2' } }, 'ward H2 gets H2');
  t.strictSame(await framesBeforePong(b), [], 'ward H2 does not get the H1 order');
});

t.test('a table watched at runtime becomes a topic; a grant on it opens it', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(ADMIN);
  t.match(await subscribe(client, 'parcels'), { code: 'unknown_topic' }, 'before relay.watch');
  await changeCatalog(relay, `begin; create table parcels (id text primary key, weight int); select relay.watch('parcels', 'parcels'); commit`);
  t.match(await subscribe(client, 'parcels'), { code: 'forbidden', topic: 'parcels' }, 'watched but not granted to admin');
  await changeCatalog(relay, `select relay.allow('parcels', 'admin')`);
  t.strictSame(await subscribe(client, 'parcels'), { type: 'subscribed', topic: 'parcels' });
  await relay.db.pool.query(`insert into parcels values ('p1', 3)`);
  t.strictSame(stable(await nextFrame(client, 'the parcel insert', isEvent)), {
    type: 'event',
    topic: 'parcels',
    event: 'insert',
    data: { id: 'p1', weight: 3 },
  });

  await changeCatalog(relay, `begin; select relay.unwatch('parcels'); select relay.revoke('parcels', 'admin'); commit`);
  t.match(await nextFrame(client, 'the end of parcels'), { type: 'error', code: 'forbidden', topic: 'parcels' });
  t.match(await subscribe(client, 'parcels'), { code: 'unknown_topic' }, 'neither watched nor granted any more');
});

t.test('a grant revoked while a resume reads its first page: `forbidden` answers the subscribe, with its ref', async (t) => {
  const relay = await startTestRelay(t);
  await changeCatalog(relay, `select relay.allow('orders', 'auditor')`);
  await insertOrder(relay, 'o1', 'placed');
  await insertOrder(relay, 'o2', 'placed');
  const [first] = await readLog(relay.db.pool, 'orders');
  const auditor = await relay.connect(AUDITOR);

  // A replay's reads go through relay.log_identity: locked, the first page waits.
  const blocker = await relay.db.pool.connect();
  t.teardown(() => blocker.release());
  await blocker.query(`begin; lock table relay.log_identity in access exclusive mode`);
  auditor.send({ type: 'subscribe', topic: 'orders', since: first!.cursor, ref: 's1' });
  await untilTrue(
    relay.db.pool,
    `select exists (select from pg_locks where relation = 'relay.log_identity'::regclass and not granted)`,
  );
  await changeCatalog(relay, `select relay.revoke('orders', 'auditor')`);
  await blocker.query('rollback');

  t.match(await nextFrame(auditor, 'the answer to the subscribe'), { type: 'error', code: 'forbidden', topic: 'orders', ref: 's1' });
  t.same(await framesBeforePong(auditor), [], 'and nothing after it: no `subscribed`, no event');
});

t.test('a topic of 256 characters outside the BMP, as relay.allow counts them, can be subscribed to', async (t) => {
  const relay = await startTestRelay(t);
  // PostgreSQL's length() counts characters; each of these is two UTF-16 code units in JavaScript.
  const topic = '🚚'.repeat(256);
  await changeCatalog(relay, `select relay.allow($1, 'admin')`, [topic]);
  const admin = await relay.connect(ADMIN);
  t.strictSame(await subscribe(admin, topic), { type: 'subscribed', topic }, 'a granted topic is subscribed to');
  await relay.db.pool.query(`select relay.publish($1, 'arrived', '{"id": "p1"}')`, [topic]);
  t.match(await nextFrame(admin, 'the published event', isEvent), { topic, event: 'arrived', data: { id: 'p1' } });
  t.match(await subscribe(admin, `${topic}🚚`), { code: 'bad_request', message: /at most 256 characters/ }, 'one more is refused');
});

t.test('catalog notifications that change nothing, from a role with no privileges, re-decide no subscription', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await relay.connect(ADMIN);
  await subscribe(admin, 'orders');
  const logs = watchLogLines(relay.logLines);
  const mark = logs.mark();
  // NOTIFY needs no privilege; distinct payloads, so that PostgreSQL does not fold them into one.
  const { client: intruder } = await connectAs(t, relay.db);
  await intruder.query(`select pg_notify('relay_catalog', n::text) from generate_series(1, 500) n`);
  await logs.waitFor((line) => line.msg === 'catalog reread', { after: mark, what: 'the relay rereading its grants after the notifications' });
  t.same(
    relay.logLines.slice(mark).filter((line) => line.msg === 'catalog loaded'),
    [],
    'the grants it read were those it had: no subscription was decided again',
  );

  await changeCatalog(relay, `select relay.allow('orders', 'auditor')`);
  const auditor = await relay.connect(AUDITOR);
  t.strictSame(await subscribe(auditor, 'orders'), { type: 'subscribed', topic: 'orders' }, 'a grant change after them takes effect');
  await insertOrder(relay, 'o1', 'placed');
  t.match(await nextFrame(admin, 'the order after the notifications', isEvent), { data: { id: 'o1' } });
});
