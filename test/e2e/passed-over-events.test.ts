// Live delivery builds an event (parses its JSON) only when some subscription on this relay may
// want its topic, and passes over a row of the log whose body does not parse. Neither may cost a
// subscriber an event, or the order of its events; a topic subscribed later, live or by resuming,
// gets its events whole.
import t from 'tap';
import { collectFrames } from '../helpers/event-collector.ts';
import { readLog } from '../helpers/event-log.ts';
import { framesBeforePong, nextFrame, subscribe } from '../helpers/frames.ts';
import { watchLogLines } from '../helpers/log-lines.ts';
import { scrapeMetrics } from '../helpers/metrics.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import { tcpSocketOf, type Frame, type TestClient } from '../helpers/ws-client.ts';

/** Publishes one event in a transaction of its own. */
async function publish(relay: TestRelay, topic: string, n: number): Promise<void> {
  await relay.db.pool.query(`select relay.publish($1, 'note', jsonb_build_object('n', $2::int))`, [topic, n]);
}

/** The next `count` event frames of a client, as `topic n`. */
async function nextEvents(client: TestClient, count: number, what: string): Promise<string[]> {
  const seen: string[] = [];
  while (seen.length < count) {
    const frame: Frame = await nextFrame(client, `${what}: event ${seen.length + 1} of ${count}`, (each) => each.type === 'event');
    seen.push(`${String(frame.topic)} ${String((frame.data as { n?: number }).n)}`);
  }
  return seen;
}

async function eventsReceivedTotal(relay: TestRelay): Promise<number> {
  return Number((await scrapeMetrics(relay)).samples.get('relay_events_received_total'));
}

t.test('events of a topic nobody here subscribes to are passed over, counted, and whole for later subscribers', async (t) => {
  const relay = await startTestRelay(t);
  const orders = await relay.connect({ role: 'admin', sub: 'orders-only' });
  t.match(await subscribe(orders, 'orders'), { type: 'subscribed' });

  for (const [topic, n] of [['orders', 1], ['inventory', 1], ['orders', 2], ['inventory', 2], ['orders', 3]] as const) {
    await publish(relay, topic, n);
  }
  t.same(await nextEvents(orders, 3, 'the orders subscriber'), ['orders 1', 'orders 2', 'orders 3'], 'every order, in commit order');
  t.same(await framesBeforePong(orders), [], 'and nothing of inventory');
  t.equal(await eventsReceivedTotal(relay), 5, 'the passed-over events were read all the same');

  // Subscribed from now on: the next inventory event, built from its row like any other.
  const inventory = await relay.connect({ role: 'admin', sub: 'inventory-live' });
  t.match(await subscribe(inventory, 'inventory'), { type: 'subscribed' });
  await publish(relay, 'inventory', 3);
  t.same(await nextEvents(inventory, 1, 'the live inventory subscriber'), ['inventory 3']);

  // Resuming from the first inventory event replays those the stream passed over.
  const [first] = await readLog(relay.db.pool, 'inventory');
  const resuming = await relay.connect({ role: 'admin', sub: 'inventory-resume' });
  t.match(await subscribe(resuming, 'inventory', { since: first!.cursor }), { type: 'subscribed' });
  t.same(await nextEvents(resuming, 2, 'the resuming subscriber'), ['inventory 2', 'inventory 3'], 'the replay, parsed');
});

t.test('a topic whose one subscription is catching up gets the live events that come during its replay', async (t) => {
  const relay = await startTestRelay(t);
  // 600 events of 20 KB: more than the kernel's buffers take for a client that does not read, so
  // the replay waits for it, and the subscription is still catching up when the live event comes.
  const rows = 600;
  const orders = await relay.connect({ role: 'admin', sub: 'orders' });
  t.match(await subscribe(orders, 'orders'), { type: 'subscribed' });
  await publish(relay, 'inventory', 0);
  await relay.db.pool.query(
    `select relay.publish('inventory', 'note', jsonb_build_object('n', n, 'pad', repeat('y', 20000))) from generate_series(1, $1::int) n`,
    [rows],
  );
  // Events are delivered in commit order: once this order arrives, live delivery is past the
  // inventory events, and they are the replay's (were they live, 12 MB held would close the client).
  await publish(relay, 'orders', 0);
  t.same(await nextEvents(orders, 1, 'the orders subscriber'), ['orders 0']);
  const [start] = await readLog(relay.db.pool, 'inventory');

  const resuming = await relay.connect({ role: 'admin', sub: 'inventory-resume' });
  const socket = tcpSocketOf(resuming);
  const frames = collectFrames(resuming);
  resuming.send({ type: 'subscribe', topic: 'inventory', since: start!.cursor });
  // Subscribed: catching up from here until the replay has sent everything, which it cannot now.
  await frames.waitFor((frame) => frame.type === 'subscribed', 'the subscribed reply');
  socket.pause();
  await publish(relay, 'inventory', rows + 1);
  // Once this order arrives, the live inventory event has been handed over too.
  await publish(relay, 'orders', 1);
  t.same(await nextEvents(orders, 1, 'the orders subscriber'), ['orders 1']);
  socket.resume();
  await frames.waitFor((frame) => frame.type === 'event' && (frame.data as { n: number }).n === rows + 1, 'the live inventory event');
  const seen = frames.events('inventory').map((frame) => (frame.data as { n: number }).n);
  t.strictSame(seen, Array.from({ length: rows + 1 }, (_, index) => index + 1), 'the replay, then the live event, each once, in order');
});

t.test('a row of the log whose body does not parse is skipped and logged; the events around it arrive', async (t) => {
  const relay = await startTestRelay(t);
  const logs = watchLogLines(relay.logLines);
  const admin = await relay.connect({ role: 'admin', sub: 'a1' });
  t.match(await subscribe(admin, 'orders'), { type: 'subscribed' });

  await publish(relay, 'orders', 1);
  // The triggers and relay.publish never write such a row; the owner of the relay schema could.
  await relay.db.pool.query(`insert into relay.events (topic, event, data, opens_commit) values ('orders', 'note', '[1, 2]', true)`);
  await publish(relay, 'orders', 2);
  t.same(await nextEvents(admin, 2, 'the subscriber'), ['orders 1', 'orders 2'], 'the events on either side, in order');
  t.same(await framesBeforePong(admin), [], 'nothing for the malformed row');
  const logged = await logs.waitFor((line) => line.msg === 'an event of the log does not parse; skipped', { what: 'the skipped row logged' });
  t.equal(logged.topic, 'orders', 'the log line names its topic');

  // A replay across it skips it too.
  const [first] = await readLog(relay.db.pool, 'orders');
  const resuming = await relay.connect({ role: 'admin', sub: 'a2' });
  t.match(await subscribe(resuming, 'orders', { since: first!.cursor }), { type: 'subscribed' });
  t.same(await nextEvents(resuming, 1, 'the resuming subscriber'), ['orders 2']);
  await publish(relay, 'orders', 3);
  t.same(await nextEvents(resuming, 1, 'the resuming subscriber, live'), ['orders 3'], 'and then live, with nothing between');
});
