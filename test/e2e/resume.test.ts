// Contract section 3, `since`: a client that comes back with its last cursor gets every event it
// missed, then live ones, with no gap and no duplicate, in commit order; replay shows each
// subscriber only what live delivery would; a cursor that cannot be resumed is refused.
import t from 'tap';
import WebSocket from 'ws';
import { changeCatalog } from '../helpers/catalog.ts';
import { guarded } from '../helpers/guard.ts';
import { asFrame, cursorAt, describeDifference, eventsUntil, logEpoch, readLog, withoutTs } from '../helpers/event-log.ts';
import { EXAMPLE_GRANTS, expectedEvents, withGrant, type ChangeEvent } from '../helpers/expected-events.ts';
import { nextFrame, stable, subscribe } from '../helpers/frames.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import type { Frame, TestClient } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
const dataOf = (frame: Frame): Record<string, unknown> => frame.data as Record<string, unknown>;
const idIs = (id: string) => (frame: Frame): boolean => dataOf(frame).id === id;

async function insertOrder(relay: TestRelay, id: string, fields: Record<string, string> = {}): Promise<void> {
  const row: Record<string, string | undefined> = { hospital_id: 'H1', status: 'placed', ...fields };
  await relay.db.pool.query(`insert into orders (id, hospital_id, customer_id, status) values ($1, $2, $3, $4)`, [
    id,
    row.hospital_id,
    row.customer_id ?? null,
    row.status,
  ]);
}

/** Subscribes and fails with the relay's answer unless it is `subscribed`. */
async function subscribed(client: TestClient, topic: string, extra: Record<string, unknown> = {}): Promise<void> {
  const reply = await subscribe(client, topic, extra);
  if (reply.type !== 'subscribed') throw new Error(`subscribe ${topic} ${JSON.stringify(extra)}: the relay answered ${JSON.stringify(reply)}`);
}

t.test('a client that disconnects and resumes with its last cursor, while writes go on, misses nothing and gets nothing twice', async (t) => {
  const relay = await startTestRelay(t);
  let client = await relay.connect(ADMIN);
  await subscribed(client, 'orders');

  // One writer, never waiting for the subscriber: single inserts, and now and then a transaction of three.
  let writing = true;
  let written = 0;
  const writer = (async () => {
    while (writing) {
      const n = written++;
      if (n % 7 === 3) {
        const db = await relay.db.pool.connect();
        try {
          await db.query('begin');
          for (const part of ['a', 'b', 'c']) {
            await db.query(`insert into orders (id, hospital_id, status) values ($1, 'H1', 'placed')`, [`w${n}${part}`]);
          }
          await db.query('commit');
        } finally {
          db.release();
        }
      } else {
        await insertOrder(relay, `w${n}`);
      }
    }
  })();

  const segments: Frame[][] = [];
  let last: string | undefined;
  const disconnects = 8;
  for (let round = 0; round < disconnects; round++) {
    const wanted = 10 + ((round * 17) % 40);
    const segment = await client.take(wanted);
    const unexpected = segment.find((frame) => frame.type !== 'event' || frame.topic !== 'orders');
    if (unexpected) throw new Error(`connection ${round}: expected only order events, got ${JSON.stringify(unexpected)}`);
    segments.push(segment);
    last = String(segment.at(-1)!.cursor);
    // Half the time a clean close, half the time the TCP connection just dies.
    if (round % 2 === 0) await client.close();
    else {
      const closed = client.closed();
      client.socket.terminate();
      await closed;
    }
    client = await relay.connect(ADMIN);
    await subscribed(client, 'orders', { since: last, ref: round });
  }
  writing = false;
  await writer;

  const log = await readLog(relay.db.pool, 'orders');
  t.ok(written > 100, `the writer committed ${written} transactions meanwhile`);
  const lastCursor = log.at(-1)!.cursor;
  segments.push(await eventsUntil(client, 'orders', (frame) => frame.cursor === lastCursor, 'the last connection catching up to the end of the log'));
  // Nothing more is pending: the next event is a marker committed now.
  await insertOrder(relay, 'sentinel');
  const afterLast = await nextFrame(client, 'the sentinel order');
  t.match(afterLast, { type: 'event', data: { id: 'sentinel' } }, 'no event arrives twice after the last one');

  const received = segments.flat();
  t.equal(
    describeDifference(received.map((frame) => String(frame.cursor)), log.map((event) => event.cursor)),
    'identical',
    `the ${disconnects + 1} connections together received the whole log, each event once, in commit order`,
  );
  t.strictSame(received.map(withoutTs), log.map(asFrame), 'each replayed event is the logged one');
});

