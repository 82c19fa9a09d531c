// The relay's link to PostgreSQL fails while an application keeps writing: the contract promises
// no gap and no duplicate (section 3, `since` and live delivery) and an honest /health (section 4).
// The first two compare what a LIVE subscriber (connected throughout) and a RESUMING one (gone
// during the fault, back with `since`) received with the event log itself; the third makes the race
// behind a gap after a reconnect deterministic, with the proxy holding the server's replies.
import t, { type Test } from 'tap';
import type pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { collectFrames } from '../helpers/event-collector.ts';
import {
  compareWithLog,
  finishAndCompare,
  grantSentinel,
  insertOrder,
  logHeadPosition,
  loggedOrderEvents,
  nextOrderReaches,
  openSubscriber,
  perfectDelivery,
  publishSentinel,
  receivedOrder,
  receivedSentinel,
  waitForHealth,
  within,
} from '../helpers/fault-scenario.ts';
import { watchLogLines, type LogLine } from '../helpers/log-lines.ts';
import { startOrderWriter } from '../helpers/order-writer.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

const LISTENER_APPLICATION = 'pg-relay listener';
/** Contract section 4: /health turns 503 within 10 s of losing PostgreSQL. */
const HEALTH_DEADLINE_MS = 10_000;

/** The relay's listener backends on the test database (the relay tags them by application_name). */
async function listenerPids(pool: pg.Pool): Promise<number[]> {
  const { rows } = await pool.query<{ pid: number }>(
    `select pid from pg_stat_activity where application_name = $1 and datname = current_database()`,
    [LISTENER_APPLICATION],
  );
  return rows.map((row) => row.pid);
}

/**
 * This file's database. Its pool gets an error listener: the shared helper's teardown ends the pool
 * (pg-pool resolves end() before its clients have closed) and then drops the database WITH (FORCE),
 * which can terminate a closing client; without a listener that error would crash the test file.
 */
async function testDatabase(t: Test): Promise<TestDatabase> {
  const db = await createTestDatabase(t);
  db.pool.on('error', () => undefined);
  return db;
}

function elapsed(line: LogLine, fromMs: number): number {
  return Number(line.time) - fromMs;
}

t.test('the listener backend is killed three times under continuous writes: nothing lost, nothing twice', async (t) => {
  const relay = await startTestRelay(t, {}, await testDatabase(t));
  const logs = watchLogLines(relay.logLines);
  await grantSentinel(relay);
  const start = await logHeadPosition(relay.db.pool);
  const live = await openSubscriber(relay, 'the live subscriber');
  const resuming = await openSubscriber(relay, 'the resuming subscriber');
  // As fast as one connection commits: the more notifications race the reconnection, the surer
  // a gap-handling mistake shows.
  const writer = startOrderWriter({ databaseUrl: relay.db.url, prefix: 'kill', intervalMs: 0 });
  t.teardown(() => writer.stop());
  await nextOrderReaches(writer, [live, resuming], 'an order committed before any fault');

  for (let round = 1; round <= 3; round++) {
    await writer.waitForCommitted(writer.committed.length + 10, `writes before fault ${round}`);
    await resuming.disconnect();
    const pids = await listenerPids(relay.db.pool);
    t.equal(pids.length, 1, `before fault ${round}: the relay has exactly one listener connection`);
    const mark = logs.mark();
    const killedAt = Date.now();
    const committedAtKill = writer.committed.length;
    const { rows } = await relay.db.pool.query<{ ok: boolean }>(`select pg_terminate_backend($1, 5000) as ok`, [pids[0]]);
    t.ok(rows[0]?.ok, `fault ${round}: the listener's backend (pid ${pids[0]}) was terminated`);
    const lost = await logs.waitFor((line) => line.msg === 'listener: not listening to PostgreSQL', {
      after: mark,
      timeoutMs: HEALTH_DEADLINE_MS,
      what: `fault ${round}: the relay noticing its listener was killed`,
    });
    const caughtUp = await logs.waitFor((line) => line.msg === 'caught up from the event log', {
      after: mark,
      timeoutMs: 15_000,
      what: `fault ${round}: the relay catching up after listening again`,
    });
    t.comment(
      `fault ${round}: lost noticed after ${elapsed(lost, killedAt)} ms, caught up after ${elapsed(caughtUp, killedAt)} ms ` +
        `(${String(caughtUp.events)} events read from the log, through ${JSON.stringify(caughtUp.through)}; ` +
        `writer at ${writer.committed.length - committedAtKill} more rows)`,
    );
    await waitForHealth(relay.httpUrl, 200, 5_000);
    const after = await listenerPids(relay.db.pool);
    t.equal(after.length, 1, `after fault ${round}: exactly one listener connection again`);
    t.not(after[0], pids[0], `after fault ${round}: on a new backend`);
    // Writes continue across the fault; the resuming subscriber comes back while they do.
    await writer.waitForCommitted(writer.committed.length + 10, `writes after fault ${round}`);
    await resuming.resume();
    await nextOrderReaches(writer, [live, resuming], `fault ${round}: an order committed after both subscribers are back`);
  }

  await finishAndCompare(t, relay.db.pool, writer, start, [live, resuming]);
});

