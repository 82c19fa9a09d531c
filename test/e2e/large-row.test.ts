// Contract section 2: payload size is not limited by NOTIFY's 8000 bytes. A 1 MB row reaches the
// WebSocket subscriber whole, and the events around it keep their commit order.
import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import { changeCatalog } from '../helpers/catalog.ts';
import { framesBeforePong, nextFrame, stable, subscribe } from '../helpers/frames.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import type { Frame } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
const ONE_MB_BYTES = 1024 * 1024;

const isEvent = (frame: Frame): boolean => frame.type === 'event';
const dataOf = (frame: Frame): Record<string, unknown> => frame.data as Record<string, unknown>;

/** About `bytes` of UTF-8 holding everything JSON escapes or encodes in several bytes. */
function awkwardText(bytes: number, salt: string): string {
  const pattern = `${salt}: plain ascii, "quotes", back\\slash, tab\t, newline\n, é, 漢字, 🚀, \u0001 control, </script>; `;
  let text = pattern.repeat(Math.ceil(bytes / Buffer.byteLength(pattern)));
  while (Buffer.byteLength(text) > bytes) text = text.slice(0, -1);
  return text.replace(/[\uD800-\uDBFF]$/, ''); // never end on half a surrogate pair
}

/** Says where two long texts first differ, instead of printing a megabyte. */
function sameText(actual: unknown, expected: string): string | true {
  if (actual === expected) return true;
  if (typeof actual !== 'string') return `got ${typeof actual} instead of the text`;
  let i = 0;
  while (i < actual.length && actual[i] === expected[i]) i++;
  return `${Buffer.byteLength(actual)} bytes instead of ${Buffer.byteLength(expected)}, first difference at character ${i}`;
}

async function insertOrder(relay: TestRelay, id: string, rider: unknown = null, hospitalId = 'H1'): Promise<void> {
  await relay.db.pool.query(`insert into orders (id, hospital_id, status, rider) values ($1, $2, 'placed', $3)`, [
    id,
    hospitalId,
    rider === null ? null : JSON.stringify(rider),
  ]);
}

async function rowAsJson(relay: TestRelay, id: string): Promise<Record<string, unknown>> {
  const { rows } = await relay.db.pool.query<{ row: string }>(`select to_jsonb(o)::text as row from orders o where id = $1`, [id]);
  return JSON.parse(rows[0]!.row) as Record<string, unknown>;
}

t.test('a 1 MB row arrives whole, byte for byte, between the events committed around it', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(ADMIN);
  await subscribe(client, 'orders');
  const text = awkwardText(ONE_MB_BYTES, 'first');
  t.equal(Buffer.byteLength(text), ONE_MB_BYTES, 'the text is 1 MB of UTF-8');

  await insertOrder(relay, 'before');
  await insertOrder(relay, 'big', { notes: text, stops: [1, 2, 3] });
  const after = Array.from({ length: 20 }, (_, i) => `after-${i}`);
  for (const id of after) await insertOrder(relay, id);

  const frames = await client.take(22, isEvent);
  t.strictSame(frames.map((frame) => dataOf(frame).id), ['before', 'big', ...after], 'commit order around the large event');
  const big = frames[1]!;
  const rider = dataOf(big).rider as Record<string, unknown>;
  t.equal(sameText(rider.notes, text), true, 'the 1 MB text arrives byte for byte');
  t.strictSame(rider.stops, [1, 2, 3]);
  t.ok(isDeepStrictEqual(dataOf(big), await rowAsJson(relay, 'big')), 'data is the whole row as to_jsonb writes it');
  t.match(big, { type: 'event', topic: 'orders', event: 'insert', cursor: String, ts: String });
});

t.test('large and small events mixed in one transaction and across transactions keep their order', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(ADMIN);
  await subscribe(client, 'orders');
  const texts = ['a', 'b', 'c'].map((salt) => awkwardText(ONE_MB_BYTES, salt));
  const db = await relay.db.pool.connect();
  try {
    await db.query('begin');
    await insertOrderOn(db, 'tx-small-1', null);
    await insertOrderOn(db, 'tx-big-1', { notes: texts[0] });
    await insertOrderOn(db, 'tx-small-2', null);
    await insertOrderOn(db, 'tx-big-2', { notes: texts[1] });
    await db.query('commit');
  } finally {
    db.release();
  }
  await insertOrder(relay, 'next-small');
  await insertOrder(relay, 'next-big', { notes: texts[2] });
  await insertOrder(relay, 'last-small');

  const frames = await client.take(7, isEvent);
  t.strictSame(
    frames.map((frame) => dataOf(frame).id),
    ['tx-small-1', 'tx-big-1', 'tx-small-2', 'tx-big-2', 'next-small', 'next-big', 'last-small'],
    'statement order inside the transaction, commit order across them',
  );
  t.equal(sameText((dataOf(frames[1]!).rider as Record<string, unknown>).notes, texts[0]!), true, 'first big text whole');
  t.equal(sameText((dataOf(frames[3]!).rider as Record<string, unknown>).notes, texts[1]!), true, 'second big text whole');
  t.equal(sameText((dataOf(frames[5]!).rider as Record<string, unknown>).notes, texts[2]!), true, 'third big text whole');

  async function insertOrderOn(client: { query(sql: string, values: unknown[]): Promise<unknown> }, id: string, rider: unknown) {
    await client.query(`insert into orders (id, hospital_id, rider) values ($1, 'H1', $2)`, [id, rider === null ? null : JSON.stringify(rider)]);
  }
});

