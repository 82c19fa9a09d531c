// PostgreSQL crashes (a backend killed: the server ends every session and recovers in place) while
// a transaction that drew its commit position early (SET CONSTRAINTS ALL IMMEDIATE) is open. The
// sequence's WAL record for that position was never flushed, so after recovery the sequence draws
// the same position again. The relay had seen it drawn; it must not take it for rolled back once
// nobody holds it, or it delivers the next position before the one drawn again and never the
// latter (found by a review helper). The cluster is private to this file.
import pg from 'pg';
import t from 'tap';
import {
  compareWithLog,
  grantSentinel,
  insertOrder,
  logHeadPosition,
  loggedOrderEvents,
  openSubscriber,
  perfectDelivery,
  publishSentinel,
  receivedOrder,
  receivedSentinel,
  within,
} from '../helpers/fault-scenario.ts';
import { watchLogLines } from '../helpers/log-lines.ts';
import { waitForMetrics } from '../helpers/metrics.ts';
import { startPrivateDatabase } from '../helpers/private-cluster.ts';
import { startTestRelay } from '../helpers/relay.ts';

async function lastDrawn(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ drawn: string }>(`select coalesce(pg_sequence_last_value('relay.commit_position'), 0) as drawn`);
  return Number(rows[0]!.drawn);
}

/** An open transaction that has drawn its commit position (an order inserted, then SET CONSTRAINTS ALL IMMEDIATE). */
async function drawEarly(url: string, orderId: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  await client.query('begin');
  await client.query(`insert into orders (id, hospital_id, customer_id, status) values ($1, 'H1', 'c', 'placed')`, [orderId]);
  await client.query('set constraints all immediate');
  return client;
}

t.test('a crash while a drawn position is open: the position drawn again after recovery is delivered, in commit order', async (t) => {
  const { url, pool } = await startPrivateDatabase(t, 'crash');
  const relay = await startTestRelay(t, {}, { url, pool });
  const logs = watchLogLines(relay.logLines);
  await grantSentinel(relay);
  const start = await logHeadPosition(pool);
  const live = await openSubscriber(relay, 'the live subscriber');
  await insertOrder(pool, 'before');
  await receivedOrder(live, 'before', 'an order before the crash');

  // The first nextval after a checkpoint writes the sequence's WAL record; nothing flushes it.
  await pool.query('checkpoint');
  const early = await drawEarly(url, 'never-committed');
  const drawnBeforeCrash = await lastDrawn(pool);
  await waitForMetrics(relay, (samples) => (samples.get('relay_live_delivery_held_back_seconds') ?? 0) > 0, 'the relay holding back for the drawn position');

  const { rows } = await early.query<{ pid: number }>('select pg_backend_pid() as pid');
  const mark = logs.mark();
  process.kill(rows[0]!.pid, 'SIGKILL');
  await early.end().catch(() => undefined);
  await logs.waitFor((line) => line.msg === 'caught up from the event log', { after: mark, timeoutMs: 30_000, what: 'the relay reading the log after the crash' });
  t.ok((await lastDrawn(pool)) < drawnBeforeCrash, 'precondition: after recovery the sequence draws the open transaction\'s position again');

  // A draws that position again and stays open; B draws the next one and commits first.
  const a = await drawEarly(url, 'after-a');
  t.teardown(() => a.end().catch(() => undefined));
  t.equal(await lastDrawn(pool), drawnBeforeCrash, 'A drew the position drawn before the crash');
  await insertOrder(pool, 'after-b');
  // The relay has read B while A is open: it holds B back for A's position, or (the bug) delivers it.
  const heldBack = (samples: Map<string, number>): boolean => (samples.get('relay_live_delivery_held_back_seconds') ?? 0) > 0;
  const bFirst = receivedOrder(live, 'after-b', 'B delivered while A is open', 30_000).then(() => 'B was delivered while A was open');
  const waiting = waitForMetrics(relay, heldBack, 'the relay holding B back for A').then(() => 'the relay held B back for A');
  t.equal(await Promise.race([bFirst, waiting]), 'the relay held B back for A');
  bFirst.catch(() => undefined);
  await a.query('commit');

  await publishSentinel(pool);
  await within(receivedSentinel(live), 30_000, 'the sentinel');
  const logged = await loggedOrderEvents(pool, start);
  t.strictSame(logged.map((event) => event.orderId), ['before', 'after-a', 'after-b'], 'the log: A before B (A drew the lower position)');
  t.same(compareWithLog(live.orderEvents(), logged), perfectDelivery(logged.length), 'the live subscriber received the log exactly once, in commit order');
});
