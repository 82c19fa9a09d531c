// Live events held for a connection's catching-up subscriptions are data it has not taken yet:
// they count against its send budget (RELAY_MAX_BACKPRESSURE, 4 MiB by default) in bytes, all its
// subscriptions together, and a connection over it is closed with 4008 rather than held without end.
import t, { type Test } from 'tap';
import { changeCatalog } from '../helpers/catalog.ts';
import { collectFrames } from '../helpers/event-collector.ts';
import { readLog } from '../helpers/event-log.ts';
import { nextFrame, subscribe } from '../helpers/frames.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import { tcpSocketOf, type PausableSocket, type TestClient } from '../helpers/ws-client.ts';

const MIB = 1024 * 1024;

/** Publishes an event of `topic` and waits until the watcher has it: live delivery has handed it over. */
async function publishLive(relay: TestRelay, watcher: TestClient, topic: string, data: Record<string, string>): Promise<void> {
  await relay.db.pool.query(`select relay.publish($1, 'note', $2::jsonb)`, [topic, JSON.stringify(data)]);
  await nextFrame(watcher, `the watcher's copy of ${data.n}`, (frame) => frame.type === 'event' && (frame.data as { n?: string }).n === data.n);
}

/**
 * A client resuming `topics`, each from the first of 600 events of 20 KB: more than the kernel's
 * buffers take for a client that does not read, so once it pauses, its replays wait and every
 * subscription stays catching up. A watcher sees the events without a pad, live.
 */
async function pausedResumes(t: Test, topics: readonly string[], claims: Record<string, unknown> = { role: 'admin', sub: 'resuming' }, grants?: string) {
  const relay = await startTestRelay(t);
  if (grants) await changeCatalog(relay, grants);
  const watcher = await relay.connect({ role: 'admin', sub: 'watcher' });
  for (const topic of topics) {
    t.match(await subscribe(watcher, topic, { filter: { pad: null } }), { type: 'subscribed' });
    await relay.db.pool.query(
      `select relay.publish($1, 'note', jsonb_build_object('n', n::text, 'pad', repeat('y', 20000))) from generate_series(1, 600) n`,
      [topic],
    );
  }
  // Events arrive in commit order: once the watcher has this one, every backlog is the replays'.
  await publishLive(relay, watcher, topics[0]!, { n: 'backlogs written' });

  const client = await relay.connect(claims);
  const socket = tcpSocketOf(client);
  const frames = collectFrames(client);
  for (const topic of topics) {
    const [start] = await readLog(relay.db.pool, topic);
    const mark = frames.frames.length;
    client.send({ type: 'subscribe', topic, since: start!.cursor });
    await frames.waitFor((frame) => frame.type === 'subscribed' && frame.topic === topic, `subscribed to ${topic}`, { after: mark });
  }
  socket.pause();
  return { relay, watcher, client, socket, frames };
}

/**
 * Resumes reading; resolves with the close code if the connection is closed before the event
 * named `lastN` arrives, or 'delivered' if it arrives (the held events went out).
 */
async function closedOrDelivered(client: TestClient, frames: ReturnType<typeof collectFrames>, socket: PausableSocket, lastN: string) {
  socket.resume();
  const delivered = frames
    .waitFor((frame) => frame.type === 'event' && (frame.data as { n?: string }).n === lastN, lastN)
    .then(() => 'delivered' as const, () => 'closed first' as const);
  return Promise.race([client.closed().then(({ code }) => code), delivered]);
}

t.test('two subscriptions catching up hold under one budget: 2.5 MB each closes the connection', async (t) => {
  const topics = ['orders', 'inventory'];
  const { relay, watcher, client, socket, frames } = await pausedResumes(t, topics);
  // 5 events of 0.5 MB per topic: under the budget for either subscription, over it together.
  for (const topic of topics) {
    for (let i = 1; i <= 5; i++) await publishLive(relay, watcher, topic, { n: `${topic} live ${i}`, big: 'z'.repeat(MIB / 2) });
  }
  t.equal(await closedOrDelivered(client, frames, socket, 'inventory live 5'), 4008, 'closed as too far behind, with 4008');
});

t.test('held events are counted in bytes: 1.5 million three-byte characters close the connection', async (t) => {
  const { relay, watcher, client, socket, frames } = await pausedResumes(t, ['orders']);
  // 4.5 MB of UTF-8 in 1.5 million characters: over 4 MiB only when counted in bytes.
  for (let i = 1; i <= 3; i++) await publishLive(relay, watcher, 'orders', { n: `live ${i}`, big: '€'.repeat(500_000) });
  t.equal(await closedOrDelivered(client, frames, socket, 'live 3'), 4008, 'closed as too far behind, with 4008');
});

t.test('under the budget, the held events arrive after the replay, in order', async (t) => {
  const topics = ['orders', 'inventory'];
  const { relay, watcher, client, socket, frames } = await pausedResumes(t, topics);
  for (const topic of topics) await publishLive(relay, watcher, topic, { n: `${topic} live`, big: 'z'.repeat(MIB / 2) });
  t.equal(await closedOrDelivered(client, frames, socket, 'inventory live'), 'delivered');
  await frames.waitFor((frame) => frame.type === 'event' && (frame.data as { n?: string }).n === 'orders live', 'orders live');
  for (const topic of topics) {
    const seen = frames.events(topic).map((frame) => (frame.data as { n: string }).n);
    const backlog = Array.from({ length: 599 }, (_, index) => String(index + 2));
    const expected = topic === 'orders' ? [...backlog, 'backlogs written', 'orders live'] : [...backlog, 'inventory live'];
    t.strictSame(seen, expected, `${topic}: the replay, then the held live event, each once`);
  }
});

t.test('a held event counts whole, not only the columns its frame shows: it is kept to render again', async (t) => {
  const { relay, watcher, client, socket, frames } = await pausedResumes(
    t,
    ['orders'],
    { role: 'auditor', sub: 'resuming' },
    `select relay.allow('orders', 'auditor', '{}', array['n', 'pad'])`,
  );
  // Frames of a few bytes (the auditor sees n only), events of 0.5 MB each: 5 MB kept in all.
  for (let i = 1; i <= 10; i++) await publishLive(relay, watcher, 'orders', { n: `live ${i}`, big: 'z'.repeat(MIB / 2) });
  t.equal(await closedOrDelivered(client, frames, socket, 'live 10'), 4008, 'closed as too far behind, with 4008');
});