t.test('a large update carries the old 1 MB value; filters and column masks apply to large events', async (t) => {
  const relay = await startTestRelay(t);
  await changeCatalog(relay, `select relay.allow('orders', 'auditor', '{}', array['id', 'status'])`);
  const admin = await relay.connect(ADMIN);
  await subscribe(admin, 'orders');
  const auditor = await relay.connect({ role: 'auditor', sub: 'aud-1' });
  await subscribe(auditor, 'orders');
  const otherHospital = await relay.connect({ role: 'hospital', sub: 'n2', hospital_id: 'H2' });
  await subscribe(otherHospital, 'orders');

  const first = awkwardText(ONE_MB_BYTES, 'old');
  const second = awkwardText(ONE_MB_BYTES, 'new');
  await insertOrder(relay, 'big', { notes: first });
  await relay.db.pool.query(`update orders set rider = $1, status = 'picked' where id = 'big'`, [JSON.stringify({ notes: second })]);
  await insertOrder(relay, 'h2-small', null, 'H2');

  const [, update] = await admin.take(2, isEvent);
  t.strictSame(update!.changed, ['rider', 'status', 'updated_at']);
  t.equal(sameText((dataOf(update!).rider as Record<string, unknown>).notes, second), true, 'data holds the new 1 MB value');
  t.equal(
    sameText(((update!.old as Record<string, unknown>).rider as Record<string, unknown>).notes, first),
    true,
    'old holds the previous 1 MB value',
  );

  const masked = await auditor.take(2, isEvent);
  t.strictSame(
    masked.map(stable),
    [
      { type: 'event', topic: 'orders', event: 'insert', data: { id: 'big', status: 'placed' } },
      { type: 'event', topic: 'orders', event: 'update', data: { id: 'big', status: 'picked' }, old: { status: 'placed' }, changed: ['status'] },
    ],
    'a subscriber whose grant hides rider gets the large events without it',
  );
  t.match(await nextFrame(otherHospital, 'the H2 order', isEvent), { data: { id: 'h2-small' } }, 'hospital H2 got neither large H1 event');
  t.strictSame(await framesBeforePong(otherHospital), []);
});

t.test('a 1 MB relay.publish event arrives whole', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(ADMIN);
  await subscribe(client, 'orders');
  const text = awkwardText(ONE_MB_BYTES, 'custom');
  await relay.db.pool.query(`select relay.publish('orders', 'manifest', jsonb_build_object('id', 'm1', 'body', $1::text))`, [text]);
  await insertOrder(relay, 'after');
  const [custom, after] = await client.take(2, isEvent);
  t.match(custom, { event: 'manifest', data: { id: 'm1' } });
  t.equal(sameText(dataOf(custom!).body, text), true, 'the custom 1 MB text arrives byte for byte');
  t.match(after, { event: 'insert', data: { id: 'after' } });
});

t.test('a burst of large rows, more than one read of the log holds, arrives whole and in order, live and replayed', async (t) => {
  // The relay reads the log in pieces of at most 4 MiB of JSON text (see test/sql/read-limits.test.ts):
  // the first transaction alone is more than one read holds, so its reads are cut inside it.
  const relay = await startTestRelay(t);
  const live = await relay.connect(ADMIN);
  await subscribe(live, 'orders');
  const texts = Array.from({ length: 8 }, (_, i) => awkwardText(ONE_MB_BYTES + 1000 * i, `burst-${i}`));
  const db = await relay.db.pool.connect();
  try {
    await db.query('begin');
    for (let i = 0; i < 6; i++) await insertOrderOn(db, `first-${i}`, texts[i]!);
    await db.query('commit');
    await db.query('begin');
    await insertOrderOn(db, 'second-small', null);
    for (let i = 6; i < 8; i++) await insertOrderOn(db, `second-${i}`, texts[i]!);
    await db.query('commit');
  } finally {
    db.release();
  }
  await insertOrder(relay, 'last-small');
  const expectedIds = [...texts.slice(0, 6).map((_, i) => `first-${i}`), 'second-small', 'second-6', 'second-7', 'last-small'];
  const expectedNotes = [...texts.slice(0, 6), undefined, texts[6], texts[7], undefined];

  const check = (frames: Frame[], how: string): void => {
    t.strictSame(frames.map((frame) => dataOf(frame).id), expectedIds, `${how}: every event once, in commit order`);
    const whole = frames.every((frame, i) => {
      const notes = (dataOf(frame).rider as Record<string, unknown> | null)?.notes;
      const expected = expectedNotes[i];
      return expected === undefined ? notes === undefined : sameText(notes, expected) === true;
    });
    t.ok(whole, `${how}: each large text arrives byte for byte`);
  };
  const liveFrames = await live.take(expectedIds.length, isEvent);
  check(liveFrames, 'live');

  const resumer = await relay.connect(ADMIN);
  const reply = await subscribe(resumer, 'orders', { since: liveFrames[0]!.cursor });
  t.equal(reply.type, 'subscribed', 'resumed from the first event');
  check([liveFrames[0]!, ...(await resumer.take(expectedIds.length - 1, isEvent))], 'replayed');

  async function insertOrderOn(client: { query(sql: string, values: unknown[]): Promise<unknown> }, id: string, notes: string | null) {
    await client.query(`insert into orders (id, hospital_id, rider) values ($1, 'H1', $2)`, [id, notes === null ? null : JSON.stringify({ notes })]);
  }
});
