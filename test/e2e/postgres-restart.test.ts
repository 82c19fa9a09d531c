// PostgreSQL itself restarts (fast shutdown, then start on the same port) while an application
// keeps writing: every connection of the relay dies, the server refuses connections for a while,
// and the contract still promises no gap and no duplicate, to the subscriber that stayed connected
// and to the one that resumes with `since` (section 3), and an honest /health (section 4).
// The cluster is private to this file: the shared server of the test run is never touched.
import t from 'tap';
import {
  finishAndCompare,
  grantSentinel,
  logHeadPosition,
  nextOrderReaches,
  openSubscriber,
  waitForHealth,
} from '../helpers/fault-scenario.ts';
import { watchLogLines, type LogLine } from '../helpers/log-lines.ts';
import { startOrderWriter } from '../helpers/order-writer.ts';
import { startPrivateDatabase } from '../helpers/private-cluster.ts';
import { startTestRelay } from '../helpers/relay.ts';

function elapsed(line: LogLine, fromMs: number): number {
  return Number(line.time) - fromMs;
}

t.test('PostgreSQL restarts under continuous writes: nothing lost, nothing twice, /health honest', async (t) => {
  const { cluster, url, pool } = await startPrivateDatabase(t, 'restart');
  const relay = await startTestRelay(t, {}, { url, pool });
  const logs = watchLogLines(relay.logLines);

  await grantSentinel(relay);
  const start = await logHeadPosition(pool);
  const live = await openSubscriber(relay, 'the live subscriber');
  const resuming = await openSubscriber(relay, 'the resuming subscriber');
  const writer = startOrderWriter({ databaseUrl: url, prefix: 'restart', intervalMs: 0 });
  t.teardown(() => writer.stop());
  await nextOrderReaches(writer, [live, resuming], 'an order committed before the restart');
  await writer.waitForCommitted(writer.committed.length + 20, 'writes before the restart');

  await resuming.disconnect();
  const mark = logs.mark();
  const committedAtStop = writer.committed.length;
  const failuresAtStop = writer.failures();
  const stoppingAt = Date.now();
  // /health is polled while the server shuts down (a fast shutdown ends every session at once,
  // then waits for a checkpoint).
  const unhealthy = waitForHealth(relay.httpUrl, 503, 12_000);
  await cluster.pause();
  const stoppedAt = Date.now();
  const lost = await logs.waitFor((line) => line.msg === 'listener: not listening to PostgreSQL', {
    after: mark,
    timeoutMs: 10_000,
    what: 'the relay noticing that PostgreSQL went away',
  });
  const unhealthyMs = await unhealthy;
  t.ok(unhealthyMs <= 10_000, `/health turned 503 ${unhealthyMs} ms after the shutdown began (contract: within 10 s)`);
  const committedWhileDown = writer.committed.length;

  await cluster.resume();
  const startedAt = Date.now();
  const caughtUp = await logs.waitFor((line) => line.msg === 'caught up from the event log', {
    after: mark,
    timeoutMs: 15_000,
    what: 'the relay catching up once PostgreSQL was back',
  });
  const healthyMs = await waitForHealth(relay.httpUrl, 200, 10_000);
  // The writer's own outage proves the restart really happened under writes.
  await writer.waitForCommitted(writer.committed.length + 20, 'writes after the restart');
  t.ok(writer.failures() > failuresAtStop, `the writer saw the outage (${writer.failures() - failuresAtStop} failed attempts, retried)`);
  t.comment(
    `restart: shutdown took ${stoppedAt - stoppingAt} ms; relay noticed after ${elapsed(lost, stoppingAt)} ms ` +
      `(/health 503 after ${unhealthyMs} ms); caught up ${elapsed(caughtUp, startedAt)} ms after the server was back ` +
      `(${String(caughtUp.events)} events from the log), /health 200 after ${healthyMs} ms; ` +
      `${committedWhileDown - committedAtStop} rows committed during shutdown`,
  );

  await resuming.resume();
  await nextOrderReaches(writer, [live, resuming], 'an order committed after both subscribers are back');
  await finishAndCompare(t, pool, writer, start, [live, resuming]);
});
