// Contract section 3, "On shutdown (SIGTERM) clients are closed with 1012", and the README's
// operations: the listen socket closes first (a new connection is refused), clients get 1012, the
// process exits 0; a shutdown stuck past RELAY_SHUTDOWN_TIMEOUT exits 1; a second signal exits at
// once. The relay runs as an operator runs it: the built entry point in a child process.
import { connect } from 'node:net';
import pg from 'pg';
import t, { type Test } from 'tap';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { nextFrame } from '../helpers/frames.ts';
import { guarded } from '../helpers/guard.ts';
import { readLog } from '../helpers/event-log.ts';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.ts';
import { TEST_SECRET } from '../helpers/relay.ts';
import { nowSeconds, signHmacToken } from '../helpers/tokens.ts';
import { connectClient, type TestClient } from '../helpers/ws-client.ts';

/** A guard only: an unstuck shutdown takes well under a second here. */
const EXIT_GUARD_MS = 15_000;
const STOPPED_ACCEPTING = 'stopped accepting connections; closed the open ones with 1012';

async function connectAdmin(relay: RelayProcess): Promise<TestClient> {
  const token = await signHmacToken(TEST_SECRET, { role: 'admin', sub: 'ops', exp: nowSeconds() + 600 });
  return connectClient(`${relay.wsUrl}?access_token=${token}`);
}

/** How a plain TCP connection attempt to the relay's port ends: 'refused' or 'accepted'. */
function tryConnect(port: number): Promise<'refused' | 'accepted'> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('accepted');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNREFUSED' ? resolve('refused') : reject(error)));
  });
}

/**
 * Makes the relay's shutdown hang the way a real one can: a query of its pool waits on a lock that
 * another session holds, so ending the pool waits too. Resolves once that query is waiting; the
 * returned function releases the lock.
 */
async function stickTheRelayOnALock(t: Test, db: TestDatabase, relay: RelayProcess): Promise<() => Promise<void>> {
  await db.pool.query(`insert into orders (id) values ('before-the-lock')`);
  const [first] = await readLog(db.pool, 'orders');
  const holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
  const release = async (): Promise<void> => {
    await holder.query('rollback').catch(() => undefined);
    await holder.end().catch(() => undefined);
  };
  t.teardown(release);
  await holder.query('begin');
  await holder.query('lock table relay.events in access exclusive mode');
  // A resuming subscription reads the log: its query now waits for the lock.
  const resuming = await connectAdmin(relay);
  resuming.send({ type: 'subscribe', topic: 'orders', since: first!.cursor });
  await guarded(waitForLockWaiter(db), 10_000, "the relay's replay query waiting on the lock");
  return release;
}

/** Polls pg_stat_activity (a state, not an event, so it is polled) until a relay query waits on a lock. */
async function waitForLockWaiter(db: TestDatabase): Promise<void> {
  for (;;) {
    const { rows } = await db.pool.query<{ waiting: number }>(
      `select count(*)::int as waiting from pg_stat_activity
        where datname = current_database() and application_name = 'pg-relay' and wait_event_type = 'Lock'`,
    );
    if (rows[0]!.waiting > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

t.test('SIGTERM: the listen socket closes, clients get 1012, the process exits 0', async (t) => {
  const db = await createTestDatabase(t);
  const relay = await startRelayProcess(t, db.url);
  const clients = await Promise.all([connectAdmin(relay), connectAdmin(relay), connectAdmin(relay)]);
  for (const client of clients) client.send({ type: 'subscribe', topic: 'orders' });
  for (const client of clients) t.match(await nextFrame(client, 'subscribed'), { type: 'subscribed' });
  const closes = clients.map((client) => client.closed());

  relay.child.kill('SIGTERM');
  const stopped = await relay.logLine((line) => line.msg === STOPPED_ACCEPTING, 'the relay closing its listen socket');
  t.equal(stopped.connections, 3, 'it closed the three open connections');
  t.equal(await tryConnect(relay.port), 'refused', 'a new connection after SIGTERM is refused');
  const exit = await guarded(relay.exited, EXIT_GUARD_MS, 'the relay exiting after SIGTERM');
  t.strictSame(exit, { code: 0, signal: null }, 'exit code 0');
  for (const [index, closed] of closes.entries()) {
    t.equal((await closed).code, 1012, `client ${index + 1} was closed with 1012 (service restart): it reconnects elsewhere`);
  }
  const order = relay.logLines.map((line) => line.msg);
  const steps = ['shutting down', STOPPED_ACCEPTING, 'stopped listening to PostgreSQL; closing the pool', 'stopped'];
  t.strictSame(
    order.filter((msg) => steps.includes(msg as string)),
    steps,
    'the steps run in order: stop accepting and close clients, stop listening, end the pool',
  );
});

t.test('a shutdown stuck past RELAY_SHUTDOWN_TIMEOUT exits 1, refusing connections meanwhile', async (t) => {
  const db = await createTestDatabase(t);
  const relay = await startRelayProcess(t, db.url, { RELAY_SHUTDOWN_TIMEOUT: '2s' });
  const release = await stickTheRelayOnALock(t, db, relay);
  const bystander = await connectAdmin(relay);
  const bystanderClosed = bystander.closed();

  const signalledAt = Date.now();
  relay.child.kill('SIGTERM');
  await relay.logLine((line) => line.msg === STOPPED_ACCEPTING, 'the relay closing its listen socket');
  t.equal(await tryConnect(relay.port), 'refused', 'while the shutdown is stuck, a new connection is refused');
  t.equal(relay.child.exitCode, null, 'and the process is indeed still running');
  t.equal((await bystanderClosed).code, 1012, 'a connected client got 1012 at once, not after the timeout');

  const exit = await guarded(relay.exited, EXIT_GUARD_MS, 'the relay exiting after its shutdown timeout');
  const tookMs = Date.now() - signalledAt;
  t.strictSame(exit, { code: 1, signal: null }, 'exit code 1: the supervisor learns the shutdown was not clean');
  t.ok(tookMs >= 2_000, `it waited for the timeout first (${tookMs} ms)`);
  await relay.logLine((line) => line.msg === 'shutdown did not finish in time; exiting', 'the timeout log line');
  await release();
});

t.test('a second SIGTERM during a stuck shutdown exits 1 at once', async (t) => {
  const db = await createTestDatabase(t);
  // A timeout far beyond the guard below: only the second signal can end the process in time.
  const relay = await startRelayProcess(t, db.url, { RELAY_SHUTDOWN_TIMEOUT: '5m' });
  const release = await stickTheRelayOnALock(t, db, relay);

  relay.child.kill('SIGTERM');
  await relay.logLine(
    (line) => line.msg === 'stopped listening to PostgreSQL; closing the pool',
    'the shutdown reaching the pool (where the locked query holds it)',
  );
  t.equal(relay.child.exitCode, null, 'the first SIGTERM left the process waiting');
  relay.child.kill('SIGTERM');
  const exit = await guarded(relay.exited, 5_000, 'the relay exiting at the second SIGTERM');
  t.strictSame(exit, { code: 1, signal: null }, 'exit code 1');
  await relay.logLine((line) => line.msg === 'second signal: exiting now', 'the second-signal log line');
  await release();
});