t.test('a replay shows each subscriber exactly what live delivery showed it: grants, client filters, column masks', async (t) => {
  const relay = await startTestRelay(t);
  await changeCatalog(relay, `select relay.allow('orders', 'auditor', '{}', array['id', 'status'])`);
  const profiles = [
    { name: 'hospital H1', claims: { role: 'hospital', sub: 'h1', hospital_id: 'H1' } },
    { name: 'hospital H1 filtering status=ready', claims: { role: 'hospital', sub: 'h1f', hospital_id: 'H1' }, filter: { status: 'ready' } },
    { name: 'customer c1', claims: { role: 'customer', sub: 'c1' } },
    { name: 'auditor (id and status only)', claims: { role: 'auditor', sub: 'aud' } },
  ];
  const grants = withGrant(EXAMPLE_GRANTS, 'orders', 'auditor', ['id', 'status']);

  const admin = await relay.connect(ADMIN);
  await subscribed(admin, 'orders');
  await insertOrder(relay, 'start', { hospital_id: 'H9' });
  const start = String((await nextFrame(admin, 'the start order', idIs('start'))).cursor);

  const live = await Promise.all(profiles.map((profile) => relay.connect(profile.claims)));
  for (const [i, profile] of profiles.entries()) await subscribed(live[i]!, 'orders', profile.filter ? { filter: profile.filter } : {});

  // Inserts for two hospitals and customers, status changes, an update that touches only a column
  // the auditor cannot see, a delete; the last write is seen by every profile.
  const sql = [
    `insert into orders (id, hospital_id, customer_id, status) values ('a', 'H1', 'c1', 'placed')`,
    `insert into orders (id, hospital_id, customer_id, status) values ('b', 'H2', 'c1', 'placed')`,
    `insert into orders (id, hospital_id, customer_id, status) values ('c', 'H1', 'c2', 'ready')`,
    `update orders set status = 'ready' where id = 'a'`,
    `update orders set customer_id = 'c3' where id = 'c'`,
    `update orders set status = 'ready', customer_id = 'c1' where id = 'b'`,
    `update orders set hospital_id = 'H2' where id = 'a'`,
    `delete from orders where id = 'c'`,
    `insert into orders (id, hospital_id, customer_id, status) values ('d', 'H2', 'c2', 'ready')`,
    `insert into orders (id, hospital_id, customer_id, status) values ('end', 'H1', 'c1', 'ready')`,
  ];
  for (const statement of sql) await relay.db.pool.query(statement);

  const liveFrames = await Promise.all(
    profiles.map((profile, i) => eventsUntil(live[i]!, 'orders', idIs('end'), `${profile.name}, live, until order "end"`)),
  );
  const resumed = await Promise.all(profiles.map((profile) => relay.connect(profile.claims)));
  // All at once, from one cursor: their replays read the same pages together (one query each, see
  // src/db/shared-reads.ts), and each must still get only what its own grant and filter allow.
  await Promise.all(
    profiles.map((profile, i) => subscribed(resumed[i]!, 'orders', { since: start, ...(profile.filter ? { filter: profile.filter } : {}) })),
  );
  const replayed = await Promise.all(
    profiles.map((profile, i) => eventsUntil(resumed[i]!, 'orders', idIs('end'), `${profile.name}, resumed from before the writes, until order "end"`)),
  );

  const logged = (await readLog(relay.db.pool, 'orders')).filter((event) => event.data.id !== 'start');
  const changes: ChangeEvent[] = logged.map(({ topic, event, data, old, changed }) => ({ topic, event, data, ...(old && { old }), ...(changed && { changed }) }));
  for (const [i, profile] of profiles.entries()) {
    const subscription = { role: String(profile.claims.role), claims: profile.claims, topic: 'orders', ...(profile.filter && { filter: profile.filter }) };
    const expected = expectedEvents(grants, subscription, changes).map((event) => ({ type: 'event', ...event }));
    t.strictSame(liveFrames[i]!.map(stable), expected, `${profile.name}: live delivery follows its grant, filter and columns`);
    t.strictSame(replayed[i], liveFrames[i], `${profile.name}: the replay is frame for frame what live delivery sent (cursors and times included)`);
  }

  // And nothing else was replayed: the next frame of every resumed client is an order written now.
  await relay.db.pool.query(`insert into orders (id, hospital_id, customer_id, status) values ('after', 'H1', 'c1', 'ready')`);
  for (const [i, profile] of profiles.entries()) {
    t.match(await nextFrame(resumed[i]!, `${profile.name}: the order written after the replay`), { type: 'event', data: { id: 'after' } }, `${profile.name}: nothing after the replay but the new order`);
  }
});