t.test('a blackholed link (half-open, silent): /health turns 503 within 10 s, then nothing lost, nothing twice', async (t) => {
  const db = await testDatabase(t);
  const server = new URL(db.url);
  const proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
  // Teardowns run last-in first-out: the proxy closes after the relay stops.
  t.teardown(() => proxy.close());
  const relay = await startTestRelay(t, { DATABASE_URL: proxy.urlFor(db.url) }, db);
  // ...and a failed assertion never leaves the relay stopping over a dead link.
  t.teardown(() => proxy.heal());
  const logs = watchLogLines(relay.logLines);
  await grantSentinel(relay);
  const start = await logHeadPosition(db.pool);
  const live = await openSubscriber(relay, 'the live subscriber');
  const resuming = await openSubscriber(relay, 'the resuming subscriber');
  // The application writes on its own, direct, connection: only the relay's link is cut.
  const writer = startOrderWriter({ databaseUrl: db.url, prefix: 'hole', intervalMs: 0 });
  t.teardown(() => writer.stop());
  await nextOrderReaches(writer, [live, resuming], 'an order committed before the fault');
  await waitForHealth(relay.httpUrl, 200, 1_000);

  await writer.waitForCommitted(writer.committed.length + 10, 'writes before the fault');
  await resuming.disconnect();
  const mark = logs.mark();
  const committedAtFault = writer.committed.length;
  const blackholedAt = Date.now();
  proxy.blackhole();
  const unhealthyMs = await waitForHealth(relay.httpUrl, 503, HEALTH_DEADLINE_MS + 5_000);
  t.ok(unhealthyMs <= HEALTH_DEADLINE_MS, `/health turned 503 after ${unhealthyMs} ms (contract: within ${HEALTH_DEADLINE_MS} ms)`);
  t.ok(writer.committed.length > committedAtFault, 'the application kept committing while the relay was cut off');
  await writer.waitForCommitted(writer.committed.length + 10, 'writes during the fault');

  const healedAt = Date.now();
  const committedAtHeal = writer.committed.length;
  proxy.heal();
  const healthyMs = await waitForHealth(relay.httpUrl, 200, 20_000);
  const caughtUp = await logs.waitFor((line) => line.msg === 'caught up from the event log', {
    after: mark,
    timeoutMs: 20_000,
    what: 'the relay catching up once the link healed',
  });
  t.comment(
    `blackhole: 503 after ${unhealthyMs} ms; healed: 200 after ${healthyMs} ms, caught up ${elapsed(caughtUp, healedAt)} ms ` +
      `after the heal (${String(caughtUp.events)} events from the log; ${committedAtHeal - committedAtFault} rows committed during the fault)`,
  );
  await writer.waitForCommitted(writer.committed.length + 10, 'writes after the fault');
  await resuming.resume();
  await nextOrderReaches(writer, [live, resuming], 'an order committed after the link healed');

  await finishAndCompare(t, relay.db.pool, writer, start, [live, resuming]);
});

