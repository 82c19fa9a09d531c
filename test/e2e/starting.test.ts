// A relay cannot serve while a transaction that drew its commit position early stays open: its
// live stream needs the log's head, and waits for that transaction to end (README, "How commit
// order is kept"). Meanwhile it must still answer /health and /metrics, so that an orchestrator
// does not take it for dead and restart it over and over, and refuse clients with 503, so that a
// load balancer sends them to another relay. Once the transaction ends, it serves as usual.
import t from 'tap';
import { createTestDatabase } from '../helpers/database.ts';
import { drawPositionEarly, relayWaitsForCommitters } from '../helpers/early-position.ts';
import { guarded } from '../helpers/guard.ts';
import { launchTestRelay } from '../helpers/relay.ts';
import { upgradeRefusal } from '../helpers/ws-client.ts';
import { untilTrue } from '../helpers/backend-waits.ts';

const ADMIN = { role: 'admin', sub: 'ops' };
/** A guard only: a relay listens well within a second here. */
const LISTEN_GUARD_MS = 10_000;
const STARTING_REASON = 'starting: waiting for transactions that drew a commit position to end';

t.test('starting while a transaction that drew its position early is open: /health 503 "starting", upgrades 503, then serving once it ends', async (t) => {
  const db = await createTestDatabase(t);
  const early = await drawPositionEarly(db.pool, t, 'drawn-before-start');
  const relay = await launchTestRelay(t, {}, db);
  const { httpUrl, wsUrl } = await guarded(
    relay.listening,
    LISTEN_GUARD_MS,
    'the relay listening while it waits for the open transaction (a liveness probe would find the port closed and restart it)',
  );
  // In the wait itself, not just before it.
  await relayWaitsForCommitters(db.pool);

  const health = await fetch(`${httpUrl}/health`);
  t.equal(health.status, 503, '/health: 503 while starting, so no traffic is sent here');
  t.match(await health.json(), { status: 'starting', reason: STARTING_REASON, sessions: 0 }, '/health says why');
  const metrics = await fetch(`${httpUrl}/metrics`);
  t.equal(metrics.status, 200, '/metrics answers while starting');
  const metricsText = await metrics.text();
  t.match(metricsText, /^relay_started 0$/m, 'relay_started is 0');
  const heldBack = Number(/^relay_live_delivery_held_back_seconds (\S+)$/m.exec(metricsText)?.[1]);
  t.ok(heldBack > 0, `relay_live_delivery_held_back_seconds counts the wait of the start too (${heldBack})`);
  t.strictSame(
    await upgradeRefusal(`${wsUrl}?access_token=${await relay.token(ADMIN)}`),
    { status: 503, body: { error: 'unavailable', reason: STARTING_REASON } },
    'a client with a valid token is refused with 503 and the reason, to try another relay',
  );

  await early.query('commit');
  const served = await guarded(relay.serving, LISTEN_GUARD_MS, "the relay's start() once the transaction committed");
  const healthy = await fetch(`${served.httpUrl}/health`);
  t.equal(healthy.status, 200, '/health: 200 once serving');
  const body = (await healthy.json()) as Record<string, unknown>;
  t.match(body, { status: 'ok', listening: true }, '/health: ok');
  t.notOk('reason' in body, 'and gives no reason');
  t.match(await (await fetch(`${served.httpUrl}/metrics`)).text(), /^relay_started 1$/m, 'relay_started is 1');

  const admin = await served.connect(ADMIN);
  admin.send({ type: 'subscribe', topic: 'orders' });
  await admin.next((frame) => frame.type === 'subscribed');
  await db.pool.query(`insert into orders (id, hospital_id, status) values ('after-start', 'H1', 'new')`);
  t.match(
    await admin.next((frame) => frame.type === 'event'),
    { event: 'insert', data: { id: 'after-start' } },
    'a subscriber gets the events committed after the start, from the head the relay waited for',
  );
});

t.test('stopped while it waits to start: stops at once, its port closed, start() rejected, never serving', async (t) => {
  const db = await createTestDatabase(t);
  const early = await drawPositionEarly(db.pool, t, 'left-open');
  const relay = await launchTestRelay(t, {}, db);
  const { httpUrl } = await guarded(relay.listening, LISTEN_GUARD_MS, 'the relay listening while it waits for the open transaction');
  await relayWaitsForCommitters(db.pool);
  const outcome = relay.serving.then(
    () => 'served',
    (error: unknown) => error,
  );
  // The wait goes in turns of a second, and a stopped stream gives up between them.
  await guarded(relay.stop(), 5_000, 'the relay stopping while it waits to start');
  t.match(await outcome, { code: 'ERR_RELAY_START_ABORTED' }, 'start() rejects: the relay was stopped before it served');
  await t.rejects(fetch(`${httpUrl}/health`), 'the port no longer accepts connections');
  t.notOk(
    relay.logLines.some((line) => line.msg === 'pg-relay is serving'),
    'it never logged that it serves',
  );
  t.notOk(
    relay.logLines.some((line) => Number(line.level) >= 50),
    'nothing logged as an error',
  );
  await early.query('rollback');
});

t.test('stopped while it reads the log identity: start() rejects as aborted, not as a failed start', async (t) => {
  // Any step of start() that meets the stop (here the pool, ended under its first query) must end
  // as the shutdown it is: a plain error made the entry point log a fatal line and race an exit 1
  // against the shutdown's exit 0.
  const db = await createTestDatabase(t);
  const locker = await db.pool.connect();
  t.teardown(() => locker.release());
  await locker.query('begin');
  await locker.query('lock table relay.log_identity in access exclusive mode');
  const relay = await launchTestRelay(t, {}, db);
  const outcome = relay.serving.then(
    () => 'served',
    (error: unknown) => error,
  );
  await untilTrue(
    db.pool,
    `select exists (select from pg_stat_activity
      where datname = current_database() and application_name = 'pg-relay' and wait_event_type = 'Lock'
        and query like '%claim_log_identity%')`,
  );
  const stopped = relay.stop();
  await locker.query('rollback');
  await guarded(stopped, 5_000, 'the relay stopping while it reads the log identity');
  t.match(await outcome, { code: 'ERR_RELAY_START_ABORTED' }, 'start() rejects as aborted by the stop');
  t.notOk(
    relay.logLines.some((line) => line.msg === 'pg-relay is listening; it serves once its live stream has started'),
    'it never listened',
  );
});