t.test('a malformed `since` is a bad_request and subscribes to nothing', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect(ADMIN);
  const malformed: unknown[] = ['', 'not-a-cursor', 'zzzzzzzz-1-1', '0123abcd-1', '0123abcd--1', '0123ABCD-1-1', '0123abcd-1-1-1', 42, true, ['0123abcd-1-1'], { cursor: 'x' }];
  for (const since of malformed) {
    const reply = await subscribe(client, 'orders', { since, ref: 'bad' });
    t.match(reply, { type: 'error', code: 'bad_request', ref: 'bad' }, `since ${JSON.stringify(since)}: bad_request`);
  }
  await subscribed(client, 'orders');
  t.pass('after the refusals, subscribing without since works: none of them left a subscription behind');
});

t.test('a cursor of another event log is cursor_expired and subscribes to nothing', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await relay.connect(ADMIN);
  await subscribed(admin, 'orders');
  await insertOrder(relay, 'here');
  const own = String((await nextFrame(admin, 'the order on this database')).cursor);

  // Another database, further along: its cursor names a position this log has not reached yet.
  const other = await startTestRelay(t);
  const otherAdmin = await other.connect(ADMIN);
  await subscribed(otherAdmin, 'orders');
  for (let i = 1; i <= 5; i++) await insertOrder(other, `elsewhere-${i}`);
  const foreign = String((await otherAdmin.take(5)).at(-1)!.cursor);

  const epoch = own.split('-')[0]!;
  const otherEpoch = (epoch[0] === '0' ? '1' : '0') + epoch.slice(1);
  const cases: Array<[string, string]> = [
    [foreign, "a cursor from another database's relay"],
    [`${otherEpoch}${own.slice(epoch.length)}`, 'a cursor whose log name (epoch) differs'],
  ];
  for (const [index, [cursor, what]] of cases.entries()) {
    const client = await relay.connect(ADMIN);
    const reply = await subscribe(client, 'orders', { since: cursor, ref: 'foreign' });
    if (reply.type !== 'error') {
      // Show what the user gets instead: orders committed here from now on.
      const ids = [1, 2, 3, 4, 5].map((i) => `after-${index}-${i}`);
      for (const id of ids) await insertOrder(relay, id);
      const got = await eventsUntil(client, 'orders', idIs(ids.at(-1)!), `${what}: the orders written after subscribing`);
      t.fail(
        `${what} (${cursor}, this log ends at ${own}): the relay answered ${JSON.stringify(reply)} instead of cursor_expired, ` +
          `and of the orders then committed here (${ids.join(', ')}) it delivered only ${got.map((frame) => dataOf(frame).id).join(', ')}`,
      );
      await client.close();
      continue;
    }
    t.match(reply, { type: 'error', code: 'cursor_expired', topic: 'orders', ref: 'foreign' }, `${what}: cursor_expired`);
    const again = await subscribe(client, 'orders');
    t.match(again, { type: 'subscribed', topic: 'orders' }, `${what}: no subscription was left behind; subscribing without since works`);
    await insertOrder(relay, `live-${index}`);
    t.match(await nextFrame(client, 'the next live order'), { type: 'event', data: { id: `live-${index}` } }, `${what}: then live events arrive, and nothing replayed`);
  }
});