// The race behind a gap, made deterministic: after a reconnect, a notification can reach the relay
// in the same read as the reply to its last LISTEN, i.e. before it learns that it listens again and
// catches up. Whatever it reads first, it must deliver the events it missed, then the new one.
t.test('a notification arriving with the reply to LISTEN does not make the relay skip what it missed', async (t) => {
  const db = await testDatabase(t);
  const server = new URL(db.url);
  const proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
  t.teardown(() => proxy.close());
  const relay = await startTestRelay(t, { DATABASE_URL: proxy.urlFor(db.url) }, db);
  t.teardown(() => {
    proxy.releaseReplies();
    proxy.heal();
  });
  const logs = watchLogLines(relay.logLines);
  await grantSentinel(relay);
  const start = await logHeadPosition(db.pool);
  const live = await openSubscriber(relay, 'the live subscriber');
  await insertOrder(db.pool, 'race-before');
  await receivedOrder(live, 'race-before', 'an order committed before the fault');

  // The relay is cut off, then its listener is killed: it learns of it only once the link heals.
  proxy.blackhole();
  const [pid] = await listenerPids(db.pool);
  await db.pool.query(`select pg_terminate_backend($1, 5000)`, [pid]);
  // Committed while nothing listens: their notifications are gone, only the log has them.
  const missed = ['race-missed-1', 'race-missed-2', 'race-missed-3'];
  for (const id of missed) await insertOrder(db.pool, id);

  // The link heals; from the moment the relay re-issues its last LISTEN, the server's replies wait.
  const caught = proxy.holdRepliesAfter('LISTEN relay_catalog');
  const mark = logs.mark();
  proxy.heal();
  await within(caught, 10_000, 'the relay re-issuing LISTEN relay_catalog after the link healed');
  // Committed now with the wake-up bell armed (the relay's reads, which would arm it, are cut off
  // too), it is notified on the new connection, right with the reply to that LISTEN.
  await db.pool.query(`select setval('relay.wakeup_wanted', 1)`);
  await insertOrder(db.pool, 'race-after');
  await within(proxy.heldRepliesContain('relay_events'), 5_000, 'the notification of race-after reaching the relay');
  proxy.releaseReplies();
  const caughtUp = await logs.waitFor((line) => line.msg === 'caught up from the event log', {
    after: mark,
    timeoutMs: 10_000,
    what: 'the relay catching up after listening again',
  });
  t.comment(`caught up: ${String(caughtUp.events)} events read from the log, through ${JSON.stringify(caughtUp.through)}`);

  await publishSentinel(db.pool);
  await receivedSentinel(live);
  const logged = await loggedOrderEvents(db.pool, start);
  t.same(
    logged.map((event) => event.orderId),
    ['race-before', ...missed, 'race-after'],
    'the log holds the five orders in commit order',
  );
  t.same(
    compareWithLog(live.orderEvents(), logged),
    perfectDelivery(logged.length),
    'the live subscriber received the orders committed while the relay was not listening, then the next one',
  );
});

t.test('a grant revoked while the listener cannot reach PostgreSQL, and the pool can, still takes effect', async (t) => {
  // Grant changes are announced on the listener's channel; the pool's stream delivers without it
  // (after a restart the pool is often back first, and a dead listener link takes seconds to notice).
  const db = await testDatabase(t);
  const server = new URL(db.url);
  const proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
  t.teardown(() => proxy.close());
  const relay = await startTestRelay(t, { DATABASE_URL: proxy.urlFor(db.url) }, db);
  t.teardown(() => proxy.refuseNew(false));
  const logs = watchLogLines(relay.logLines);
  const nurse = await relay.connect({ role: 'hospital', sub: 'nurse', hospital_id: 'H1' });
  const frames = collectFrames(nurse);
  nurse.send({ type: 'subscribe', topic: 'orders', ref: 'orders' });
  await frames.waitFor((frame) => frame.type === 'subscribed', 'subscribed to orders');

  // The listener's connection ends and cannot come back; the pool's connections stay.
  const mark = logs.mark();
  proxy.refuseNew(true);
  t.strictSame((await listenerPids(db.pool)).length, 1, "the relay's listener backend is found");
  await db.pool.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and datname = current_database()`, [LISTENER_APPLICATION]);
  await logs.waitFor((line) => line.msg === 'listener: not listening to PostgreSQL', { after: mark, what: 'the relay losing its listener' });
  await insertOrder(db.pool, 'while-not-listening');
  await frames.waitFor((frame) => frame.type === 'event' && (frame.data as { id?: unknown }).id === 'while-not-listening', 'an order delivered through the pool');

  await db.pool.query(`select relay.revoke('orders', 'hospital')`);
  const forbidden = await frames.waitFor((frame) => frame.type === 'error', 'the answer to the revoke', { timeoutMs: 15_000 });
  t.match(forbidden, { code: 'forbidden', topic: 'orders' }, 'the subscription ends with forbidden');
  t.notOk(
    relay.logLines.slice(mark).some((line) => line.msg === 'listener: listening again; catching up from the event log'),
    'while the listener was still away',
  );
  // The link comes back (and the test ends with the listener at rest: pg-listen's own reconnect
  // attempts go on after the relay stops, until one succeeds).
  proxy.refuseNew(false);
  await logs.waitFor((line) => line.msg === 'listener: listening again; catching up from the event log', { after: mark, what: 'the listener back' });
});
