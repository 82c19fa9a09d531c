// "kill -9 a relay, resume on a new one": a relay process dies mid-stream with no chance to say
// goodbye, writes go on, and the client resumes on another relay from the last cursor it
// received. Together the two connections must have delivered the log exactly: each event once,
// in commit order, nothing lost in the crash.
import { SignJWT } from 'jose';
import t from 'tap';
import { createTestDatabase } from '../helpers/database.ts';
import { asFrame, describeDifference, eventsUntil, readLog, withoutTs } from '../helpers/event-log.ts';
import { nextFrame, subscribe } from '../helpers/frames.ts';
import { startRelayProcess } from '../helpers/relay-process.ts';
import { startTestRelay, TEST_SECRET } from '../helpers/relay.ts';
import { connectClient, type Frame, type TestClient } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'survivor' };

async function subscribed(client: TestClient, topic: string, extra: Record<string, unknown> = {}): Promise<void> {
  const reply = await subscribe(client, topic, extra);
  if (reply.type !== 'subscribed') throw new Error(`subscribe ${topic} ${JSON.stringify(extra)}: the relay answered ${JSON.stringify(reply)}`);
}

t.test('after a relay is killed with SIGKILL mid-stream, resuming on a new relay from the last cursor loses nothing and repeats nothing', async (t) => {
  const db = await createTestDatabase(t);
  const crashing = await startRelayProcess(t, db.url);
  const token = await new SignJWT(ADMIN).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(TEST_SECRET));
  const first = await connectClient(`${crashing.wsUrl}?access_token=${token}`);
  t.teardown(() => first.close());
  await subscribed(first, 'orders');

  // A writer that never waits for anyone: single inserts, and every fifth a transaction of three.
  let writing = true;
  let written = 0;
  const milestones: Array<{ at: number; resolve: () => void }> = [];
  const writtenAtLeast = (count: number): Promise<void> => new Promise((resolve) => milestones.push({ at: count, resolve }));
  const writer = (async () => {
    while (writing) {
      const n = written;
      const ids = n % 5 === 2 ? [`o${n}a`, `o${n}b`, `o${n}c`] : [`o${n}`];
      const client = await db.pool.connect();
      try {
        await client.query('begin');
        for (const id of ids) await client.query(`insert into orders (id, hospital_id, status) values ($1, 'H1', 'placed')`, [id]);
        await client.query('commit');
      } finally {
        client.release();
      }
      written++;
      for (const milestone of milestones.filter((m) => m.at <= written)) {
        milestones.splice(milestones.indexOf(milestone), 1);
        milestone.resolve();
      }
    }
  })();

  // Read a while, then kill the relay while events are still flowing to the client.
  const received: Frame[] = await first.take(60);
  const killedAfter = written;
  await crashing.kill();
  t.match(await crashing.exited, { signal: 'SIGKILL' }, 'the relay process was killed');
  // Whatever reached the client before the connection died counts as received.
  for (;;) {
    const frame = await first.next().catch(() => null);
    if (frame === null) break;
    received.push(frame);
  }
  const closed = await first.closed();
  t.equal(closed.code, 1006, 'the client sees the connection drop with no close frame (1006)');
  t.ok(received.every((frame) => frame.type === 'event' && frame.topic === 'orders'), 'it had received only order events');
  const lastCursor = String(received.at(-1)!.cursor);

  // Writes go on while no relay is running, then a new relay starts on the same database.
  await writtenAtLeast(killedAfter + 30);
  const replacement = await startTestRelay(t, {}, db);
  const second = await replacement.connect(ADMIN);
  await subscribed(second, 'orders', { since: lastCursor });
  await writtenAtLeast(written + 30);
  writing = false;
  await writer;

  const log = await readLog(db.pool, 'orders');
  const end = log.at(-1)!.cursor;
  const resumed = await eventsUntil(second, 'orders', (frame) => frame.cursor === end, 'the new relay replaying and then streaming up to the last order');
  await db.pool.query(`insert into orders (id, hospital_id, status) values ('sentinel', 'H1', 'placed')`);
  t.match(await nextFrame(second, 'the sentinel order'), { type: 'event', data: { id: 'sentinel' } }, 'nothing after the last order but the sentinel');

  const union = [...received, ...resumed];
  t.ok(received.length >= 60 && resumed.length >= 60, `${received.length} events before the crash, ${resumed.length} after`);
  t.equal(
    describeDifference(union.map((frame) => String(frame.cursor)), log.map((event) => event.cursor)),
    'identical',
    'the two connections together delivered the whole log, each event once, in commit order',
  );
  t.strictSame(union.map(withoutTs), log.map(asFrame), 'every event as the log holds it');
});