t.test('databases cloned from one template do not share an event log name: a cursor of one is not valid on the other', async (t) => {
  // The test databases are clones of one migrated template, as CREATE DATABASE ... TEMPLATE, or a
  // restored dump, makes them in production. Each is its own history: a cursor of one names some
  // event of the other only by accident.
  const relay = await startTestRelay(t);
  const other = await startTestRelay(t);
  const [here, there] = await Promise.all([relay, other].map((r) => r.connect(ADMIN)));
  await subscribed(here!, 'orders');
  await subscribed(there!, 'orders');
  await insertOrder(relay, 'here-1');
  await insertOrder(other, 'there-1');
  const ownCursor = String((await nextFrame(here!, 'the first order here')).cursor);
  const foreignCursor = String((await nextFrame(there!, 'the first order there')).cursor);
  t.not(
    foreignCursor,
    ownCursor,
    `the first event of each database has its own cursor (both are ${ownCursor}: relay.log_identity, epoch and signing key, was copied with the template)`,
  );
  const client = await relay.connect(ADMIN);
  const reply = await subscribe(client, 'orders', { since: foreignCursor, ref: 'clone' });
  t.match(reply, { type: 'error', code: 'cursor_expired', ref: 'clone' }, "the other database's cursor is cursor_expired here");
});

t.test('a cursor with this log\'s name that names none of its events (a database restored from an earlier backup) is cursor_expired, saying so', async (t) => {
  // Clients keep the cursors of events that the restored database never had: past its newest.
  const relay = await startTestRelay(t);
  const admin = await relay.connect(ADMIN);
  await subscribed(admin, 'orders');
  await insertOrder(relay, 'kept');
  const newest = (await readLog(relay.db.pool, 'orders')).at(-1)!;
  const lost = cursorAt(await logEpoch(relay.db.pool), newest.pos + 10, newest.id + 10);
  const reply = await subscribe(await relay.connect(ADMIN), 'orders', { since: lost, ref: 'restored' });
  t.match(reply, { type: 'error', code: 'cursor_expired', ref: 'restored', message: /names no event of this log/ }, 'cursor_expired, not "older than the retention"');
});

t.test('`since` with the latest cursor replays nothing; the live events follow', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await relay.connect(ADMIN);
  await subscribed(admin, 'orders');
  for (const id of ['x1', 'x2', 'x3']) await insertOrder(relay, id);
  const frames = await admin.take(3);
  const latest = String(frames.at(-1)!.cursor);

  const client = await relay.connect(ADMIN);
  await subscribed(client, 'orders', { since: latest });
  for (const id of ['y1', 'y2']) await insertOrder(relay, id);
  const next = await client.take(2);
  t.strictSame(next.map((frame) => dataOf(frame).id), ['y1', 'y2'], 'the first frames after subscribed are the new events, none replayed');
  const adminNext = await admin.take(2);
  t.strictSame(next.map((frame) => frame.cursor), adminNext.map((frame) => frame.cursor), 'with the cursors a live subscriber gets');
});

