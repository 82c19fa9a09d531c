// README "Limits": a replay keeps the page it sends until its client has read it, and a client
// may resume up to 100 subscriptions at once. A connection that stops reading must hold one page of
// its replays (about RELAY_MAX_BACKPRESSURE), not one per subscription: ten such connections
// resuming three topics each took the relay's heap from 52 to 163 MiB. The relay_replay_* gauges
// show what replays hold and wait for; the test reads them, as an operator would.
import t, { type Test } from 'tap';
import { createTestDatabase } from '../helpers/database.ts';
import { collectFrames } from '../helpers/event-collector.ts';
import { cursorAt, logEpoch } from '../helpers/event-log.ts';
import { scrapeMetrics, waitForMetrics, type MetricSamples } from '../helpers/metrics.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import { tcpSocketOf, type Frame, type PausableSocket, type TestClient } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'resuming' };
/** The send budget, and so the most a replay's page holds. */
const LIMIT_BYTES = 256 * 1024;
const TOPICS = ['orders', 'inventory', 'driver_locations'];
/** 16 MB a topic: more than the kernel's buffers take for a loopback client that does not read. */
const EVENTS_PER_TOPIC = 400;
const PAD_BYTES = 40_000;
/**
 * How long the client may take to read all 48 MB once it reads. A guard against a stall, not a
 * speed limit: at a send budget of 256 KiB a replay reads a page of about six events, waits for
 * the client, reads the next: some 200 pages in turn, which took 8 s on a loaded host (past the
 * 10 s default in one of six loaded runs of CI's PostgreSQL 15 pass) against 1 s on a quiet one.
 */
const READ_ALL_GUARD_MS = 60_000;

const waiting = (samples: MetricSamples, what: 'client' | 'turn'): number => samples.get(`relay_replays_waiting{for="${what}"}`) ?? NaN;
const heldBytes = (samples: MetricSamples): number => samples.get('relay_replay_held_bytes') ?? NaN;
const idle = (samples: MetricSamples): boolean => waiting(samples, 'client') === 0 && waiting(samples, 'turn') === 0 && heldBytes(samples) === 0;

/** A relay whose log holds EVENTS_PER_TOPIC large events of each topic, and a client resuming all of them from their first without reading. */
async function pausedResumes(t: Test): Promise<{ relay: TestRelay; client: TestClient; socket: PausableSocket }> {
  // Written before the relay starts: its live stream begins after them, and holds none for the replays.
  const db = await createTestDatabase(t);
  for (const topic of TOPICS) {
    await db.pool.query(
      `select relay.publish($1, 'note', jsonb_build_object('n', n, 'pad', repeat('y', $2::int))) from generate_series(1, $3::int) n`,
      [topic, PAD_BYTES, EVENTS_PER_TOPIC],
    );
  }
  const relay = await startTestRelay(t, { RELAY_MAX_BACKPRESSURE: `${LIMIT_BYTES}` }, db);
  const epoch = await logEpoch(relay.db.pool);
  const client = await relay.connect(ADMIN);
  const socket = tcpSocketOf(client);
  // Stops reading first: every reply and event stays in the kernel's buffers, then the relay's.
  socket.pause();
  for (const topic of TOPICS) {
    const { rows } = await relay.db.pool.query<{ pos: string; id: string }>(
      `select c.pos, e.id from relay.commits c join relay.events e on e.xid = c.xid where e.topic = $1 order by c.pos, e.id limit 1`,
      [topic],
    );
    client.send({ type: 'subscribe', topic, since: cursorAt(epoch, Number(rows[0]!.pos), Number(rows[0]!.id)) });
  }
  // Both before the change and after it, every replay ends up waiting: for the client, or for its turn.
  await waitForMetrics(relay, (samples) => waiting(samples, 'client') + waiting(samples, 'turn') === TOPICS.length, 'the three replays waiting');
  return { relay, client, socket };
}

t.test('a connection that stops reading holds one page of its replays, and gets every event once it reads', async (t) => {
  const { relay, client, socket } = await pausedResumes(t);
  const { samples } = await scrapeMetrics(relay);
  t.ok(
    heldBytes(samples) > 0 && heldBytes(samples) <= LIMIT_BYTES,
    `${heldBytes(samples)} bytes of pages held for ${TOPICS.length} replays waiting (${waiting(samples, 'client')} for the client, ${waiting(samples, 'turn')} for their turn); a page holds at most ${LIMIT_BYTES}`,
  );

  const frames = collectFrames(client);
  socket.resume();
  for (const topic of TOPICS) {
    const isLast = (frame: Frame): boolean => frame.type === 'event' && frame.topic === topic && (frame.data as { n: number }).n === EVENTS_PER_TOPIC;
    await frames.waitFor(isLast, `${topic}: its last event`, { timeoutMs: READ_ALL_GUARD_MS });
  }
  for (const topic of TOPICS) {
    const seen = frames.events(topic).map((frame) => (frame.data as { n: number }).n);
    t.strictSame(seen, Array.from({ length: EVENTS_PER_TOPIC - 1 }, (_, i) => i + 2), `${topic}: every event after the cursor, once, in order`);
    t.ok(frames.frames.some((frame) => frame.type === 'subscribed' && frame.topic === topic), `${topic}: subscribed`);
  }
  await waitForMetrics(relay, idle, 'the replays holding nothing and waiting for nothing once done');
});

t.test('a connection closed while its replays wait lets go of them all', async (t) => {
  const { relay, client } = await pausedResumes(t);
  client.socket.terminate();
  await client.closed();
  t.ok(idle(await waitForMetrics(relay, idle, 'the replays of the closed connection let go')), 'no replay holds a page or waits');
});