t.test('a backlog of 100,000 events is replayed in order, exactly once, with bounded memory while the client reads slowly', async (t) => {
  const total = 100_000;
  const padBytes = 700;
  const relay = await startTestRelay(t);
  await changeCatalog(relay, `select relay.allow('ticks', 'admin'); select relay.allow('sentinel', 'admin')`);
  const probe = await relay.connect(ADMIN);
  await subscribed(probe, 'sentinel');
  await relay.db.pool.query(`select relay.publish('sentinel', 'mark', '{"at": "before"}')`);
  const before = String((await nextFrame(probe, 'the sentinel before the backlog')).cursor);

  let started = process.hrtime.bigint();
  await relay.db.pool.query(
    `select relay.publish('ticks', 'tick', jsonb_build_object('n', n, 'pad', repeat('x', $2))) from generate_series(1, $1) n`,
    [total, padBytes],
  );
  t.comment(`published ${total} events in one transaction in ${Math.round(Number(process.hrtime.bigint() - started) / 1e6)} ms`);
  // The relay's live stream has passed the backlog once it delivers a sentinel committed after it:
  // from then on the whole backlog is the replay's, none of it held as live events.
  await relay.db.pool.query(`select relay.publish('sentinel', 'mark', '{"at": "after"}')`);
  await nextFrame(probe, 'the sentinel after the backlog', undefined, 60_000);

  // A plain ws client that keeps nothing but a count: it runs in this process, like the relay,
  // so the process's rss is the relay's memory plus a constant.
  const baselineRss = process.memoryUsage().rss;
  let peakRss = baselineRss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 25);
  t.teardown(() => clearInterval(sampler));
  const socket = new WebSocket(`${relay.wsUrl}?access_token=${await relay.token(ADMIN)}`);
  t.teardown(() => socket.terminate());
  // How long the client stops reading: the scenario's slow start, not a synchronization.
  const pauseMs = 5_000;
  let expectedN = 1;
  let problem: string | undefined;
  let paused = false;
  const done = new Promise<void>((resolve, reject) => {
    socket.on('close', (code) => reject(new Error(`the relay closed the connection (${code}) after ${expectedN - 1} of ${total} replayed events`)));
    socket.on('message', (raw) => {
      const frame = JSON.parse(raw.toString()) as Frame;
      if (frame.type === 'welcome') {
        started = process.hrtime.bigint();
        socket.send(JSON.stringify({ type: 'subscribe', topic: 'ticks', since: before }));
        return;
      }
      if (frame.type === 'subscribed') return;
      const n = frame.type === 'event' && frame.topic === 'ticks' ? Number(dataOf(frame).n) : NaN;
      if (n !== expectedN) {
        problem ??= `expected tick ${expectedN}, got ${JSON.stringify(frame).slice(0, 200)}`;
        resolve();
        return;
      }
      expectedN++;
      if (n === 100) {
        // The client stops reading: the relay must wait for it, not buffer the rest.
        socket.pause();
        paused = true;
        setTimeout(() => socket.resume(), pauseMs);
      }
      if (n === total) resolve();
    });
  });
  await guarded(done, 90_000, `the replay of all ${total} events`);
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  clearInterval(sampler);
  t.equal(problem, undefined, 'every replayed event arrives once, in commit order');
  t.equal(expectedN - 1, total, `all ${total} events were replayed`);
  t.ok(paused, 'the client paused after the first frames');
  const readingSeconds = (elapsedMs - pauseMs) / 1000;
  const rate = Math.round(total / readingSeconds);
  t.comment(`replayed ${total} events of ~${padBytes + 60} bytes in ${Math.round(elapsedMs)} ms (${pauseMs} ms of it paused): ${rate} events/s while reading`);
  const growthMb = (peakRss - baselineRss) / 2 ** 20;
  t.comment(`rss peak ${growthMb.toFixed(1)} MB above the baseline of ${(baselineRss / 2 ** 20).toFixed(0)} MB`);
  const backlogMb = Math.round((total * (padBytes + 60)) / 2 ** 20);
  t.ok(growthMb < 150, `the relay waits for a slow client instead of buffering the ${backlogMb} MB backlog: rss grew ${growthMb.toFixed(1)} MB (limit 150 MB)`);

  // Nothing follows the backlog but what is written next.
  const after = guarded(
    new Promise<Frame>((resolve) => socket.once('message', (raw) => resolve(JSON.parse(raw.toString()) as Frame))),
    10_000,
    'the event written after the backlog',
  );
  await relay.db.pool.query(`select relay.publish('ticks', 'tick', jsonb_build_object('n', $1::int))`, [total + 1]);
  t.match(await after, { type: 'event', topic: 'ticks', data: { n: total + 1 } }, 'after the backlog, the next event is the one written now');
});
